#!/usr/bin/env python3
"""Cross-check Tributary's model file against the PyTorch reference RealNVP, both ways.

Usage:
    python3 scripts/crosscheck_pytorch.py --tributary "$(swift build -c release --show-bin-path)/tributary"
    python3 scripts/crosscheck_pytorch.py --tributary BIN --keep /tmp/xcheck   # keep every file written
    python3 scripts/crosscheck_pytorch.py --python-only                       # no binary: writer/reader checks

Proves that a Tributary model file (DESIGN.md §5) is exactly the model of
`shared/bench/peers/realnvp_ref.py` (DESIGN.md §1):

  (a) Python -> Tributary. The reference model is built with `realnvp_ref.build(D, K, H, seed)`
      for D in (2, 5, 16); EVERY parameter (hidden and last layers, weights and biases) is
      perturbed with seeded noise; the model is written as a Tributary safetensors file by hand
      (struct + json), float32 and float64; `tributary score` scores 256 rows and is compared
      with the reference log p(x) evaluated in float64. Extra cases cover the optional
      standardisation layer, non-default permutations and CSV input/output.
  (b) Tributary -> Python. `tributary train` on two moons writes a model; it is read back by a
      hand-written safetensors reader, loaded into the reference RealNVP (file Linear index k
      <-> nn.Sequential index 2k), and the reference log p(x) is compared with `tributary
      score` on the same rows, and on the rows that `tributary sample` draws (whose images
      under the reference forward map must also look like N(0, I)).

  (c) Optimiser. `tributary train --dtype float64` with one full batch per step (every row,
      one micro-batch, one shard), `--lr-schedule cosine --warmup W --min-lr F --weight-decay L`,
      from the initial model it writes with `--steps 0`; the same steps in the reference with
      `torch.optim.AdamW(lr, weight_decay=L)` whose rate is set every step from
      `LinearLR(1/W → 1)` then `CosineAnnealingLR(T − W, F)` (`SequentialLR`): the schedules'
      rates match docs/model.md's formula, and the trained parameters match. The same with
      `--weight-decay 0` against `torch.optim.Adam`, and a check that the decay is not a no-op.

When the `safetensors` package is importable, files are additionally read (and one written)
with it. Exits 0 after a PASS table; non-zero with the failing case(s) described.
The reference is imported from the peers directory: --peers-dir, else $PEERS_DIR, else
`$(git rev-parse --show-toplevel)/../shared/bench/peers`.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(SCRIPT_DIR)


# ----------------------------------------------------------------------------------------
# Locating and importing the reference
# ----------------------------------------------------------------------------------------
def default_peers_dir() -> str:
    if os.environ.get("PEERS_DIR"):
        return os.environ["PEERS_DIR"]
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=SCRIPT_DIR,
                             capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        top = REPO_ROOT
    return os.path.normpath(os.path.join(top, "..", "shared", "bench", "peers"))


def import_reference(peers_dir: str):
    if not os.path.isfile(os.path.join(peers_dir, "realnvp_ref.py")):
        sys.exit(f"crosscheck: no realnvp_ref.py in {peers_dir} (set --peers-dir or PEERS_DIR)")
    sys.path.insert(0, peers_dir)
    try:
        import torch  # noqa: F401
    except ImportError as e:
        sys.exit(f"crosscheck: PyTorch is needed for the reference model ({e})")
    import realnvp_ref
    import common
    return realnvp_ref, common


# ----------------------------------------------------------------------------------------
# safetensors, by hand
# ----------------------------------------------------------------------------------------
ST_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
NP_TO_ST = {np.dtype("<f4"): "F32", np.dtype("<f8"): "F64"}


def write_safetensors(path: str, tensors: list[tuple[str, np.ndarray]], metadata: dict[str, str]) -> None:
    """Write a safetensors file: u64 LE header length, JSON header, raw LE C-order tensor bytes.

    Tensors are laid out in list order; the header is padded with spaces so that the data
    buffer starts at a multiple of 8 bytes (as the reference writers do).
    """
    header: dict = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name, arr in tensors:
        a = np.ascontiguousarray(arr)
        dt = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        if dt not in NP_TO_ST:
            raise ValueError(f"{name}: unsupported dtype {a.dtype}")
        raw = a.astype(dt.newbyteorder("<"), copy=False).tobytes(order="C")
        header[name] = {"dtype": NP_TO_ST[dt], "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - (8 + len(hjson)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def read_safetensors(path: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """Read and validate a safetensors file; returns (metadata, {name: array}).

    Checks: header length within the file, JSON object, string-to-string metadata, known
    dtypes (F32, F64), byte ranges matching shapes and tiling the data buffer exactly.
    """
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: {len(data)} bytes, too short for a safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path}: header length {n} exceeds file size {len(data)} - 8")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: header is not a JSON object")
    buf = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise ValueError(f"{path}: __metadata__ must map strings to strings, got {meta!r}")
    tensors: dict[str, np.ndarray] = {}
    ranges = []
    for name, info in header.items():
        if set(info) != {"dtype", "shape", "data_offsets"}:
            raise ValueError(f"{path}: tensor {name}: keys {sorted(info)}")
        if info["dtype"] not in ST_DTYPES:
            raise ValueError(f"{path}: tensor {name}: dtype {info['dtype']} not F32/F64")
        dt = ST_DTYPES[info["dtype"]]
        shape = tuple(int(s) for s in info["shape"])
        b, e = (int(v) for v in info["data_offsets"])
        count = int(np.prod(shape)) if shape else 1
        if not (0 <= b <= e <= len(buf)) or e - b != count * dt.itemsize:
            raise ValueError(f"{path}: tensor {name}: data_offsets {[b, e]} do not fit shape {list(shape)} "
                             f"{info['dtype']} in a {len(buf)}-byte buffer")
        tensors[name] = np.frombuffer(buf[b:e], dtype=dt).reshape(shape).copy()
        ranges.append((b, e, name))
    pos = 0
    for b, e, name in sorted(ranges):
        if b != pos:
            raise ValueError(f"{path}: tensor {name} starts at {b}, expected {pos} (hole or overlap)")
        pos = e
    if pos != len(buf):
        raise ValueError(f"{path}: {len(buf) - pos} trailing bytes after the last tensor")
    return meta, tensors


def safetensors_package():
    try:
        import safetensors.numpy as stnp
        from safetensors import safe_open
        return stnp, safe_open
    except ImportError:
        return None


# ----------------------------------------------------------------------------------------
# Reference model <-> Tributary file
# ----------------------------------------------------------------------------------------
def reverse_perms(dim: int, couplings: int) -> list[list[int]]:
    return [list(range(dim - 1, -1, -1)) for _ in range(couplings)]


@dataclass
class FlowSpec:
    """A reference RealNVP plus the parts of a Tributary model the reference class lacks."""
    model: object                      # realnvp_ref.RealNVP
    perms: list[list[int]]             # output column j = input column perms[l][j]
    mean: np.ndarray | None = None     # standardisation, shape [D]
    std: np.ndarray | None = None
    seed: int = 0
    step: int = 0

    @property
    def dim(self) -> int:
        return self.model.dim


def model_to_file(spec: FlowSpec, path: str, np_dtype) -> dict[str, str]:
    """Write the reference model as a Tributary model file (DESIGN §5). Returns the metadata."""
    m = spec.model
    first = m.couplings[0].net
    hidden = first[0].out_features
    linears = [i for i, mod in enumerate(first) if hasattr(mod, "weight")]
    depth = len(linears) - 1
    tensors = []
    for l, c in enumerate(m.couplings):
        for k, idx in enumerate(linears):
            lin = c.net[idx]
            tensors.append((f"couplings.{l}.net.{k}.weight", lin.weight.detach().double().numpy().astype(np_dtype)))
            tensors.append((f"couplings.{l}.net.{k}.bias", lin.bias.detach().double().numpy().astype(np_dtype)))
    if spec.mean is not None:
        tensors.append(("standardize.mean", spec.mean.astype(np_dtype)))
        tensors.append(("standardize.std", spec.std.astype(np_dtype)))
    meta = {
        "format": "tributary-realnvp",
        "format_version": "1",
        "dimension": str(m.dim),
        "couplings": str(len(m.couplings)),
        "hidden": str(hidden),
        "depth": str(depth),
        "activation": "relu",
        "scale_function": "exp_tanh",
        "permutations": json.dumps(spec.perms),
        "standardize": "true" if spec.mean is not None else "false",
        "dtype": "float64" if np.dtype(np_dtype) == np.float64 else "float32",
        "step": str(spec.step),
        "seed": str(spec.seed),
    }
    write_safetensors(path, tensors, meta)
    return meta


class FileError(Exception):
    pass


def file_to_model(ref, meta: dict[str, str], tensors: dict[str, np.ndarray]) -> tuple[FlowSpec, list[str]]:
    """Rebuild the reference RealNVP from a Tributary model file (mapping file k -> Sequential 2k).

    Returns the spec and a list of notes. Raises FileError when the file does not describe a
    model the reference can represent, naming what is wrong.
    """
    import torch
    notes = []

    def need(key):
        if key not in meta:
            raise FileError(f"metadata lacks {key!r} (has {sorted(meta)})")
        return meta[key]

    expect = {"format": "tributary-realnvp", "format_version": "1", "activation": "relu",
              "scale_function": "exp_tanh"}
    for k, v in expect.items():
        if need(k) != v:
            raise FileError(f"metadata {k}={meta[k]!r}, expected {v!r}")
    D, K, H, depth = (int(need(k)) for k in ("dimension", "couplings", "hidden", "depth"))
    if depth != 2:
        raise FileError(f"depth {depth}: the reference RealNVP has depth 2 only")
    perms = json.loads(need("permutations"))
    if len(perms) != K or any(sorted(p) != list(range(D)) for p in perms):
        raise FileError(f"permutations {perms} are not {K} permutations of 0..{D - 1}")
    dtype_name = need("dtype")
    if dtype_name not in ("float32", "float64"):
        raise FileError(f"dtype {dtype_name!r}")
    want_np = np.float64 if dtype_name == "float64" else np.float32
    standardize = need("standardize")
    if standardize not in ("true", "false"):
        raise FileError(f"standardize={standardize!r}, expected 'true' or 'false'")

    model = ref.build(D, K, H, seed=0).double()
    used = set()
    sd = {}
    for l in range(K):
        for k in range(depth + 1):
            for part in ("weight", "bias"):
                fname = f"couplings.{l}.net.{k}.{part}"
                if fname not in tensors:
                    raise FileError(f"tensor {fname} missing")
                arr = tensors[fname]
                if arr.dtype != want_np:
                    raise FileError(f"tensor {fname} is {arr.dtype}, metadata says {dtype_name}")
                tname = f"couplings.{l}.net.{2 * k}.{part}"
                target = model.state_dict()[tname]
                if tuple(arr.shape) != tuple(target.shape):
                    raise FileError(f"tensor {fname} shape {list(arr.shape)}, reference {tname} is {list(target.shape)}")
                sd[tname] = torch.from_numpy(arr.astype(np.float64))
                used.add(fname)
    missing = set(model.state_dict()) - set(sd)
    if missing:
        raise FileError(f"reference parameters not in the file: {sorted(missing)}")
    model.load_state_dict(sd)
    mean = std = None
    if standardize == "true":
        for n in ("standardize.mean", "standardize.std"):
            if n not in tensors or tensors[n].shape != (D,):
                raise FileError(f"{n} missing or not of shape [{D}]")
            used.add(n)
        mean = tensors["standardize.mean"].astype(np.float64)
        std = tensors["standardize.std"].astype(np.float64)
        if not np.all(std > 0):
            raise FileError("standardize.std has non-positive entries")
    extra = set(tensors) - used
    if extra:
        raise FileError(f"tensors the model does not use: {sorted(extra)}")
    if perms != reverse_perms(D, K):
        notes.append("non-default permutations")
    spec = FlowSpec(model=model, perms=perms, mean=mean, std=std,
                    seed=int(meta.get("seed", "0") or 0), step=int(meta.get("step", "0") or 0))
    return spec, notes


def ref_forward(spec: FlowSpec, x: np.ndarray):
    """z = f(x) and log|det J| in float64: standardise, then K x [coupling, permutation]."""
    import torch
    m = spec.model.double()
    with torch.no_grad():
        h = torch.from_numpy(np.asarray(x, dtype=np.float64))
        logdet = torch.zeros(h.shape[0], dtype=torch.float64)
        if spec.mean is not None:
            h = (h - torch.from_numpy(spec.mean)) / torch.from_numpy(spec.std)
            logdet = logdet - float(np.log(spec.std).sum())
        for l, c in enumerate(m.couplings):
            h, ld = c(h)
            logdet = logdet + ld
            h = h[:, spec.perms[l]]
    return h.numpy(), logdet.numpy()


def ref_log_prob(spec: FlowSpec, x: np.ndarray) -> np.ndarray:
    z, logdet = ref_forward(spec, x)
    return -0.5 * (z * z).sum(axis=1) - 0.5 * z.shape[1] * math.log(2 * math.pi) + logdet


# ----------------------------------------------------------------------------------------
# Data files
# ----------------------------------------------------------------------------------------
def write_csv(path: str, x: np.ndarray) -> None:
    fmt = "%.17g" if x.dtype == np.float64 else "%.9g"   # exact round trip
    np.savetxt(path, x, fmt=fmt, delimiter=",")


def read_scores(path: str, rows: int) -> np.ndarray:
    """One log p(x) per row from a `tributary score` output: NPY (N,) or (N,1), or CSV."""
    if path.endswith(".npy"):
        a = np.load(path, allow_pickle=False)
        if a.dtype.names:
            names = [n for n in a.dtype.names if "log" in n.lower()] or list(a.dtype.names)
            a = a[names[0]]
        if a.ndim == 2 and a.shape[1] == 1:
            a = a[:, 0]
        if a.ndim != 1:
            raise ValueError(f"{path}: shape {a.shape}, expected ({rows},) or ({rows}, 1)")
    else:
        with open(path, newline="") as f:
            text = f.read()
        dialect_delim = "\t" if "\t" in text.splitlines()[0] else ","
        lines = [r for r in csv.reader(text.splitlines(), delimiter=dialect_delim) if r]
        col = 0
        try:
            float(lines[0][0])
        except ValueError:                       # header row
            hdr = [h.strip().lower() for h in lines[0]]
            cands = [i for i, h in enumerate(hdr) if "log" in h]
            col = cands[0] if cands else 0
            lines = lines[1:]
        a = np.array([float(r[col]) for r in lines])
    if a.shape[0] != rows:
        raise ValueError(f"{path}: {a.shape[0]} scores for {rows} input rows")
    return a


# ----------------------------------------------------------------------------------------
# Running the binary
# ----------------------------------------------------------------------------------------
class RunError(Exception):
    pass


def run(binary: str, args: list[str], timeout: float = 600.0) -> str:
    cmd = [binary] + args
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise RunError(f"timed out after {timeout:.0f} s: {' '.join(cmd)}")
    if p.returncode != 0:
        tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
        raise RunError(f"exit {p.returncode}: {' '.join(cmd)}\n{tail}")
    _ = time.perf_counter() - t0
    return p.stdout


# ----------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    ok: bool
    err: float = float("nan")      # max abs error
    rel: float = float("nan")      # max abs error / max(1, |ref|)
    tol: float = float("nan")
    note: str = ""
    detail: str = ""
    skipped: bool = False


@dataclass
class Checker:
    results: list[Result] = field(default_factory=list)

    def add(self, r: Result) -> Result:
        self.results.append(r)
        mark = "skip" if r.skipped else ("ok  " if r.ok else "FAIL")
        err = "" if math.isnan(r.err) else f" max|err|={r.err:.3e} rel={r.rel:.3e} (tol {r.tol:.0e})"
        print(f"  [{mark}] {r.name}{err}{(' -- ' + r.note) if r.note else ''}", flush=True)
        if not r.ok and r.detail:
            print("         " + r.detail.replace("\n", "\n         "), flush=True)
        return r

    def compare(self, name: str, got: np.ndarray, want: np.ndarray, rtol: float, note: str = "") -> Result:
        got = np.asarray(got, dtype=np.float64)
        want = np.asarray(want, dtype=np.float64)
        if got.shape != want.shape:
            return self.add(Result(name, False, note=note, detail=f"shape {got.shape} vs reference {want.shape}"))
        diff = np.abs(got - want)
        scale = np.maximum(1.0, np.abs(want))
        rel = diff / scale
        bad = ~np.isfinite(got) | (rel > rtol)
        r = Result(name, not bad.any(), float(np.nanmax(diff)) if diff.size else 0.0,
                   float(np.nanmax(rel)) if rel.size else 0.0, rtol, note)
        if bad.any():
            idx = np.flatnonzero(bad)[:3]
            r.detail = f"{bad.sum()} of {got.size} rows out of tolerance; first: " + "; ".join(
                f"row {i}: tributary {float(got[i]):.17g} reference {float(want[i]):.17g}" for i in idx)
            if np.isfinite(r.rel) and r.rel > rtol and np.allclose(got, -want, rtol=1e-3):
                r.detail += "\n(scores look negated: is the output -log p or NLL?)"
        return self.add(r)

    def expect(self, name: str, cond: bool, note: str = "", detail: str = "") -> Result:
        return self.add(Result(name, bool(cond), note=note, detail=detail if not cond else ""))


def perturb_all(model, seed: int) -> None:
    """Seeded noise on EVERY parameter, scaled by 1/sqrt(fan-in) (the zero last layers too), so
    the flow is far from the identity while z stays of moderate size."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for c in model.couplings:
            lins = [mod for mod in c.net if hasattr(mod, "weight")]
            for i, lin in enumerate(lins):
                last = i == len(lins) - 1
                s = (0.4 if last else 0.5) / math.sqrt(lin.in_features)
                lin.weight.add_(torch.randn(lin.weight.shape, generator=g, dtype=lin.weight.dtype) * s)
                lin.bias.add_(torch.randn(lin.bias.shape, generator=g, dtype=lin.bias.dtype) * (0.2 if last else s))


@dataclass
class CaseA:
    name: str
    dim: int
    couplings: int
    hidden: int
    seed: int
    standardize: bool = False
    random_perms: bool = False
    csv: bool = False
    dtypes: tuple = ("float32", "float64")


CASES_A = [
    CaseA("D2", 2, 6, 16, seed=11),
    CaseA("D5", 5, 5, 24, seed=12),
    CaseA("D16", 16, 10, 128, seed=13),                        # the tab16 shape
    CaseA("D5+standardize", 5, 4, 24, seed=14, standardize=True),
    CaseA("D5+permutations", 5, 4, 24, seed=15, random_perms=True),
    CaseA("D5 csv", 5, 3, 16, seed=16, csv=True, dtypes=("float32",)),
]

ROWS = 256
RTOL = {"float32": 1e-4, "float64": 1e-10}


def build_case_model(ref, case: CaseA) -> FlowSpec:
    model = ref.build(case.dim, case.couplings, case.hidden, seed=case.seed)
    perturb_all(model, seed=1000 + case.seed)
    rng = np.random.default_rng(case.seed)
    perms = reverse_perms(case.dim, case.couplings)
    if case.random_perms:
        perms = [[int(v) for v in rng.permutation(case.dim)] for _ in range(case.couplings)]
    mean = std = None
    if case.standardize:
        mean = rng.normal(0.0, 2.0, size=case.dim)
        std = rng.uniform(0.4, 2.5, size=case.dim)
    return FlowSpec(model=model, perms=perms, mean=mean, std=std, seed=case.seed, step=0)


def case_rows(case: CaseA, spec: FlowSpec) -> np.ndarray:
    rng = np.random.default_rng(500 + case.seed)
    x = rng.normal(0.0, 1.3, size=(ROWS, case.dim))
    if spec.mean is not None:
        x = spec.mean + spec.std * x
    return x


def rounded_spec(spec: FlowSpec, np_dtype) -> FlowSpec:
    """The spec with every parameter rounded to np_dtype (what the file holds), kept in float64."""
    import copy
    import torch
    m = copy.deepcopy(spec.model).double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.from_numpy(p.numpy().astype(np_dtype).astype(np.float64)))
    r = lambda a: None if a is None else a.astype(np_dtype).astype(np.float64)  # noqa: E731
    return FlowSpec(model=m, perms=spec.perms, mean=r(spec.mean), std=r(spec.std), seed=spec.seed, step=spec.step)


def python_side_a(ref, chk: Checker, work: str, st) -> list[tuple]:
    """Write every case's files and check them in Python; returns (case, dtype, model path,
    input path, input rows as written, the spec rounded to the file's dtype)."""
    import torch
    jobs = []
    for case in CASES_A:
        spec = build_case_model(ref, case)
        x = case_rows(case, spec)
        # sanity of the oracle itself: the perturbed model is far from the identity, and with
        # default permutations / no standardisation ref_forward is the reference's log_prob.
        z, ld = ref_forward(spec, x)
        if spec.mean is None and not case.random_perms:
            with torch.no_grad():
                lp_ref = spec.model.double().log_prob(torch.from_numpy(x)).numpy()
            chk.compare(f"a/{case.name} oracle: wrapper == realnvp_ref.log_prob", ref_log_prob(spec, x), lp_ref, 1e-13)
        chk.expect(f"a/{case.name} oracle: non-trivial flow", np.abs(ld).max() > 0.1,
                   note=f"max abs logdet {np.abs(ld).max():.2f}, max abs z {np.abs(z).max():.2f}")
        # every parameter perturbed (no zero last layer remains)
        zero = [n for n, p in spec.model.named_parameters() if torch.count_nonzero(p).item() < p.numel()]
        chk.expect(f"a/{case.name} all parameters perturbed", not zero, detail=f"zero entries in {zero}")
        for dname in case.dtypes:
            npd = np.float64 if dname == "float64" else np.float32
            mpath = os.path.join(work, f"a_{case.name.replace(' ', '_').replace('+', '_')}_{dname}.safetensors")
            meta = model_to_file(spec, mpath, npd)
            xin = x.astype(npd)
            ext = ".csv" if case.csv else ".npy"
            ipath = mpath.replace(".safetensors", "_x" + ext)
            if case.csv:
                write_csv(ipath, xin)
            else:
                np.save(ipath, xin)
            # read back with our reader and rebuild the reference from the file
            m2, t2 = read_safetensors(mpath)
            chk.expect(f"a/{case.name}/{dname} file metadata round trip", m2 == meta, detail=f"{m2} != {meta}")
            spec2, _ = file_to_model(ref, m2, t2)
            exact = rounded_spec(spec, npd)
            chk.compare(f"a/{case.name}/{dname} file -> reference == model", ref_log_prob(spec2, xin), ref_log_prob(exact, xin), 0.0)
            if st is not None:
                stnp, safe_open = st
                t3 = stnp.load_file(mpath)
                with safe_open(mpath, framework="numpy") as f:
                    m3 = f.metadata()
                same = set(t3) == set(t2) and all(t3[n].dtype == t2[n].dtype and np.array_equal(t3[n], t2[n]) for n in t2)
                chk.expect(f"a/{case.name}/{dname} safetensors package reads it identically", same and m3 == meta)
            jobs.append((case, dname, mpath, ipath, xin, exact))
    return jobs


def tributary_side_a(chk: Checker, binary: str, jobs) -> None:
    for case, dname, mpath, ipath, xin, exact in jobs:
        name = f"a/{case.name}/{dname} tributary score vs reference (float64)"
        ext = ".csv" if case.csv else ".npy"
        opath = mpath.replace(".safetensors", "_logp" + ext)
        try:
            run(binary, ["score", "--model", mpath, "--input", ipath, "--output", opath])
            got = read_scores(opath, ROWS)
        except (RunError, ValueError, OSError) as e:
            chk.add(Result(name, False, detail=str(e)))
            continue
        want = ref_log_prob(exact, xin)
        note = ""
        if ext == ".npy":
            out = np.load(opath)
            note = f"output {out.dtype} {out.shape}"
        chk.compare(name, got, want, RTOL[dname], note=note)


def torch_f32_error(ref, chk: Checker) -> None:
    """How far PyTorch's own float32 evaluation is from float64 on the D16 case (context for the tolerance)."""
    import torch
    case = CASES_A[2]
    spec = build_case_model(ref, case)
    x = case_rows(case, spec).astype(np.float32)
    exact = rounded_spec(spec, np.float32)
    m32 = spec.model.float()
    with torch.no_grad():
        lp32 = m32.log_prob(torch.from_numpy(x)).double().numpy()
    chk.compare("a/D16 context: PyTorch float32 vs float64", lp32, ref_log_prob(exact, x), RTOL["float32"])


@dataclass
class CaseB:
    name: str
    train_args: list[str]
    expect_meta: dict[str, str]
    rows: object                      # callable (common) -> np.ndarray of rows to score
    needs: tuple = ()                 # `train --help` options this case uses beyond the brief's CLI


CASES_B = [
    # the brief's case: two moons, float32, no standardisation
    CaseB("moons", ["--data", "moons", "--steps", "50", "--batch", "256", "--couplings", "4", "--hidden", "32",
                    "--seed", "3"],
          {"dimension": "2", "couplings": "4", "hidden": "32", "depth": "2", "seed": "3", "step": "50"},
          lambda common: common.two_moons(512, 0.05, seed=7)),
    # float64 parameters and the standardisation layer, on a 5-D Gaussian mixture
    CaseB("mixture5 float64 standardize",
          ["--data", "mixture:5", "--steps", "30", "--batch", "256", "--couplings", "3", "--hidden", "16",
           "--seed", "4", "--dtype", "float64", "--standardize"],
          {"dimension": "5", "couplings": "3", "hidden": "16", "depth": "2", "seed": "4", "step": "30",
           "dtype": "float64", "standardize": "true"},
          lambda common: common.gaussian_mixture(512, 5, seed=9).astype(np.float64),
          needs=("--dtype", "--standardize")),
]


def help_text(binary: str, sub: str) -> str:
    try:
        p = subprocess.run([binary, sub, "--help"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return p.stdout + p.stderr
    except (OSError, subprocess.TimeoutExpired):
        return ""


def side_b(ref, common, chk: Checker, binary: str, work: str, st) -> None:
    """Tributary -> Python: train, load in the reference, compare scores on data and samples."""
    train_help = help_text(binary, "train")
    sample_help = help_text(binary, "sample")
    for case in CASES_B:
        missing = [o for o in case.needs if o not in train_help]
        if missing:
            chk.add(Result(f"b/{case.name}", True, skipped=True,
                           note=f"skipped: `tributary train` has no {', '.join(missing)}"))
            continue
        side_b_case(ref, common, chk, binary, work, st, case, "--log-prob" in sample_help)


def side_b_case(ref, common, chk: Checker, binary: str, work: str, st, case: CaseB, sample_log_prob: bool) -> None:
    tag = case.name.replace(" ", "_")
    name = lambda what: f"b/{case.name}: {what}"  # noqa: E731
    mpath = os.path.join(work, f"b_{tag}.safetensors")
    try:
        run(binary, ["train"] + case.train_args + ["--out", mpath], timeout=900)
    except RunError as e:
        chk.add(Result(name("train writes a model"), False, detail=str(e)))
        return
    if not chk.expect(name("train writes a model"), os.path.isfile(mpath)).ok:
        return
    try:
        meta, tensors = read_safetensors(mpath)
        spec, notes = file_to_model(ref, meta, tensors)
    except (ValueError, FileError) as e:
        chk.add(Result(name("model file readable by the reference"), False, detail=str(e)))
        return
    chk.expect(name("model file readable by the reference"), True,
               note=f"dtype {meta['dtype']}, standardize {meta['standardize']}, {len(tensors)} tensors"
               + (f", {'; '.join(notes)}" if notes else ""))
    wrong = {k: (meta.get(k), v) for k, v in case.expect_meta.items() if meta.get(k) != v}
    chk.expect(name("metadata matches the train command"), not wrong,
               note=", ".join(f"{k}={meta.get(k)}" for k in ("seed", "step", "dtype", "standardize")),
               detail=f"(found, expected): {wrong}")
    if st is not None:
        stnp, safe_open = st
        try:
            t3 = stnp.load_file(mpath)
            with safe_open(mpath, framework="numpy") as f:
                m3 = f.metadata()
            same = set(t3) == set(tensors) and all(np.array_equal(t3[n], tensors[n]) for n in tensors)
            chk.expect(name("safetensors package reads it identically"), same and m3 == meta)
        except Exception as e:  # noqa: BLE001 -- report any reader failure as a check
            chk.add(Result(name("safetensors package reads it identically"), False, detail=f"{type(e).__name__}: {e}"))
    K = int(meta["couplings"])
    last = [tensors[f"couplings.{l}.net.{meta['depth']}.weight"] for l in range(K)]
    chk.expect(name("training moved the zero-initialised last layers"), any(np.abs(w).max() > 0 for w in last))

    rtol = RTOL.get(meta["dtype"], 1e-4)
    # scores on data rows
    x = case.rows(common)
    xpath = os.path.join(work, f"b_{tag}_x.npy")
    np.save(xpath, x)
    opath = os.path.join(work, f"b_{tag}_logp.npy")
    try:
        run(binary, ["score", "--model", mpath, "--input", xpath, "--output", opath])
        got = read_scores(opath, x.shape[0])
        chk.compare(name("tributary score vs reference on data rows"), got, ref_log_prob(spec, x), rtol,
                    note=f"input {x.dtype}")
        base = float(np.mean(-0.5 * (x.astype(np.float64) ** 2).sum(axis=1) - 0.5 * x.shape[1] * math.log(2 * math.pi)))
        chk.expect(name("trained model fits the data better than N(0, I)"), got.mean() > base,
                   note=f"mean log p {got.mean():.3f} vs {base:.3f}")
    except (RunError, ValueError) as e:
        chk.add(Result(name("tributary score vs reference on data rows"), False, detail=str(e)))

    # samples: scores, and the reference forward map sends them to ~N(0, I)
    n = 2048
    D = int(meta["dimension"])
    spath = os.path.join(work, f"b_{tag}_samples.npy")
    lpath = os.path.join(work, f"b_{tag}_samples_inverse_logp.npy")
    try:
        run(binary, ["sample", "--model", mpath, "--count", str(n), "--output", spath, "--seed", "5"]
            + (["--log-prob", lpath] if sample_log_prob else []))
        s = np.load(spath)
    except (RunError, ValueError, OSError) as e:
        chk.add(Result(name("sample"), False, detail=str(e)))
        return
    if not chk.expect(name("sample shape and finiteness"), s.shape == (n, D) and np.isfinite(s).all(),
                      note=f"{s.dtype} {s.shape}").ok:
        return
    want = ref_log_prob(spec, s)
    sopath = os.path.join(work, f"b_{tag}_samples_logp.npy")
    try:
        run(binary, ["score", "--model", mpath, "--input", spath, "--output", sopath])
        got = read_scores(sopath, n)
        chk.compare(name("tributary score vs reference on tributary samples"), got, want, rtol)
    except (RunError, ValueError) as e:
        chk.add(Result(name("tributary score vs reference on tributary samples"), False, detail=str(e)))
    if sample_log_prob:
        try:
            got = read_scores(lpath, n)
            # computed along the inverse path (from z); the samples file holds the model's dtype
            chk.compare(name("sample --log-prob vs reference on the samples"), got, want, rtol)
        except (ValueError, OSError) as e:
            chk.add(Result(name("sample --log-prob vs reference on the samples"), False, detail=str(e)))
    z, _ = ref_forward(spec, s)
    mu, var = z.mean(axis=0), z.var(axis=0)
    # 2048 draws: the standard error of a mean is 0.022, of a variance ~0.031
    chk.expect(name("reference f(samples) ~ N(0, I)"), np.all(np.abs(mu) < 0.12) and np.all(np.abs(var - 1) < 0.2),
               note=f"mean {np.round(mu, 3).tolist()} var {np.round(var, 3).tolist()}")


def schedule_rate(t: int, lr: float, warmup: int, steps: int, floor: float) -> float:
    """docs/model.md's learning rate of the update at 0-based step t (warm-up, then cosine)."""
    if t < warmup:
        return lr * ((t + 1) / warmup)
    if t - warmup >= steps - warmup:
        return floor
    return floor + (lr - floor) * (1 + math.cos(math.pi * (t - warmup) / (steps - warmup))) / 2


def torch_schedule_rates(lr: float, warmup: int, steps: int, floor: float) -> list[float]:
    """The rates PyTorch's own schedulers give: LinearLR warm-up, then CosineAnnealingLR."""
    import torch
    p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    opt = torch.optim.SGD([p], lr=lr)
    warm = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps - warmup, eta_min=floor)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warm, cosine], milestones=[warmup])
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


def side_c(ref, chk: Checker, binary: str, work: str) -> None:
    """Optimiser: Tributary's scheduled AdamW vs torch.optim.AdamW, full batch, float64."""
    import torch
    steps, warmup, lr, floor = 30, 6, 0.02, 0.002
    rng = np.random.default_rng(11)
    x = rng.normal(size=(96, 3)) * np.array([1.0, 0.5, 2.0]) + np.array([0.3, -1.0, 0.5])
    xpath = os.path.join(work, "c_rows.npy")
    np.save(xpath, x)
    common = ["--data", xpath, "--validation", "0", "--batch", "96", "--micro-batch", "96", "--shards", "1",
              "--couplings", "2", "--hidden", "8", "--depth", "2", "--dtype", "float64", "--seed", "4"]
    init = os.path.join(work, "c_init.safetensors")
    try:
        run(binary, ["train"] + common + ["--steps", "0", "--out", init])
    except RunError as e:
        chk.add(Result("c: train --steps 0 writes the initial model", False, detail=str(e)))
        return

    ours = [schedule_rate(t, lr, warmup, steps, floor) for t in range(steps)]
    chk.compare("c: LinearLR + CosineAnnealingLR rates vs docs/model.md's schedule", np.array(torch_schedule_rates(lr, warmup, steps, floor)),
                np.array(ours), 1e-12, note=f"lr {lr}, warm-up {warmup}, {steps} steps, floor {floor}")

    def reference(weight_decay: float, scheduled: bool) -> dict[str, np.ndarray]:
        meta, tensors = read_safetensors(init)
        spec, _ = file_to_model(ref, meta, tensors)
        model = spec.model.double()
        params = list(model.parameters())
        if weight_decay > 0:
            opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)
        xt = torch.from_numpy(x)
        D = x.shape[1]
        for t in range(steps):
            for group in opt.param_groups:
                group["lr"] = ours[t] if scheduled else lr
            opt.zero_grad()
            h = xt
            logdet = torch.zeros(x.shape[0], dtype=torch.float64)
            for l, c in enumerate(model.couplings):
                h, ld = c(h)
                logdet = logdet + ld
                h = h[:, spec.perms[l]]
            logp = -0.5 * (h * h).sum(dim=1) - 0.5 * D * math.log(2 * math.pi) + logdet
            loss = -logp.mean()
            loss.backward()
            opt.step()
        state = model.state_dict()
        return {f"couplings.{l}.net.{k}.{part}": state[f"couplings.{l}.net.{2 * k}.{part}"].numpy().copy()
                for l in range(len(model.couplings)) for k in range(3) for part in ("weight", "bias")}

    def trained(extra: list[str], tag: str) -> dict[str, np.ndarray] | None:
        path = os.path.join(work, f"c_{tag}.safetensors")
        try:
            run(binary, ["train"] + common + ["--steps", str(steps), "--lr", str(lr), "--out", path] + extra)
        except RunError as e:
            chk.add(Result(f"c/{tag}: train", False, detail=str(e)))
            return None
        return read_safetensors(path)[1]

    def flat(tensors: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([tensors[n].ravel() for n in sorted(tensors)])

    for tag, wd, scheduled in (("adamw-cosine", 0.1, True), ("adam-constant", 0.0, False)):
        extra = (["--lr-schedule", "cosine", "--warmup", str(warmup), "--min-lr", str(floor)] if scheduled else [])
        extra += ["--weight-decay", str(wd)] if wd > 0 else []
        got = trained(extra, tag)
        if got is None:
            continue
        want = reference(wd, scheduled)
        # Full-batch gradients summed in another order differ in the last bits; Adam carries them on.
        chk.compare(f"c/{tag}: {steps} steps vs torch.optim.{'AdamW' if wd > 0 else 'Adam'}", flat(got), flat(want), 1e-7,
                    note=" ".join(extra) or "constant lr, no decay")
        if wd > 0:
            plain = reference(0.0, scheduled)
            gap = float(np.max(np.abs(flat(plain) - flat(want))))
            chk.expect(f"c/{tag}: the decay changes the parameters (the check can fail)", gap > 1e-5,
                       note=f"max |AdamW − Adam| = {gap:.2e}")


def python_only_extras(chk: Checker, work: str, st) -> None:
    """Reader vs the safetensors package in the other direction, and reader rejections."""
    rng = np.random.default_rng(0)
    arrs = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": rng.normal(size=(5,)),
            "c": np.zeros((0, 2), dtype=np.float32), "s": np.array(2.5, dtype=np.float32)}
    if st is not None:
        stnp, _ = st
        p = os.path.join(work, "pkg_written.safetensors")
        stnp.save_file(arrs, p, metadata={"k": "v"})
        meta, t = read_safetensors(p)
        chk.expect("reader reads a file the safetensors package wrote",
                   meta == {"k": "v"} and set(t) == set(arrs) and all(
                       t[n].dtype == arrs[n].dtype and t[n].shape == arrs[n].shape and np.array_equal(t[n], arrs[n])
                       for n in arrs))
    p = os.path.join(work, "bad.safetensors")
    write_safetensors(p, list(arrs.items()), {"k": "v"})
    with open(p, "rb") as f:
        good = f.read()
    rejected = 0
    for bad in (good[:-1], good + b"\0", good[:8 + 4]):
        with open(p, "wb") as f:
            f.write(bad)
        try:
            read_safetensors(p)
        except (ValueError, json.JSONDecodeError, UnicodeDecodeError):
            rejected += 1
    chk.expect("reader rejects truncated / trailing-byte files", rejected == 3)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--tributary", metavar="PATH", help="the tributary binary")
    ap.add_argument("--keep", metavar="DIR", help="write (and keep) every file in DIR")
    ap.add_argument("--peers-dir", default=None, help="directory holding realnvp_ref.py")
    ap.add_argument("--python-only", action="store_true",
                    help="only the Python halves (writer, reader, oracle); no binary needed")
    args = ap.parse_args()
    if not args.python_only and not args.tributary:
        ap.error("--tributary PATH is required (or --python-only)")
    if args.tributary and not os.access(args.tributary, os.X_OK):
        ap.error(f"--tributary {args.tributary}: not an executable file")
    ref, common = import_reference(args.peers_dir or default_peers_dir())
    import torch
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)

    st = safetensors_package()
    print(f"crosscheck: torch {torch.__version__}, numpy {np.__version__}, "
          f"safetensors package {'present' if st else 'absent (hand-written reader only)'}")
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        work = os.path.abspath(args.keep)
        tmp = None
    else:
        tmp = tempfile.mkdtemp(prefix="tributary-xcheck-")
        work = tmp
    chk = Checker()
    t0 = time.perf_counter()
    try:
        print("(a) Python -> Tributary: reference models written as Tributary files")
        jobs = python_side_a(ref, chk, work, st)
        torch_f32_error(ref, chk)
        python_only_extras(chk, work, st)
        if not args.python_only:
            tributary_side_a(chk, os.path.abspath(args.tributary), jobs)
            print("(b) Tributary -> Python: a trained Tributary model loaded into the reference")
            side_b(ref, common, chk, os.path.abspath(args.tributary), work, st)
            print("(c) Optimiser: scheduled AdamW against torch.optim.AdamW and PyTorch's schedulers")
            side_c(ref, chk, os.path.abspath(args.tributary), work)
    except Exception:  # noqa: BLE001 -- a crash of the checker itself is a failure, shown whole
        chk.add(Result("crosscheck ran to the end", False, detail=traceback.format_exc()))
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    failed = [r for r in chk.results if not r.ok]
    print()
    print("| check | result | max abs err | max rel err | tolerance | note |")
    print("|---|---|---|---|---|---|")
    for r in chk.results:
        f = lambda v: "" if math.isnan(v) else f"{v:.2e}"  # noqa: E731
        note = r.note.replace("|", "\\|")
        print(f"| {r.name} | {'SKIP' if r.skipped else ('PASS' if r.ok else 'FAIL')} | {f(r.err)} | {f(r.rel)} | {f(r.tol)} | {note} |")
    print()
    where = f" (files kept in {work})" if args.keep else ""
    if failed:
        print(f"FAIL: {len(failed)} of {len(chk.results)} checks failed{where}:")
        for r in failed:
            print(f"  - {r.name}: {r.detail or r.note}")
        return 1
    scope = " (Python halves only; run with --tributary for the cross-check)" if args.python_only else ""
    skipped = sum(r.skipped for r in chk.results)
    print(f"PASS: {len(chk.results) - skipped} checks" + (f" ({skipped} skipped)" if skipped else "")
          + f" in {time.perf_counter() - t0:.1f} s{scope}{where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
