extension RealNVP {
    /// Runs coupling `l`'s MLP on `rows` rows: the first `d` columns of `input` (row stride
    /// `inputStride`) → `[s̃, t]` minus the last layer's bias in `output` (row stride `2(D−d)`);
    /// the coupling kernels add that bias as they read it (`lastBias(l)`), saving a pass.
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
            // C[rows × out] = A[rows × in] · Wᵀ, W stored [out × in] row-major.
            Scalar.gemm(
                transposeA: false, transposeB: true, m: rows, n: linear.output, k: linear.input,
                alpha: 1, a: a, lda: lda, b: p + linear.weightOffset, ldb: linear.input,
                beta: 0, c: c, ldc: linear.output)
            // Hidden layers: + bias, ReLU. The last layer's bias is added by the coupling kernel.
            if !isLast { Kernels.addBiasReLU(c, rows: rows, columns: linear.output, bias: p + linear.biasOffset) }
            a = UnsafePointer(c)
            lda = linear.output
        }
    }

    /// The bias of coupling `l`'s last Linear layer (length `2(D−d)`), inside the flat vector.
    @inline(__always)
    func lastBias(_ l: Int, parameters p: UnsafePointer<Scalar>) -> UnsafePointer<Scalar> {
        p + layout.layers[l][layout.layers[l].count - 1].biasOffset
    }
}
