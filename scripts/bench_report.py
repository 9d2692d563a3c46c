#!/usr/bin/env python3
"""Markdown report of a scripts/bench.sh run: Tributary vs the PyTorch reference, by ratio.

Usage:
    python3 scripts/bench_report.py DIR            print the report, write DIR/report.json
    python3 scripts/bench_report.py DIR --strict   ... and exit 1 if a target is missed

DIR holds `tributary-<config>-t<threads>.json` (the one JSON object printed by
`tributary bench --config C --threads T --json`) and `pytorch-<config>-t<threads>.json`
(written by the peers' `bench_realnvp.py --out`). A Tributary file may carry other lines
before its JSON object; the last line that parses as an object is used.

Targets (shared/bench/PEERS.md, same machine, same run, same threads):
    train samples/s vs PyTorch eager    toy2d >= 3x, tab16 >= 1.5x, wide64 >= 1.1x
    log-prob rows/s vs PyTorch eager    toy2d >= 3x, tab16 >= 1.8x, wide64 >= 1.2x
    peak RSS at tab16                   <= 64 MiB
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import sys
import time

MIB = 1024 * 1024
CONFIG_ORDER = ["toy2d", "tab16", "wide64"]
TRAIN_TARGET = {"toy2d": 3.0, "tab16": 1.5, "wide64": 1.1}
LOGPROB_TARGET = {"toy2d": 3.0, "tab16": 1.8, "wide64": 1.2}
RSS_TARGET_MIB = {"tab16": 64.0}
# OpenBLAS DYNAMIC_ARCH cores without AVX2 kernels: a sign that CPU detection fell back.
SLOW_BLAS_CORES = {"prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington",
                   "nehalem", "atom", "generic", "opteron", "barcelona", "athlon"}

# Tributary's JSON keys, with tolerated alternative spellings.
TRIB_KEYS = {
    "train": ("train_samples_per_s", "train_samples_per_sec", "train"),
    "log_prob": ("logprob_rows_per_s", "log_prob_rows_per_s", "logprob", "log_prob"),
    "sample": ("sample_rows_per_s", "sample"),
}


def load_json_object(path: str) -> dict:
    """The JSON object in a file; if the whole file is not one, the last line that is."""
    with open(path) as f:
        text = f.read()
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            return obj
    except json.JSONDecodeError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
                if isinstance(obj, dict):
                    return obj
            except json.JSONDecodeError:
                continue
    raise ValueError(f"{path}: no JSON object found")


def number(v) -> float | None:
    """A rate from a number or a {"median": …} object."""
    if isinstance(v, dict):
        v = v.get("median")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v)
    return None


def tributary_figures(obj: dict) -> dict:
    out = {}
    for fig, keys in TRIB_KEYS.items():
        out[fig] = next((number(obj[k]) for k in keys if k in obj and number(obj[k]) is not None), None)
    rss = obj.get("peak_rss_bytes")
    if isinstance(rss, (int, float)):
        out["peak_rss_mib"] = rss / MIB
    elif isinstance(obj.get("peak_rss_mib"), (int, float)):
        out["peak_rss_mib"] = float(obj["peak_rss_mib"])
    else:
        out["peak_rss_mib"] = None
    return out


def pytorch_figures(obj: dict) -> dict:
    return {
        "train": number(obj.get("train")),
        "log_prob": number(obj.get("log_prob")),
        "sample": number(obj.get("sample")),
        "peak_rss_mib": number(obj.get("peak_rss_mib")),
        "torch": obj.get("torch"),
        "loadavg_start": obj.get("loadavg_start"),
        "windows": (obj.get("train") or {}).get("windows") if isinstance(obj.get("train"), dict) else None,
        "min_max": {k: [obj[k].get("min"), obj[k].get("max")]
                    for k in ("train", "log_prob", "sample") if isinstance(obj.get(k), dict)},
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def fmt_rate(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def fmt_ratio(r: float | None, target: float | None = None) -> str:
    if r is None:
        return "–"
    s = f"{r:.2f}×"
    if target is not None:
        s += f" {'met' if r >= target else 'missed'} (≥{target:g}×)"
    return s


def collect(directory: str, peer_ran: bool) -> tuple[list[dict], list[str]]:
    problems = []
    keys = set()
    for path in glob.glob(os.path.join(directory, "*.json")):
        m = re.fullmatch(r"(tributary|pytorch)-(.+)-t(\d+)\.json", os.path.basename(path))
        if m:
            keys.add((m.group(2), int(m.group(3))))
    order = lambda k: (CONFIG_ORDER.index(k[0]) if k[0] in CONFIG_ORDER else len(CONFIG_ORDER), k[0], k[1])  # noqa: E731
    rows = []
    for config, threads in sorted(keys, key=order):
        row = {"config": config, "threads": threads, "tributary": None, "pytorch": None}
        tp = os.path.join(directory, f"tributary-{config}-t{threads}.json")
        pp = os.path.join(directory, f"pytorch-{config}-t{threads}.json")
        if os.path.exists(tp):
            try:
                raw = load_json_object(tp)
                row["tributary"] = tributary_figures(raw)
                row["tributary_raw"] = raw
                if raw.get("config") not in (None, config) or raw.get("threads") not in (None, threads):
                    problems.append(f"{tp}: says config={raw.get('config')} threads={raw.get('threads')}")
            except (OSError, ValueError) as e:
                problems.append(str(e))
        if os.path.exists(pp):
            try:
                row["pytorch"] = pytorch_figures(load_json_object(pp))
            except (OSError, ValueError) as e:
                problems.append(str(e))
        t, p = row["tributary"] or {}, row["pytorch"] or {}
        row["ratios"] = {f: ratio(t.get(f), p.get(f)) for f in ("train", "log_prob", "sample")}
        targets = []
        if config in TRAIN_TARGET and peer_ran:
            r = row["ratios"]["train"]
            targets.append({"figure": "train samples/s vs PyTorch eager", "target": f">= {TRAIN_TARGET[config]:g}x",
                            "value": r, "met": None if r is None else r >= TRAIN_TARGET[config]})
        if config in LOGPROB_TARGET and peer_ran:
            r = row["ratios"]["log_prob"]
            targets.append({"figure": "log-prob rows/s vs PyTorch eager", "target": f">= {LOGPROB_TARGET[config]:g}x",
                            "value": r, "met": None if r is None else r >= LOGPROB_TARGET[config]})
        if config in RSS_TARGET_MIB and row["tributary"] is not None:
            v = t.get("peak_rss_mib")
            targets.append({"figure": "peak RSS (MiB)", "target": f"<= {RSS_TARGET_MIB[config]:g} MiB",
                            "value": v, "met": None if v is None else v <= RSS_TARGET_MIB[config]})
        row["targets"] = targets
        rows.append(row)
    return rows, problems


def render(rows: list[dict], peer_note: str | None, run: dict, problems: list[str]) -> str:
    lines = []
    have_peer = any(r["pytorch"] is not None for r in rows)
    title = "Tributary vs PyTorch eager (RealNVP, float32)" if have_peer else "Tributary (RealNVP, float32)"
    lines.append(f"## {title}")
    lines.append("")
    bits = []
    if run.get("git_commit"):
        bits.append(f"commit {run['git_commit'][:12]}{' (dirty)' if run.get('git_dirty') else ''}")
    if run.get("cpu"):
        bits.append(f"{run['cpu']}, {run.get('cpus')} CPUs")
    if run.get("started"):
        bits.append(run["started"])
    if run.get("quick"):
        bits.append("QUICK=1 (short peer windows)")
    if bits:
        lines.append("Run: " + "; ".join(bits) + ".")
        lines.append("")
    if peer_note:
        note = peer_note.strip()
        note += "" if note.endswith(".") else "."
        lines.append(f"**Peer skipped:** {note} Only Tributary's figures are shown; no ratio or "
                     "ratio target can be judged.")
        lines.append("")
    if not rows:
        lines.append("No results found.")
        return "\n".join(lines)

    if have_peer:
        lines.append("| config | threads | Tributary train/s | PyTorch train/s | train ratio | "
                     "Tributary log-prob/s | PyTorch log-prob/s | log-prob ratio | "
                     "Tributary sample/s | PyTorch sample/s | sample ratio | Tributary peak RSS MiB | PyTorch peak RSS MiB |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    else:
        lines.append("| config | threads | Tributary train/s | Tributary log-prob/s | Tributary sample/s | Tributary peak RSS MiB |")
        lines.append("|---|---|---|---|---|---|")
    for r in rows:
        t, p, q = r["tributary"] or {}, r["pytorch"] or {}, r["ratios"]
        rss = t.get("peak_rss_mib")
        rss_s = "–" if rss is None else f"{rss:.1f}"
        if r["config"] in RSS_TARGET_MIB and rss is not None:
            rss_s += f" {'met' if rss <= RSS_TARGET_MIB[r['config']] else 'missed'} (≤{RSS_TARGET_MIB[r['config']]:g})"
        if have_peer:
            prss = p.get("peak_rss_mib")
            lines.append(
                f"| {r['config']} | {r['threads']} "
                f"| {fmt_rate(t.get('train'))} | {fmt_rate(p.get('train'))} "
                f"| {fmt_ratio(q['train'], TRAIN_TARGET.get(r['config']) if r['pytorch'] else None)} "
                f"| {fmt_rate(t.get('log_prob'))} | {fmt_rate(p.get('log_prob'))} "
                f"| {fmt_ratio(q['log_prob'], LOGPROB_TARGET.get(r['config']) if r['pytorch'] else None)} "
                f"| {fmt_rate(t.get('sample'))} | {fmt_rate(p.get('sample'))} | {fmt_ratio(q['sample'])} "
                f"| {rss_s} | {'–' if prss is None else f'{prss:.0f}'} |")
        else:
            lines.append(f"| {r['config']} | {r['threads']} | {fmt_rate(t.get('train'))} | {fmt_rate(t.get('log_prob'))} "
                         f"| {fmt_rate(t.get('sample'))} | {rss_s} |")
    lines.append("")

    targets = [(r, tg) for r in rows for tg in r["targets"]]
    if targets:
        lines.append("### Targets (shared/bench/PEERS.md)")
        lines.append("")
        lines.append("| figure | config | threads | value | target | status |")
        lines.append("|---|---|---|---|---|---|")
        for r, tg in targets:
            v = tg["value"]
            vs = "–" if v is None else (f"{v:.1f} MiB" if "RSS" in tg["figure"] else f"{v:.2f}×")
            st = "no data" if tg["met"] is None else ("met" if tg["met"] else "**missed**")
            tgt = tg["target"].replace(">=", "≥").replace("<=", "≤").replace("x", "×")
            lines.append(f"| {tg['figure']} | {r['config']} | {r['threads']} | {vs} | {tgt} | {st} |")
        met = sum(1 for _, tg in targets if tg["met"])
        missed = sum(1 for _, tg in targets if tg["met"] is False)
        lines.append("")
        lines.append(f"Targets met: {met}, missed: {missed}, without data: {len(targets) - met - missed}.")
        lines.append("")
    if have_peer:
        lines.append("Ratios are Tributary ÷ PyTorch measured back to back in this run; the machine is shared, "
                     "so expect ±10–25 % between runs. PyTorch figures are medians of timed windows "
                     "(shared/bench/peers/common.py); PyTorch's peak RSS includes the interpreter and libtorch.")
    blas = sorted({(str(r["tributary_raw"].get("blas", "")), str(r["tributary_raw"].get("blas_core", "")))
                   for r in rows if r.get("tributary_raw") and (r["tributary_raw"].get("blas") or r["tributary_raw"].get("blas_core"))})
    for lib, core in blas:
        lines.append(f"Tributary's BLAS: {lib or 'unknown'}" + (f", kernel core {core}" if core else "") + ".")
        if core.lower() in SLOW_BLAS_CORES:
            lines.append(f"**Warning:** OpenBLAS chose its generic `{core}` kernels (it did not recognise this CPU); "
                         "GEMM runs at a fraction of the machine's speed. Set e.g. `OPENBLAS_CORETYPE=Haswell` "
                         "(AVX2) or `SkylakeX` (AVX-512) and rerun.")
    missing_t = [f"{r['config']}-t{r['threads']}" for r in rows if r["tributary"] is None]
    missing_p = [f"{r['config']}-t{r['threads']}" for r in rows if r["pytorch"] is None] if not peer_note else []
    if missing_t:
        lines.append(f"No Tributary result for: {', '.join(missing_t)}.")
    if missing_p:
        lines.append(f"No PyTorch result for: {', '.join(missing_p)}.")
    for p in problems:
        lines.append(f"Problem: {p}")
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    args = ap.parse_args()
    if not os.path.isdir(args.dir):
        ap.error(f"{args.dir}: not a directory")
    skipped_path = os.path.join(args.dir, "peer-skipped.txt")
    peer_note = open(skipped_path).read() if os.path.exists(skipped_path) else None
    if peer_note is None and not glob.glob(os.path.join(args.dir, "pytorch-*.json")):
        peer_note = "No PyTorch results in this directory."
    rows, problems = collect(args.dir, peer_ran=peer_note is None)
    run_path = os.path.join(args.dir, "run.json")
    run = {}
    if os.path.exists(run_path):
        try:
            run = load_json_object(run_path)
        except (OSError, ValueError):
            pass
    text = render(rows, peer_note, run, problems)
    print(text, end="")
    report = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "run": run,
        "peer_skipped": peer_note is not None,
        "peer_note": peer_note,
        "targets_source": "shared/bench/PEERS.md",
        "rows": rows,
        "summary": {
            "targets_met": sum(1 for r in rows for t in r["targets"] if t["met"]),
            "targets_missed": sum(1 for r in rows for t in r["targets"] if t["met"] is False),
            "targets_without_data": sum(1 for r in rows for t in r["targets"] if t["met"] is None),
        },
        "problems": problems,
        "markdown": text,
    }
    with open(os.path.join(args.dir, "report.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    if args.strict and report["summary"]["targets_missed"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
