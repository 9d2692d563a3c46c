/// The fixed cut of a flat parameter vector into ``count`` segments — independent of the number
/// of workers — and the training step's gradient norm, which is measured segment by segment.
///
/// Segment g of a vector of P values is `[g·P/64, (g+1)·P/64)` (integer division; segments of
/// small vectors may be empty). The gradient norm of a step (reported as `grad_norm`, used by
/// `--clip-norm`) is the square root of the segments' sums of squares added left to right, each
/// segment's sum accumulated as ``FlatVector/norm(_:count:)`` accumulates a vector. So whoever
/// holds a segment can compute its share, and combining the shares in segment order gives the
/// same bits as one process: the rule an exchange with segment owners needs, fixed before such an
/// exchange exists so that the model's bits change only once (docs/model.md).
public enum ParameterSegments {
    /// Segments a parameter vector is cut into.
    public static let count = 64

    /// The indices of segment `g` of a vector of `parameterCount` values.
    public static func range(_ g: Int, of parameterCount: Int) -> Range<Int> {
        precondition(g >= 0 && g < count, "ParameterSegments: segment \(g) outside 0..<\(count)")
        return (g * parameterCount / count)..<((g + 1) * parameterCount / count)
    }

    /// Divides `vector` by `divisor` and measures it: the segmented norm of the result and the
    /// first non-finite element (or nil) — one pass.
    public static func divideAndMeasure<Scalar: FlowScalar>(
        _ vector: UnsafeMutablePointer<Scalar>, count parameterCount: Int, by divisor: Scalar
    ) -> (norm: Double, firstNonFinite: Int?) {
        var squares = 0.0
        var firstBad: Int? = nil
        for g in 0..<count {
            let r = range(g, of: parameterCount)
            guard !r.isEmpty else { continue }
            let (segment, bad) = FlatVector.divideAndSumSquares(vector + r.lowerBound, count: r.count, by: divisor)
            squares += segment
            if firstBad == nil, let bad { firstBad = r.lowerBound + bad }
        }
        return (squares.squareRoot(), firstBad)
    }
}
