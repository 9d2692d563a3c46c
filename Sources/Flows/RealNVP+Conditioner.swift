extension RealNVP {
    /// Runs coupling `l`'s MLP on `rows` rows: the first `d` columns of `input` (row stride
    /// `inputStride`) → `[s̃, t]` in `output` (row stride `2(D−d)`).
    ///
    /// Hidden layer `k`'s post-ReLU activations are written to `hidden(k)` (stride `H`); training
    /// keeps every one of them for the backward pass, inference alternates two buffers.
    @inline(__always)
    func runConditioner(
        _ l: Int, parameters p: UnsafePointer<Scalar>, input: UnsafePointer<Scalar>, inputStride: Int, rows: Int,
        hidden: (Int) -> UnsafeMutablePointer<Scalar>, output: UnsafeMutablePointer<Scalar>
    ) {
        let linears = layout.layers[l]
        var a = input
        var lda = inputStride
        for (k, linear) in linears.enumerated() {
            let isLast = k == linears.count - 1
            let c = isLast ? output : hidden(k)
            // C[rows × out] = bias + A[rows × in] · Wᵀ, W stored [out × in] row-major.
            Kernels.broadcastBias(c, rows: rows, columns: linear.output, bias: p + linear.biasOffset)
            Scalar.gemm(
                transposeA: false, transposeB: true, m: rows, n: linear.output, k: linear.input,
                alpha: 1, a: a, lda: lda, b: p + linear.weightOffset, ldb: linear.input,
                beta: 1, c: c, ldc: linear.output)
            if !isLast { Kernels.relu(c, count: rows * linear.output) }
            a = UnsafePointer(c)
            lda = linear.output
        }
    }
}
