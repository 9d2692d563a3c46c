/// Operations on flat parameter and gradient vectors — the only shape the optimiser, the
/// gradient sums, clipping, checkpoints and the wire ever see.
///
/// Every reduction runs in index order and accumulates in `Double`, so a result depends only on
/// the numbers, never on threads or scheduling.
public enum FlatVector {
    /// `accumulator[i] += addend[i]`. Micro-batch gradients and tree nodes are summed with this (`GradientSum`).
    ///
    /// Returns whether every result is finite, tested in the same pass (the test is an integer OR
    /// that vectorises with the addition: it costs nothing measurable, where a separate check of
    /// a large gradient is another pass over memory).
    @discardableResult
    public static func add<Scalar: FlowScalar>(_ addend: UnsafePointer<Scalar>, into accumulator: UnsafeMutablePointer<Scalar>, count: Int) -> Bool {
        if Scalar.self == Float.self { return addBody(addend.same(as: Float.self), into: accumulator.same(as: Float.self), count: count) }
        else if Scalar.self == Double.self { return addBody(addend.same(as: Double.self), into: accumulator.same(as: Double.self), count: count) }
        else { return addBody(addend, into: accumulator, count: count) }
    }

    static func addBody<Scalar: FlowScalar>(_ addend: UnsafePointer<Scalar>, into accumulator: UnsafeMutablePointer<Scalar>, count: Int) -> Bool {
        var bad: UInt8 = 0
        for i in 0..<count {
            let y = accumulator[i] + addend[i]
            accumulator[i] = y
            bad |= y.isFinite ? 0 : 1
        }
        return bad == 0
    }

    /// `result[i] = x[i] + y[i]` (the bits of `add(y, into: x)`, without first copying `x`);
    /// returns whether every result is finite, as ``add(_:into:count:)``.
    @discardableResult
    public static func sum<Scalar: FlowScalar>(
        _ x: UnsafePointer<Scalar>, _ y: UnsafePointer<Scalar>, into result: UnsafeMutablePointer<Scalar>, count: Int
    ) -> Bool {
        if Scalar.self == Float.self {
            return sumBody(x.same(as: Float.self), y.same(as: Float.self), into: result.same(as: Float.self), count: count)
        } else if Scalar.self == Double.self {
            return sumBody(x.same(as: Double.self), y.same(as: Double.self), into: result.same(as: Double.self), count: count)
        } else {
            return sumBody(x, y, into: result, count: count)
        }
    }

    static func sumBody<Scalar: FlowScalar>(
        _ x: UnsafePointer<Scalar>, _ y: UnsafePointer<Scalar>, into result: UnsafeMutablePointer<Scalar>, count: Int
    ) -> Bool {
        var bad: UInt8 = 0
        for i in 0..<count {
            let z = x[i] + y[i]
            result[i] = z
            bad |= z.isFinite ? 0 : 1
        }
        return bad == 0
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

    /// The Euclidean norm `‖v‖₂`, accumulated in `Double`: element `i` goes to partial sum
    /// `i mod 8` (in index order), and the eight are combined as `((s0+s1)+(s2+s3))+((s4+s5)+(s6+s7))`.
    /// A fixed order, so the result never depends on who computes it; eight independent chains
    /// run about three times faster than one (the coordinator computes it every step).
    public static func norm<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Double {
        if Scalar.self == Float.self { return normBody(vector.same(as: Float.self), count: count) }
        else if Scalar.self == Double.self { return normBody(vector.same(as: Double.self), count: count) }
        else { return normBody(vector, count: count) }
    }

    static func normBody<Scalar: FlowScalar>(_ vector: UnsafePointer<Scalar>, count: Int) -> Double {
        var s = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        var i = 0
        while i + 8 <= count {
            let x0 = Double(vector[i]), x1 = Double(vector[i + 1]), x2 = Double(vector[i + 2]), x3 = Double(vector[i + 3])
            let x4 = Double(vector[i + 4]), x5 = Double(vector[i + 5]), x6 = Double(vector[i + 6]), x7 = Double(vector[i + 7])
            s.0 += x0 * x0; s.1 += x1 * x1; s.2 += x2 * x2; s.3 += x3 * x3
            s.4 += x4 * x4; s.5 += x5 * x5; s.6 += x6 * x6; s.7 += x7 * x7
            i += 8
        }
        // The tail continues the same partial sums: element i still goes to i mod 8.
        if i < count { let x = Double(vector[i]); s.0 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.1 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.2 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.3 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.4 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.5 += x * x; i += 1 }
        if i < count { let x = Double(vector[i]); s.6 += x * x; i += 1 }
        return (((s.0 + s.1) + (s.2 + s.3)) + ((s.4 + s.5) + (s.6 + s.7))).squareRoot()
    }

    /// `vector[i] /= divisor`, and in the same pass the first non-finite element of the result
    /// (or nil) and the result's norm exactly as ``norm(_:count:)`` computes it — one read of a
    /// large gradient instead of three.
    public static func divideAndMeasure<Scalar: FlowScalar>(
        _ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar
    ) -> (norm: Double, firstNonFinite: Int?) {
        let (squares, bad) = divideAndSumSquares(vector, count: count, by: divisor)
        return (squares.squareRoot(), bad)
    }

    /// `vector[i] /= divisor`, and in the same pass the first non-finite element of the result
    /// (or nil) and the sum of the squares of the result as ``norm(_:count:)`` accumulates it
    /// (before its square root): one segment's share of the segmented gradient norm
    /// (``ParameterSegments/divideAndMeasure(_:count:by:)``).
    public static func divideAndSumSquares<Scalar: FlowScalar>(
        _ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar
    ) -> (sumOfSquares: Double, firstNonFinite: Int?) {
        divideAndSumSquares(from: UnsafePointer(vector), into: vector, count: count, by: divisor)
    }

    /// `result[i] = source[i] / divisor`, measured as ``divideAndSumSquares(_:count:by:)``
    /// measures it (the same bits); `source` may be `result` (in place). Taking a value from
    /// where it arrived, this is its copy and its measurement in one pass.
    public static func divideAndSumSquares<Scalar: FlowScalar>(
        from source: UnsafePointer<Scalar>, into result: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar
    ) -> (sumOfSquares: Double, firstNonFinite: Int?) {
        if Scalar.self == Float.self {
            return divideAndMeasureBody(
                source.same(as: Float.self), result.same(as: Float.self), count: count, by: Specialization.same(divisor, as: Float.self))
        } else if Scalar.self == Double.self {
            return divideAndMeasureBody(
                source.same(as: Double.self), result.same(as: Double.self), count: count, by: Specialization.same(divisor, as: Double.self))
        } else {
            return divideAndMeasureBody(source, result, count: count, by: divisor)
        }
    }

    static func divideAndMeasureBody<Scalar: FlowScalar>(
        _ source: UnsafePointer<Scalar>, _ vector: UnsafeMutablePointer<Scalar>, count: Int, by divisor: Scalar
    ) -> (sumOfSquares: Double, firstNonFinite: Int?) {
        var s = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        var bad: UInt8 = 0
        var i = 0
        while i + 8 <= count {
            // All eight read before any is written: `source` may be `vector`.
            let y0 = source[i] / divisor, y1 = source[i + 1] / divisor, y2 = source[i + 2] / divisor, y3 = source[i + 3] / divisor
            let y4 = source[i + 4] / divisor, y5 = source[i + 5] / divisor, y6 = source[i + 6] / divisor, y7 = source[i + 7] / divisor
            vector[i] = y0; vector[i + 1] = y1; vector[i + 2] = y2; vector[i + 3] = y3
            vector[i + 4] = y4; vector[i + 5] = y5; vector[i + 6] = y6; vector[i + 7] = y7
            bad |= (y0.isFinite && y1.isFinite && y2.isFinite && y3.isFinite && y4.isFinite && y5.isFinite && y6.isFinite && y7.isFinite) ? 0 : 1
            let x0 = Double(y0), x1 = Double(y1), x2 = Double(y2), x3 = Double(y3)
            let x4 = Double(y4), x5 = Double(y5), x6 = Double(y6), x7 = Double(y7)
            s.0 += x0 * x0; s.1 += x1 * x1; s.2 += x2 * x2; s.3 += x3 * x3
            s.4 += x4 * x4; s.5 += x5 * x5; s.6 += x6 * x6; s.7 += x7 * x7
            i += 8
        }
        // The tail: element i still goes to partial sum i mod 8.
        var lane = 0
        while i < count {
            let y = source[i] / divisor
            vector[i] = y
            bad |= y.isFinite ? 0 : 1
            let x = Double(y)
            switch lane {
            case 0: s.0 += x * x
            case 1: s.1 += x * x
            case 2: s.2 += x * x
            case 3: s.3 += x * x
            case 4: s.4 += x * x
            case 5: s.5 += x * x
            default: s.6 += x * x
            }
            lane += 1
            i += 1
        }
        let squares = ((s.0 + s.1) + (s.2 + s.3)) + ((s.4 + s.5) + (s.6 + s.7))
        return (squares, bad == 0 ? nil : firstNonFiniteBody(UnsafePointer(vector), count: count))
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
