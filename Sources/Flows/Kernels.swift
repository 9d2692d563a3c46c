/// The element-wise loops of the flow math, written once for any `FlowScalar`.
///
/// They are called only from the concrete bodies behind `Specialization`, so they compile to
/// plain `Float`/`Double` loops. Every pointer is owned by a workspace or by a caller's
/// `withUnsafe…` scope; none is stored.
enum Kernels {
    /// `c[r, j] = max(c[r, j] + bias[j], 0)` — a hidden layer's bias and ReLU in one pass; NaN stays NaN.
    ///
    /// Written as a select between two computed values (`0 · v` rather than the literal 0) so
    /// that the store is unconditional and the loop vectorises; with a literal the optimiser may
    /// branch around `c = 0`, which mispredicts on half of all ReLU inputs.
    @inline(__always)
    static func addBiasReLU<S: FlowScalar>(_ c: UnsafeMutablePointer<S>, rows: Int, columns: Int, bias: UnsafePointer<S>) {
        for r in 0..<rows {
            let row = c + r * columns
            for j in 0..<columns {
                let v = row[j] + bias[j]
                row[j] = v > 0 ? v : 0 * v
            }
        }
    }

    /// `g[i] = h[i] > 0 ? g[i] : 0` — the ReLU derivative applied to an upstream gradient,
    /// where `h` is the ReLU's output.
    @inline(__always)
    static func reluBackward<S: FlowScalar>(_ g: UnsafeMutablePointer<S>, activation h: UnsafePointer<S>, count: Int) {
        for i in 0..<count {
            let x = g[i]
            g[i] = h[i] > 0 ? x : 0 * x  // an unconditional store, as in `relu`
        }
    }

    /// `sum[j] = Σ_r g[r, j]` (rows added in order), the gradient of a bias.
    @inline(__always)
    static func columnSums<S: FlowScalar>(_ g: UnsafePointer<S>, rows: Int, columns: Int, into sum: UnsafeMutablePointer<S>) {
        sum.update(repeating: 0, count: columns)
        for r in 0..<rows {
            let row = g + r * columns
            for j in 0..<columns { sum[j] += row[j] }
        }
    }

    /// σ = tanh(s̃) and exp(σ) for every row, where `s̃ = netOutput[:, <e] + bias[<e]`: gathered
    /// into contiguous `rows × e` blocks, then transformed in one vectorisable pass.
    @inline(__always)
    static func logScales<S: FlowScalar>(
        rows: Int, transformed e: Int, netOutput o: UnsafePointer<S>, netBias bias: UnsafePointer<S>,
        sigma: UnsafeMutablePointer<S>, expSigma: UnsafeMutablePointer<S>
    ) {
        for r in 0..<rows {
            let net = o + r * 2 * e
            let sr = sigma + r * e
            for j in 0..<e { sr[j] = net[j] + bias[j] }
        }
        S.tanhThenExp(sigma, exp: expSigma, count: rows * e)
    }

    /// One affine coupling, forward, followed by its permutation:
    ///
    ///     y_b = b ⊙ exp(σ) + t,  v = [a, y_b],  next[r, inv[c]] = v[r, c],  logDet[r] += Σ_j σ_j,
    ///
    /// with σ and exp(σ) from `logScales` and `t = netOutput[:, e...] + bias[e...]`.
    /// `input` and `next` have row stride `D`; `netOutput` (the MLP's last product without its
    /// bias) has stride `2e`; `sigma`/`expSigma` stride `e`.
    @inline(__always)
    static func couplingForward<S: FlowScalar>(
        rows: Int, dimension D: Int, conditioner d: Int,
        input: UnsafePointer<S>, netOutput o: UnsafePointer<S>, netBias bias: UnsafePointer<S>,
        sigma: UnsafeMutablePointer<S>, expSigma: UnsafeMutablePointer<S>,
        inversePermutation inv: UnsafePointer<Int>, next: UnsafeMutablePointer<S>, logDet: UnsafeMutablePointer<S>
    ) {
        let e = D - d
        logScales(rows: rows, transformed: e, netOutput: o, netBias: bias, sigma: sigma, expSigma: expSigma)
        for r in 0..<rows {
            let x = input + r * D
            let out = next + r * D
            let net = o + r * 2 * e
            let sr = sigma + r * e
            let er = expSigma + r * e
            for c in 0..<d { out[inv[c]] = x[c] }
            var sum: S = 0
            for j in 0..<e {
                out[inv[d + j]] = x[d + j] * er[j] + (net[e + j] + bias[e + j])
                sum += sr[j]
            }
            logDet[r] += sum
        }
    }

    /// One affine coupling, inverse, preceded by undoing its permutation:
    ///
    ///     v[r, c] = y[r, inv[c]],  a = v[:, <d],  b = (v_b − t) / exp(σ),  out = [a, b],
    ///     logDet[r] += Σ_j σ_j  (the forward log-determinant at the recovered point).
    ///
    /// The caller has already run the MLP on `a` (gathered with `gatherConditioner`). Dividing by
    /// the same `exp(σ)` the forward pass multiplies by keeps the round trip tight.
    @inline(__always)
    static func couplingInverse<S: FlowScalar>(
        rows: Int, dimension D: Int, conditioner d: Int,
        permuted y: UnsafePointer<S>, netOutput o: UnsafePointer<S>, netBias bias: UnsafePointer<S>,
        sigma: UnsafeMutablePointer<S>, expSigma: UnsafeMutablePointer<S>,
        inversePermutation inv: UnsafePointer<Int>, out: UnsafeMutablePointer<S>, logDet: UnsafeMutablePointer<S>?
    ) {
        let e = D - d
        logScales(rows: rows, transformed: e, netOutput: o, netBias: bias, sigma: sigma, expSigma: expSigma)
        for r in 0..<rows {
            let yr = y + r * D
            let xr = out + r * D
            let net = o + r * 2 * e
            let sr = sigma + r * e
            let er = expSigma + r * e
            for c in 0..<d { xr[c] = yr[inv[c]] }
            var sum: S = 0
            for j in 0..<e {
                xr[d + j] = (yr[inv[d + j]] - (net[e + j] + bias[e + j])) / er[j]
                sum += sr[j]
            }
            if let logDet { logDet[r] += sum }
        }
    }

    /// `a[r, c] = y[r, inv[c]]` for `c < d`: the conditioning half of a permuted state, written
    /// with stride `D` into the first `d` columns of `a` (the inverse pass needs `a` before it
    /// can run the MLP).
    @inline(__always)
    static func gatherConditioner<S: FlowScalar>(
        rows: Int, dimension D: Int, conditioner d: Int,
        permuted y: UnsafePointer<S>, inversePermutation inv: UnsafePointer<Int>, into a: UnsafeMutablePointer<S>
    ) {
        for r in 0..<rows {
            for c in 0..<d { a[r * D + c] = y[r * D + inv[c]] }
        }
    }

    /// One affine coupling, backward (DESIGN §1), including its permutation. With the upstream
    /// gradient `gNext` of the permuted output, σ and exp(σ) from the forward pass and the
    /// coupling's input `x`:
    ///
    ///     gv[c] = gNext[inv[c]],  g_b = g_yb ⊙ exp(σ),  g_t = g_yb,
    ///     g_σ = g_yb ⊙ b ⊙ exp(σ) + gLogDet,  g_s̃ = g_σ ⊙ (1 − σ²),  g_a = g_ya (MLP part added later).
    ///
    /// Writes `[g_s̃, g_t]` (stride `2e`) to `gNet` and `[g_a, g_b]` (stride `D`) to `gInput`.
    @inline(__always)
    static func couplingBackward<S: FlowScalar>(
        rows: Int, dimension D: Int, conditioner d: Int,
        gradNext gNext: UnsafePointer<S>, input x: UnsafePointer<S>,
        sigma: UnsafePointer<S>, expSigma: UnsafePointer<S>, inversePermutation inv: UnsafePointer<Int>,
        gradLogDet: S, gradNet: UnsafeMutablePointer<S>, gradInput: UnsafeMutablePointer<S>
    ) {
        let e = D - d
        for r in 0..<rows {
            let gn = gNext + r * D
            let xr = x + r * D
            let gi = gradInput + r * D
            let go = gradNet + r * 2 * e
            let sr = sigma + r * e
            let er = expSigma + r * e
            for c in 0..<d { gi[c] = gn[inv[c]] }
            for j in 0..<e {
                let gyb = gn[inv[d + j]]
                let es = er[j]
                let s = sr[j]
                gi[d + j] = gyb * es
                go[e + j] = gyb
                let gs = gyb * xr[d + j] * es + gradLogDet
                go[j] = gs * (1 - s * s)
            }
        }
    }

    /// `out[r] = −½‖z_r‖² + constant + logDet[r]`, the log-density of each row.
    @inline(__always)
    static func logProbability<S: FlowScalar>(
        rows: Int, dimension D: Int, z: UnsafePointer<S>, logDet: UnsafePointer<S>, constant: S,
        into out: UnsafeMutablePointer<S>
    ) {
        for r in 0..<rows {
            let zr = z + r * D
            var sq: S = 0
            for j in 0..<D { sq += zr[j] * zr[j] }
            out[r] = -sq / 2 + constant + logDet[r]
        }
    }
}
