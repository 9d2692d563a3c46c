/// Operations on flat parameter and gradient vectors — the only shape the optimiser, the
/// gradient sums, clipping, checkpoints and the wire ever see.
///
/// Every reduction runs in index order and accumulates in `Double`, so a result depends only on
/// the numbers, never on threads or scheduling.
public enum FlatVector {
    /// `accumulator[i] += addend[i]`. Micro-batch gradients are summed with this, in micro-batch order.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func add<Scalar: FlowScalar>(_ addend: UnsafePointer<Scalar>, into accumulator: UnsafeMutablePointer<Scalar>, count: Int) {
        for i in 0..<count { accumulator[i] += addend[i] }
    }

    /// `vector[i] /= divisor` (a true division, so dividing a sum by a row count is exact-as-possible).
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func divide<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar) {
        for i in 0..<count { vector[i] /= divisor }
    }

    /// `vector[i] *= factor`.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func scale<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by factor: Scalar) {
        for i in 0..<count { vector[i] *= factor }
    }

    /// The index of the first NaN or ±∞ element, or `nil` when all are finite.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func firstNonFinite<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Int? {
        // Summing is branch-free and vectorises; only on a non-finite sum do we search.
        var sum: Scalar = 0
        for i in 0..<count { sum += vector[i] * 0 }
        if sum.isFinite { return nil }
        for i in 0..<count where !vector[i].isFinite { return i }
        return nil
    }

    /// The Euclidean norm `‖v‖₂`, accumulated in `Double` in index order.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    public static func norm<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count {
            let v = Double(vector[i])
            s += v * v
        }
        return s.squareRoot()
    }

    /// Scales `gradient` so that its norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
    /// factor `maxNorm / (norm + 1e-6)` when it is below 1). Returns the norm before clipping.
    @_specialize(where Scalar == Float)
    @_specialize(where Scalar == Double)
    @discardableResult
    public static func clipNorm<Scalar: FlowScalar>(_ gradient: UnsafeMutablePointer<Scalar>, count: Int, maxNorm: Double) -> Double {
        let n = norm(gradient, count: count)
        let factor = maxNorm / (n + 1e-6)
        if factor < 1 { scale(gradient, count: count, by: Scalar(factor)) }
        return n
    }
}
