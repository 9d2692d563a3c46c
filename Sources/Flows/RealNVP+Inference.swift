import FlowRandom

extension RealNVP {
    // MARK: Pointer-level entry points (no allocation)

    /// The normalising direction `z = f(x)` and `log|det ∂f/∂x|` for `rows` rows of `x`
    /// (row-major, `rows × D`), in chunks of `workspace.capacity` rows.
    ///
    /// - Parameters:
    ///   - latent: receives `z` (`rows × D`) when given.
    ///   - logDeterminant: receives one value per row (including the standardisation's constant).
    /// NaN or ±∞ in a row propagates to that row's outputs only (rows never mix).
    public func forward(
        _ x: UnsafePointer<Scalar>, rows: Int, latent: UnsafeMutablePointer<Scalar>?,
        logDeterminant: UnsafeMutablePointer<Scalar>, workspace ws: InferenceWorkspace<Scalar>
    ) {
        if Scalar.self == Float.self {
            Specialization.same(self, as: RealNVP<Float>.self).forwardBody(
                x.same(as: Float.self), rows: rows, latent: latent?.same(as: Float.self),
                logDeterminant: logDeterminant.same(as: Float.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            Specialization.same(self, as: RealNVP<Double>.self).forwardBody(
                x.same(as: Double.self), rows: rows, latent: latent?.same(as: Double.self),
                logDeterminant: logDeterminant.same(as: Double.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Double>.self))
        } else {
            forwardBody(x, rows: rows, latent: latent, logDeterminant: logDeterminant, workspace: ws)
        }
    }

    func forwardBody(
        _ x: UnsafePointer<Scalar>, rows: Int, latent: UnsafeMutablePointer<Scalar>?,
        logDeterminant: UnsafeMutablePointer<Scalar>, workspace ws: InferenceWorkspace<Scalar>
    ) {
        precondition(ws.configuration == configuration, "workspace built for another configuration")
        let D = configuration.dimension
        let d = configuration.conditionerWidth
        let constant = standardization?.logDeterminant ?? 0
        parameters.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            var start = 0
            while start < rows {
                let n = min(ws.capacity, rows - start)
                let xin = x + start * D
                let ld = logDeterminant + start
                ld.update(repeating: constant, count: n)
                var current = UnsafePointer(xin)
                var target = ws.stateA.pointer
                if let s = standardization {
                    standardize(xin, rows: n, into: ws.stateA.pointer, using: s)
                    current = UnsafePointer(ws.stateA.pointer)
                    target = ws.stateB.pointer
                }
                for l in 0..<configuration.couplings {
                    runConditioner(
                        l, parameters: p, input: current, inputStride: D, rows: n,
                        hidden: { $0 % 2 == 0 ? ws.hiddenA.pointer : ws.hiddenB.pointer }, output: ws.netOutput.pointer)
                    inversePermutations[l].withUnsafeBufferPointer { inv in
                        Kernels.couplingForward(
                            rows: n, dimension: D, conditioner: d, input: current, netOutput: ws.netOutput.pointer,
                            netBias: lastBias(l, parameters: p), sigma: ws.sigma.pointer, expSigma: ws.expSigma.pointer,
                            inversePermutation: inv.baseAddress!, next: target, logDet: ld)
                    }
                    current = UnsafePointer(target)
                    target = target == ws.stateA.pointer ? ws.stateB.pointer : ws.stateA.pointer
                }
                if let latent {
                    (latent + start * D).update(from: current, count: n * D)
                }
                start += n
            }
        }
    }

    /// `log p(x)` for `rows` rows of `x`; optionally also `z = f(x)` into `latent`.
    public func logProbability(
        _ x: UnsafePointer<Scalar>, rows: Int, into out: UnsafeMutablePointer<Scalar>,
        latent: UnsafeMutablePointer<Scalar>?, workspace ws: InferenceWorkspace<Scalar>
    ) {
        if Scalar.self == Float.self {
            Specialization.same(self, as: RealNVP<Float>.self).logProbabilityBody(
                x.same(as: Float.self), rows: rows, into: out.same(as: Float.self), latent: latent?.same(as: Float.self),
                workspace: Specialization.same(ws, as: InferenceWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            Specialization.same(self, as: RealNVP<Double>.self).logProbabilityBody(
                x.same(as: Double.self), rows: rows, into: out.same(as: Double.self), latent: latent?.same(as: Double.self),
                workspace: Specialization.same(ws, as: InferenceWorkspace<Double>.self))
        } else {
            logProbabilityBody(x, rows: rows, into: out, latent: latent, workspace: ws)
        }
    }

    func logProbabilityBody(
        _ x: UnsafePointer<Scalar>, rows: Int, into out: UnsafeMutablePointer<Scalar>,
        latent: UnsafeMutablePointer<Scalar>?, workspace ws: InferenceWorkspace<Scalar>
    ) {
        let D = configuration.dimension
        var start = 0
        while start < rows {
            let n = min(ws.capacity, rows - start)
            let z = latent.map { $0 + start * D } ?? ws.noise.pointer
            forwardBody(x + start * D, rows: n, latent: z, logDeterminant: ws.logDet.pointer, workspace: ws)
            Kernels.logProbability(
                rows: n, dimension: D, z: z, logDet: ws.logDet.pointer, constant: baseLogNormalizer, into: out + start)
            start += n
        }
    }

    /// The generative direction `x = f⁻¹(z)` for `rows` rows of `z`; optionally the forward
    /// log-determinant `log|det ∂f/∂x|` at each recovered `x` (so that `log p(x) = log q(z) + it`).
    public func inverse(
        _ z: UnsafePointer<Scalar>, rows: Int, into x: UnsafeMutablePointer<Scalar>,
        logDeterminant: UnsafeMutablePointer<Scalar>?, workspace ws: InferenceWorkspace<Scalar>
    ) {
        if Scalar.self == Float.self {
            Specialization.same(self, as: RealNVP<Float>.self).inverseBody(
                z.same(as: Float.self), rows: rows, into: x.same(as: Float.self),
                logDeterminant: logDeterminant?.same(as: Float.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            Specialization.same(self, as: RealNVP<Double>.self).inverseBody(
                z.same(as: Double.self), rows: rows, into: x.same(as: Double.self),
                logDeterminant: logDeterminant?.same(as: Double.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Double>.self))
        } else {
            inverseBody(z, rows: rows, into: x, logDeterminant: logDeterminant, workspace: ws)
        }
    }

    func inverseBody(
        _ z: UnsafePointer<Scalar>, rows: Int, into x: UnsafeMutablePointer<Scalar>,
        logDeterminant: UnsafeMutablePointer<Scalar>?, workspace ws: InferenceWorkspace<Scalar>
    ) {
        precondition(ws.configuration == configuration, "workspace built for another configuration")
        let D = configuration.dimension
        let d = configuration.conditionerWidth
        let K = configuration.couplings
        parameters.withUnsafeBufferPointer { pb in
            let p = pb.baseAddress!
            var start = 0
            while start < rows {
                let n = min(ws.capacity, rows - start)
                let ld = logDeterminant.map { $0 + start } 
                ld?.update(repeating: 0, count: n)
                var current = UnsafePointer(z + start * D)
                var target = ws.stateA.pointer
                for l in stride(from: K - 1, through: 0, by: -1) {
                    inversePermutations[l].withUnsafeBufferPointer { invb in
                        let inv = invb.baseAddress!
                        Kernels.gatherConditioner(
                            rows: n, dimension: D, conditioner: d, permuted: current, inversePermutation: inv, into: target)
                        runConditioner(
                            l, parameters: p, input: target, inputStride: D, rows: n,
                            hidden: { $0 % 2 == 0 ? ws.hiddenA.pointer : ws.hiddenB.pointer }, output: ws.netOutput.pointer)
                        Kernels.couplingInverse(
                            rows: n, dimension: D, conditioner: d, permuted: current, netOutput: ws.netOutput.pointer,
                            netBias: lastBias(l, parameters: p), sigma: ws.sigma.pointer, expSigma: ws.expSigma.pointer,
                            inversePermutation: inv, out: target, logDet: ld)
                    }
                    current = UnsafePointer(target)
                    target = target == ws.stateA.pointer ? ws.stateB.pointer : ws.stateA.pointer
                }
                let xout = x + start * D
                if let s = standardization {
                    unstandardize(current, rows: n, into: xout, using: s)
                    if let ld {
                        let c = s.logDeterminant
                        for r in 0..<n { ld[r] += c }
                    }
                } else {
                    xout.update(from: current, count: n * D)
                }
                start += n
            }
        }
    }

    /// Draws `rows` samples: `z ~ N(0, I)` from `generator` (row by row, coordinate by
    /// coordinate), `x = f⁻¹(z)`, and `log p(x)` computed along the inverse path.
    public func sample(
        rows: Int, generator: inout SeededGenerator, into x: UnsafeMutablePointer<Scalar>,
        logProbability out: UnsafeMutablePointer<Scalar>, workspace ws: InferenceWorkspace<Scalar>
    ) {
        if Scalar.self == Float.self {
            Specialization.same(self, as: RealNVP<Float>.self).sampleBody(
                rows: rows, generator: &generator, into: x.same(as: Float.self),
                logProbability: out.same(as: Float.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            Specialization.same(self, as: RealNVP<Double>.self).sampleBody(
                rows: rows, generator: &generator, into: x.same(as: Double.self),
                logProbability: out.same(as: Double.self), workspace: Specialization.same(ws, as: InferenceWorkspace<Double>.self))
        } else {
            sampleBody(rows: rows, generator: &generator, into: x, logProbability: out, workspace: ws)
        }
    }

    func sampleBody(
        rows: Int, generator: inout SeededGenerator, into x: UnsafeMutablePointer<Scalar>,
        logProbability out: UnsafeMutablePointer<Scalar>, workspace ws: InferenceWorkspace<Scalar>
    ) {
        let D = configuration.dimension
        var start = 0
        while start < rows {
            let n = min(ws.capacity, rows - start)
            let z = ws.noise.pointer
            for i in 0..<(n * D) { z[i] = Scalar(generator.normal()) }
            completeSampleBody(rows: n, into: x + start * D, logProbability: out + start, workspace: ws)
            start += n
        }
    }

    /// `x = f⁻¹(z)` and `log p(x)` for the `rows ≤ capacity` noise rows already in `ws.noise`.
    ///
    /// Always evaluated as a full block of `capacity` rows (rows past `rows` are zero noise whose
    /// results are discarded), so that a sample's bits do not depend on how many rows its block
    /// holds: the first N samples of `count: M > N` are the samples of `count: N`.
    func completeSample(
        rows: Int, into x: UnsafeMutablePointer<Scalar>, logProbability out: UnsafeMutablePointer<Scalar>,
        workspace ws: InferenceWorkspace<Scalar>
    ) {
        if Scalar.self == Float.self {
            Specialization.same(self, as: RealNVP<Float>.self).completeSampleBody(
                rows: rows, into: x.same(as: Float.self), logProbability: out.same(as: Float.self),
                workspace: Specialization.same(ws, as: InferenceWorkspace<Float>.self))
        } else if Scalar.self == Double.self {
            Specialization.same(self, as: RealNVP<Double>.self).completeSampleBody(
                rows: rows, into: x.same(as: Double.self), logProbability: out.same(as: Double.self),
                workspace: Specialization.same(ws, as: InferenceWorkspace<Double>.self))
        } else {
            completeSampleBody(rows: rows, into: x, logProbability: out, workspace: ws)
        }
    }

    func completeSampleBody(
        rows n: Int, into x: UnsafeMutablePointer<Scalar>, logProbability out: UnsafeMutablePointer<Scalar>,
        workspace ws: InferenceWorkspace<Scalar>
    ) {
        let z = ws.noise.pointer
        let D = configuration.dimension
        let B = ws.capacity
        guard n < B else {
            inverseBody(z, rows: n, into: x, logDeterminant: ws.logDet.pointer, workspace: ws)
            Kernels.logProbability(rows: n, dimension: D, z: z, logDet: ws.logDet.pointer, constant: baseLogNormalizer, into: out)
            return
        }
        // A partial block: pad it with zero noise (rows never mix) and keep the first `n` rows.
        (z + n * D).update(repeating: 0, count: (B - n) * D)
        inverseBody(z, rows: B, into: ws.blockInput.pointer, logDeterminant: ws.logDet.pointer, workspace: ws)
        Kernels.logProbability(
            rows: B, dimension: D, z: z, logDet: ws.logDet.pointer, constant: baseLogNormalizer, into: ws.blockOutput.pointer)
        x.update(from: ws.blockInput.pointer, count: n * D)
        out.update(from: ws.blockOutput.pointer, count: n)
    }

    @inline(__always)
    func standardize(_ x: UnsafePointer<Scalar>, rows: Int, into u: UnsafeMutablePointer<Scalar>, using s: Standardization<Scalar>) {
        let D = configuration.dimension
        s.mean.withUnsafeBufferPointer { mean in
            s.std.withUnsafeBufferPointer { std in
                for r in 0..<rows {
                    for j in 0..<D { u[r * D + j] = (x[r * D + j] - mean[j]) / std[j] }
                }
            }
        }
    }

    @inline(__always)
    func unstandardize(_ u: UnsafePointer<Scalar>, rows: Int, into x: UnsafeMutablePointer<Scalar>, using s: Standardization<Scalar>) {
        let D = configuration.dimension
        s.mean.withUnsafeBufferPointer { mean in
            s.std.withUnsafeBufferPointer { std in
                for r in 0..<rows {
                    for j in 0..<D { x[r * D + j] = u[r * D + j] * std[j] + mean[j] }
                }
            }
        }
    }

    // MARK: Array conveniences (allocate their results)

    /// `z = f(x)` and the log-determinant per row for row-major `x` (`x.count` a multiple of `D`).
    public func forward(_ x: [Scalar]) throws(FlowError) -> (latent: [Scalar], logDeterminant: [Scalar]) {
        let rows = try rowCount(x)
        var z = [Scalar](repeating: 0, count: x.count)
        var ld = [Scalar](repeating: 0, count: rows)
        let ws = InferenceWorkspace<Scalar>(configuration: configuration, capacity: min(max(rows, 1), 8192))
        x.withUnsafeBufferPointer { xb in
            z.withUnsafeMutableBufferPointer { zb in
                ld.withUnsafeMutableBufferPointer { lb in
                    guard let xp = xb.baseAddress else { return }
                    forward(xp, rows: rows, latent: zb.baseAddress, logDeterminant: lb.baseAddress!, workspace: ws)
                }
            }
        }
        return (z, ld)
    }

    /// `log p(x)` per row for row-major `x`.
    public func logProbability(_ x: [Scalar]) throws(FlowError) -> [Scalar] {
        let rows = try rowCount(x)
        var out = [Scalar](repeating: 0, count: rows)
        let ws = InferenceWorkspace<Scalar>(configuration: configuration, capacity: min(max(rows, 1), 8192))
        x.withUnsafeBufferPointer { xb in
            out.withUnsafeMutableBufferPointer { ob in
                guard let xp = xb.baseAddress else { return }
                logProbability(xp, rows: rows, into: ob.baseAddress!, latent: nil, workspace: ws)
            }
        }
        return out
    }

    /// `x = f⁻¹(z)` and the forward log-determinant at each `x`, for row-major `z`.
    public func inverse(_ z: [Scalar]) throws(FlowError) -> (data: [Scalar], logDeterminant: [Scalar]) {
        let rows = try rowCount(z)
        var x = [Scalar](repeating: 0, count: z.count)
        var ld = [Scalar](repeating: 0, count: rows)
        let ws = InferenceWorkspace<Scalar>(configuration: configuration, capacity: min(max(rows, 1), 8192))
        z.withUnsafeBufferPointer { zb in
            x.withUnsafeMutableBufferPointer { xb in
                ld.withUnsafeMutableBufferPointer { lb in
                    guard let zp = zb.baseAddress else { return }
                    inverse(zp, rows: rows, into: xb.baseAddress!, logDeterminant: lb.baseAddress!, workspace: ws)
                }
            }
        }
        return (x, ld)
    }

    /// `count` samples and their log-densities, seeded.
    public func sample(count: Int, seed: UInt64) -> (data: [Scalar], logProbability: [Scalar]) {
        var generator = SeededGenerator(seed: seed, stream: 0x5341_4D50)  // "SAMP"
        let D = configuration.dimension
        var x = [Scalar](repeating: 0, count: max(count, 0) * D)
        var lp = [Scalar](repeating: 0, count: max(count, 0))
        guard count > 0 else { return (x, lp) }
        let ws = InferenceWorkspace<Scalar>(configuration: configuration, capacity: min(count, 8192))
        x.withUnsafeMutableBufferPointer { xb in
            lp.withUnsafeMutableBufferPointer { lb in
                sample(rows: count, generator: &generator, into: xb.baseAddress!, logProbability: lb.baseAddress!, workspace: ws)
            }
        }
        return (x, lp)
    }

    func rowCount(_ values: [Scalar]) throws(FlowError) -> Int {
        let D = configuration.dimension
        guard values.count % D == 0 else {
            throw .shapeMismatch(what: "row-major input length (a multiple of D = \(D))", expected: (values.count / D + 1) * D, found: values.count)
        }
        return values.count / D
    }
}
