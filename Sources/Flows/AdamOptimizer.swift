/// Adam (Kingma & Ba) on a flat parameter vector, with PyTorch's update rule, and AdamW's
/// decoupled weight decay (Loshchilov & Hutter; `torch.optim.AdamW`) when `weightDecay` > 0:
///
///     θ ← θ · (1 − lr·λ)                                   (AdamW only, before the Adam step)
///     m ← β₁m + (1−β₁)g,   v ← β₂v + (1−β₂)g²,
///     θ ← θ − (lr / (1−β₁ᵗ)) · m / (√v / √(1−β₂ᵗ) + ε).
///
/// `lr` is the rate of this update (``update(parameters:gradient:learningRate:)``; a schedule
/// may change it every step), `λ` the weight decay. Each line rounds as PyTorch's single-tensor
/// implementation does: the factor `1 − lr·λ` is computed in `Double` and rounded once to
/// `Scalar`, and `θ·factor` is rounded before the Adam step is subtracted.
///
/// The state (moments and step count) is part of a training checkpoint.
public struct AdamOptimizer<Scalar: FlowScalar>: Sendable, Equatable {
    /// Learning rate (default 1e-3).
    public var learningRate: Double
    /// Exponential decay of the first moment (default 0.9).
    public var beta1: Double
    /// Exponential decay of the second moment (default 0.999).
    public var beta2: Double
    /// Added to the denominator for stability (default 1e-8).
    public var epsilon: Double
    /// First-moment estimate, one per parameter.
    public var firstMoment: [Scalar]
    /// Second-moment estimate, one per parameter.
    public var secondMoment: [Scalar]
    /// Number of updates applied so far.
    public var step: Int
    /// AdamW's decoupled weight decay `λ` (0, the default: plain Adam).
    public var weightDecay: Double

    /// Fresh state (zero moments, step 0) for `parameterCount` parameters.
    public init(
        parameterCount: Int, learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8,
        weightDecay: Double = 0
    ) {
        self.learningRate = learningRate
        self.weightDecay = weightDecay
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        firstMoment = [Scalar](repeating: 0, count: parameterCount)
        secondMoment = [Scalar](repeating: 0, count: parameterCount)
        step = 0
    }

    /// Applies one update with `gradient` to `parameters` (both of the optimiser's length) at
    /// the rate `learningRate`.
    public mutating func update(parameters: inout [Scalar], gradient: UnsafePointer<Scalar>) {
        update(parameters: &parameters, gradient: gradient, learningRate: learningRate)
    }

    /// Applies one update with `gradient` to `parameters` at the rate `rate` (this step's value
    /// of a schedule; `learningRate` is left as it is).
    public mutating func update(parameters: inout [Scalar], gradient: UnsafePointer<Scalar>, learningRate rate: Double) {
        precondition(parameters.count == firstMoment.count, "parameter vector length changed")
        step += 1
        let t = Double(step)
        let correction1 = 1 - pow(beta1, t)
        let correction2 = 1 - pow(beta2, t)
        let stepSize = Scalar(rate / correction1)
        let decays = weightDecay != 0
        let decay = Scalar(1 - rate * weightDecay)
        let rootCorrection2 = Scalar(correction2.squareRoot())
        let b1 = Scalar(beta1), b2 = Scalar(beta2), eps = Scalar(epsilon)
        let count = parameters.count
        parameters.withUnsafeMutableBufferPointer { pb in
            firstMoment.withUnsafeMutableBufferPointer { mb in
                secondMoment.withUnsafeMutableBufferPointer { vb in
                    let p = pb.baseAddress!, m = mb.baseAddress!, v = vb.baseAddress!
                    if Scalar.self == Float.self {
                        Self.vectorKernel(
                            SIMD16<Float>.self, p.same(as: Float.self), m.same(as: Float.self), v.same(as: Float.self),
                            gradient.same(as: Float.self), count,
                            Float(stepSize), Float(rootCorrection2), Float(b1), Float(b2), Float(eps), decays, Float(decay))
                    } else if Scalar.self == Double.self {
                        Self.vectorKernel(
                            SIMD8<Double>.self, p.same(as: Double.self), m.same(as: Double.self), v.same(as: Double.self),
                            gradient.same(as: Double.self), count,
                            Double(stepSize), Double(rootCorrection2), Double(b1), Double(b2), Double(eps), decays, Double(decay))
                    } else {
                        Self.kernel(p, m, v, gradient, count, stepSize, rootCorrection2, b1, b2, eps, decays, decay)
                    }
                }
            }
        }
    }

    /// The element-wise update on whole SIMD vectors, then `kernel` on the tail. Every lane does
    /// exactly the scalar operations in the same order (no fused multiply-add; IEEE square root
    /// and division are correctly rounded), so the bits equal `kernel`'s — 3× faster on a large
    /// model, where the scalar loop was not vectorised.
    @inline(__always)
    static func vectorKernel<T: FlowScalar, V: SIMD>(
        _: V.Type, _ p: UnsafeMutablePointer<T>, _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>,
        _ gradient: UnsafePointer<T>, _ count: Int, _ stepSize: T, _ rootCorrection2: T, _ b1: T, _ b2: T, _ eps: T,
        _ decays: Bool, _ decay: T
    ) where V.Scalar == T {
        let width = V.scalarCount
        let vb1 = V(repeating: b1), vb2 = V(repeating: b2), one = V(repeating: 1)
        let oneMinusB1 = one - vb1, oneMinusB2 = one - vb2
        let vStep = V(repeating: stepSize), vRoot = V(repeating: rootCorrection2), vEps = V(repeating: eps)
        let vDecay = V(repeating: decay)
        let rp = UnsafeMutableRawPointer(p), rm = UnsafeMutableRawPointer(m), rv = UnsafeMutableRawPointer(v)
        let rg = UnsafeRawPointer(gradient)
        let stride = MemoryLayout<T>.stride
        var i = 0
        while i + width <= count {
            let offset = i * stride
            let gi = rg.loadUnaligned(fromByteOffset: offset, as: V.self)
            let mi = vb1 * rm.loadUnaligned(fromByteOffset: offset, as: V.self) + oneMinusB1 * gi
            let vi = vb2 * rv.loadUnaligned(fromByteOffset: offset, as: V.self) + oneMinusB2 * gi * gi
            rm.storeBytes(of: mi, toByteOffset: offset, as: V.self)
            rv.storeBytes(of: vi, toByteOffset: offset, as: V.self)
            var pi = rp.loadUnaligned(fromByteOffset: offset, as: V.self)
            if decays { pi = pi * vDecay }
            pi = pi - vStep * mi / (vi.squareRoot() / vRoot + vEps)
            rp.storeBytes(of: pi, toByteOffset: offset, as: V.self)
            i += width
        }
        kernel(p + i, m + i, v + i, gradient + i, count - i, stepSize, rootCorrection2, b1, b2, eps, decays, decay)
    }

    /// The element-wise update, written once and run as `Float` or `Double` code.
    @inline(__always)
    static func kernel<T: FlowScalar>(
        _ p: UnsafeMutablePointer<T>, _ m: UnsafeMutablePointer<T>, _ v: UnsafeMutablePointer<T>, _ gradient: UnsafePointer<T>,
        _ count: Int, _ stepSize: T, _ rootCorrection2: T, _ b1: T, _ b2: T, _ eps: T, _ decays: Bool, _ decay: T
    ) {
        let oneMinusB1 = 1 - b1, oneMinusB2 = 1 - b2
        for i in 0..<count {
            let gi = gradient[i]
            let mi = b1 * m[i] + oneMinusB1 * gi
            let vi = b2 * v[i] + oneMinusB2 * gi * gi
            m[i] = mi
            v[i] = vi
            var pi = p[i]
            if decays { pi = pi * decay }
            p[i] = pi - stepSize * mi / (vi.squareRoot() / rootCorrection2 + eps)
        }
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    // exp(t·log β) loses accuracy for large t; repeated squaring on the integer step is exact-rounded enough
    // and identical on every platform (no libm dependence).
    var result = 1.0
    var b = base
    var e = UInt64(exponent)
    while e > 0 {
        if e & 1 == 1 { result *= b }
        b *= b
        e >>= 1
    }
    return result
}
