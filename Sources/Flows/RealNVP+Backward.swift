extension RealNVP {
    /// The summed negative log-likelihood `S = −Σ_i log p(x_i)` of `rows` rows of `x` and its
    /// exact gradient (DESIGN §1's backward), computed in one forward and one backward pass.
    ///
    /// - Parameters:
    ///   - x: `rows × D`, row-major; `rows ≤ workspace.capacity`.
    ///   - parameterGradient: receives `∂S/∂θ` (length `P`; overwritten, not accumulated). The
    ///     mean loss of DESIGN §1 is `S / B`, so a batch gradient is the sum of its
    ///     micro-batches' gradients divided by the batch's row count.
    ///   - inputGradient: when given, receives `∂S/∂x` (`rows × D`).
    /// - Returns: `S`, accumulated in `Double` in row order. NaN/∞ in the input or the result
    ///   propagates into the returned value and the gradient; the caller checks (see `FlatVector.isFinite`).
    @discardableResult
    public func negativeLogLikelihoodGradient(
        _ x: UnsafePointer<Scalar>, rows: Int,
        parameterGradient g: UnsafeMutablePointer<Scalar>, inputGradient: UnsafeMutablePointer<Scalar>?,
        workspace ws: GradientWorkspace<Scalar>
    ) -> Double {
        if Scalar.self == Float.self {
            return Specialization.same(self, as: RealNVP<Float>.self).negativeLogLikelihoodGradientBody(
                x.same(as: Float.self), rows: rows, parameterGradient: g.same(as: Float.self),
                inputGradient: inputGradient?.same(as: Float.self), workspace: Specialization.same(ws, as: GradientWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            return Specialization.same(self, as: RealNVP<Double>.self).negativeLogLikelihoodGradientBody(
                x.same(as: Double.self), rows: rows, parameterGradient: g.same(as: Double.self),
                inputGradient: inputGradient?.same(as: Double.self), workspace: Specialization.same(ws, as: GradientWorkspace<Double>.self))
        }
        return negativeLogLikelihoodGradientBody(x, rows: rows, parameterGradient: g, inputGradient: inputGradient, workspace: ws)
    }

    func negativeLogLikelihoodGradientBody(
        _ x: UnsafePointer<Scalar>, rows: Int,
        parameterGradient g: UnsafeMutablePointer<Scalar>, inputGradient: UnsafeMutablePointer<Scalar>?,
        workspace ws: GradientWorkspace<Scalar>
    ) -> Double {
        precondition(ws.configuration == configuration, "workspace built for another configuration")
        precondition(rows <= ws.capacity, "micro-batch of \(rows) rows exceeds the workspace capacity \(ws.capacity)")
        let D = configuration.dimension
        let d = configuration.conditionerWidth
        let K = configuration.couplings
        let n = rows
        guard n > 0 else {
            g.update(repeating: 0, count: layout.count)
            return 0
        }

        return parameters.withUnsafeBufferPointer { pb -> Double in
            let p = pb.baseAddress!

            // Forward, keeping every activation.
            let ld = ws.logDet.pointer
            ld.update(repeating: standardization?.logDeterminant ?? 0, count: n)
            if let s = standardization {
                standardize(x, rows: n, into: ws.states[0].pointer, using: s)
            } else {
                ws.states[0].pointer.update(from: x, count: n * D)
            }
            for l in 0..<K {
                let input = UnsafePointer(ws.states[l].pointer)
                runConditioner(
                    l, parameters: p, input: input, inputStride: D, rows: n,
                    hidden: { ws.hidden[l][$0].pointer }, output: ws.netOutput.pointer)
                inversePermutations[l].withUnsafeBufferPointer { inv in
                    Kernels.couplingForward(
                        rows: n, dimension: D, conditioner: d, input: input, netOutput: ws.netOutput.pointer,
                        netBias: lastBias(l, parameters: p), sigma: ws.sigma[l].pointer, expSigma: ws.expSigma[l].pointer,
                        inversePermutation: inv.baseAddress!, next: ws.states[l + 1].pointer, logDet: ld)
                }
            }
            let z = ws.states[K].pointer
            Kernels.logProbability(rows: n, dimension: D, z: z, logDet: ld, constant: baseLogNormalizer, into: ws.logProb.pointer)
            var loss = 0.0
            for r in 0..<n { loss -= Double(ws.logProb.pointer[r]) }

            // Backward. ∂S/∂z = z (from −log q), ∂S/∂logdet = −1 per row.
            var gNext = ws.gradStateA.pointer
            var gCur = ws.gradStateB.pointer
            gNext.update(from: z, count: n * D)
            for l in stride(from: K - 1, through: 0, by: -1) {
                let input = UnsafePointer(ws.states[l].pointer)
                inversePermutations[l].withUnsafeBufferPointer { inv in
                    Kernels.couplingBackward(
                        rows: n, dimension: D, conditioner: d, gradNext: gNext, input: input,
                        sigma: ws.sigma[l].pointer, expSigma: ws.expSigma[l].pointer, inversePermutation: inv.baseAddress!,
                        gradLogDet: -1, gradNet: ws.gradNet.pointer, gradInput: gCur)
                }
                backpropagateConditioner(
                    l, parameters: p, gradient: g, rows: n, input: input, hidden: ws.hidden[l],
                    gradOutput: ws.gradNet.pointer, gradInput: gCur, scratchA: ws.gradHiddenA.pointer,
                    scratchB: ws.gradHiddenB.pointer)
                swap(&gNext, &gCur)
            }
            if let inputGradient {
                if let s = standardization {
                    s.std.withUnsafeBufferPointer { std in
                        for r in 0..<n {
                            for j in 0..<D { inputGradient[r * D + j] = gNext[r * D + j] / std[j] }
                        }
                    }
                } else {
                    inputGradient.update(from: gNext, count: n * D)
                }
            }
            return loss
        }
    }

    /// Backward through coupling `l`'s MLP: writes every weight and bias gradient of the coupling
    /// into `g` and adds `(∂S/∂a)` — the MLP's input gradient — into the first `d` columns of
    /// `gradInput` (row stride `D`).
    @inline(__always)
    func backpropagateConditioner(
        _ l: Int, parameters p: UnsafePointer<Scalar>, gradient g: UnsafeMutablePointer<Scalar>, rows n: Int,
        input: UnsafePointer<Scalar>, hidden: [ScratchBuffer<Scalar>], gradOutput: UnsafeMutablePointer<Scalar>,
        gradInput: UnsafeMutablePointer<Scalar>, scratchA: UnsafeMutablePointer<Scalar>, scratchB: UnsafeMutablePointer<Scalar>
    ) {
        let D = configuration.dimension
        let linears = layout.layers[l]
        var gOut = gradOutput  // gradient w.r.t. this layer's output (pre-activation for hidden layers)
        var spare = scratchA
        for k in stride(from: linears.count - 1, through: 0, by: -1) {
            let linear = linears[k]
            let layerInput: UnsafePointer<Scalar> = k == 0 ? input : UnsafePointer(hidden[k - 1].pointer)
            let ldIn = k == 0 ? D : linear.input
            // ∂W[out × in] = gOutᵀ · input
            Scalar.gemm(
                transposeA: true, transposeB: false, m: linear.output, n: linear.input, k: n,
                alpha: 1, a: gOut, lda: linear.output, b: layerInput, ldb: ldIn,
                beta: 0, c: g + linear.weightOffset, ldc: linear.input)
            Kernels.columnSums(gOut, rows: n, columns: linear.output, into: g + linear.biasOffset)
            if k == 0 {
                // ∂a += gOut · W, added into the conditioning columns of gradInput.
                Scalar.gemm(
                    transposeA: false, transposeB: false, m: n, n: linear.input, k: linear.output,
                    alpha: 1, a: gOut, lda: linear.output, b: p + linear.weightOffset, ldb: linear.input,
                    beta: 1, c: gradInput, ldc: D)
            } else {
                // ∂h_{k−1} = (gOut · W) ⊙ [h_{k−1} > 0]
                Scalar.gemm(
                    transposeA: false, transposeB: false, m: n, n: linear.input, k: linear.output,
                    alpha: 1, a: gOut, lda: linear.output, b: p + linear.weightOffset, ldb: linear.input,
                    beta: 0, c: spare, ldc: linear.input)
                Kernels.reluBackward(spare, activation: hidden[k - 1].pointer, count: n * linear.input)
                let used = spare
                spare = gOut == gradOutput ? scratchB : gOut
                gOut = used
            }
        }
    }
}
