/// Operations on flat parameter and gradient vectors — the only shape the optimiser, the
/// gradient sums, clipping, checkpoints and the wire ever see.
///
/// Every reduction runs in index order and accumulates in `Double`, so a result depends only on
/// the numbers, never on threads or scheduling.
public enum FlatVector {
    /// `accumulator[i] += addend[i]`. Micro-batch gradients are summed with this, in micro-batch order.
    public static func add<Scalar: FlowScalar>(_ addend: UnsafePointer<Scalar>, into accumulator: UnsafeMutablePointer<Scalar>, count: Int) {
        if Scalar.self == Float.self { addBody(addend.same(as: Float.self), into: accumulator.same(as: Float.self), count: count) }
        else if Scalar.self == Double.self { addBody(addend.same(as: Double.self), into: accumulator.same(as: Double.self), count: count) }
        else { addBody(addend, into: accumulator, count: count) }
    }

    static func addBody<Scalar: FlowScalar>(_ addend: UnsafePointer<Scalar>, into accumulator: UnsafeMutablePointer<Scalar>, count: Int) {
        for i in 0..<count { accumulator[i] += addend[i] }
    }

    /// `vector[i] /= divisor` (a true division, so dividing a sum by a row count is exact-as-possible).
    public static func divide<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar) {
        if Scalar.self == Float.self { divideBody(vector.same(as: Float.self), count: count, by: Specialization.same(divisor, as: Float.self)) }
        else if Scalar.self == Double.self { divideBody(vector.same(as: Double.self), count: count, by: Specialization.same(divisor, as: Double.self)) }
        else { divideBody(vector, count: count, by: divisor) }
    }

    static func divideBody<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar) {
        for i in 0..<count { vector[i] /= divisor }
    }

    /// `vector[i] *= factor`.
    public static func scale<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by factor: Scalar) {
        if Scalar.self == Float.self { scaleBody(vector.same(as: Float.self), count: count, by: Specialization.same(factor, as: Float.self)) }
        else if Scalar.self == Double.self { scaleBody(vector.same(as: Double.self), count: count, by: Specialization.same(factor, as: Double.self)) }
        else { scaleBody(vector, count: count, by: factor) }
    }

    static func scaleBody<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int, by factor: Scalar) {
        for i in 0..<count { vector[i] *= factor }
    }

    /// `vector[i] = 0` for every element.
    public static func zero<Scalar: FlowScalar>(_ vector: UnsafeMutablePointer<Scalar>, count: Int) {
        if Scalar.self == Float.self { vector.same(as: Float.self).update(repeating: 0, count: count) }
        else if Scalar.self == Double.self { vector.same(as: Double.self).update(repeating: 0, count: count) }
        else { vector.update(repeating: 0, count: count) }
    }

    /// The index of the first NaN or ±∞ element, or `nil` when all are finite.
    public static func firstNonFinite<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Int? {
        if Scalar.self == Float.self { return firstNonFiniteBody(vector.same(as: Float.self), count: count) }
        else if Scalar.self == Double.self { return firstNonFiniteBody(vector.same(as: Double.self), count: count) }
        else { return firstNonFiniteBody(vector, count: count) }
    }

    static func firstNonFiniteBody<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Int? {
        // An integer OR over the finiteness tests vectorises (a floating-point sum would be a
        // serial dependency chain); only when something is off do we look for where.
        var bad: UInt8 = 0
        for i in 0..<count { bad |= vector[i].isFinite ? 0 : 1 }
        if bad == 0 { return nil }
        for i in 0..<count where !vector[i].isFinite { return i }
        return nil
    }

    /// The Euclidean norm `‖v‖₂`, accumulated in `Double` in index order.
    public static func norm<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Double {
        if Scalar.self == Float.self { return normBody(vector.same(as: Float.self), count: count) }
        else if Scalar.self == Double.self { return normBody(vector.same(as: Double.self), count: count) }
        else { return normBody(vector, count: count) }
    }

    static func normBody<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Double {
        var s = 0.0
        for i in 0..<count {
            let v = Double(vector[i])
            s += v * v
        }
        return s.squareRoot()
    }

    /// Scales `gradient` so that its norm is at most `maxNorm` (PyTorch's `clip_grad_norm_`:
    /// factor `maxNorm / (norm + 1e-6)` when it is below 1). Returns the norm before clipping.
    @discardableResult
    public static func clipNorm<Scalar: FlowScalar>(_ gradient: UnsafeMutablePointer<Scalar>, count: Int, maxNorm: Double) -> Double {
        let n = norm(gradient, count: count)
        let factor = maxNorm / (n + 1e-6)
        if factor < 1 { scale(gradient, count: count, by: Scalar(factor)) }
        return n
    }
}
