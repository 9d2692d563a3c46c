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

    /// The most values one segment message carries unless a single segment is larger.
    public static let valuesPerMessage = 1 << 15

    /// How a run of segments is cut into messages: runs of consecutive segments of `segments`,
    /// each as many whole segments as fit in ``valuesPerMessage`` values (at least one). Small
    /// messages let the exchange pipeline — a receiver folds and forwards the first runs while
    /// the rest are on their way — without a message per segment when segments are tiny.
    public static func messageRuns(_ segments: Range<Int>, of parameterCount: Int) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start = segments.lowerBound
        while start < segments.upperBound {
            var values = range(start, of: parameterCount).count
            var end = start + 1
            while end < segments.upperBound, values + range(end, of: parameterCount).count <= valuesPerMessage {
                values += range(end, of: parameterCount).count
                end += 1
            }
            runs.append(start..<end)
            start = end
        }
        return runs
    }

    /// The indices of segments `segments` (consecutive) of a vector of `parameterCount` values.
    public static func range(of segments: Range<Int>, in parameterCount: Int) -> Range<Int> {
        guard let first = segments.first, let last = segments.last else { return 0..<0 }
        return range(first, of: parameterCount).lowerBound..<range(last, of: parameterCount).upperBound
    }

    /// Divides `vector` by `divisor` and measures it: the segmented norm of the result and the
    /// first non-finite element (or nil) — one pass.
    public static func divideAndMeasure<Scalar: FlowScalar>(
        _ vector: UnsafeMutablePointer<Scalar>, count parameterCount: Int, by divisor: Scalar
    ) -> (norm: Double, firstNonFinite: Int?) {
        var shares = Shares(parameterCount: parameterCount)
        for g in 0..<count {
            let r = range(g, of: parameterCount)
            shares.measure(g, from: UnsafePointer(vector + r.lowerBound), into: vector + r.lowerBound, by: divisor)
        }
        return (shares.norm, shares.firstNonFinite)
    }

    /// The segments' shares of a gradient's norm, gathered segment by segment in any order —
    /// as the owners' folds arrive at a worker — and combined in segment order: the bits of
    /// ``divideAndMeasure(_:count:by:)`` over the whole vector.
    public struct Shares: Sendable {
        private let parameterCount: Int
        private var squares = [Double](repeating: 0, count: ParameterSegments.count)
        private var measured = [Bool](repeating: false, count: ParameterSegments.count)
        /// The first non-finite element of the segments measured so far (an index in the vector).
        public private(set) var firstNonFinite: Int?

        /// No segment measured yet, for a vector of `parameterCount` values.
        public init(parameterCount: Int) {
            self.parameterCount = parameterCount
        }

        /// Forgets every share (no allocation).
        public mutating func reset() {
            for g in 0..<ParameterSegments.count {
                squares[g] = 0
                measured[g] = false
            }
            firstNonFinite = nil
        }

        /// Segment `g`: `result[i] = source[i] / divisor` for its values (`source` and `result`
        /// point at the segment's first value; they may be the same), and its share.
        public mutating func measure<Scalar: FlowScalar>(
            _ g: Int, from source: UnsafePointer<Scalar>, into result: UnsafeMutablePointer<Scalar>, by divisor: Scalar
        ) {
            let r = range(g, of: parameterCount)
            guard !r.isEmpty else { return }
            let (share, bad) = FlatVector.divideAndSumSquares(from: source, into: result, count: r.count, by: divisor)
            squares[g] = share
            measured[g] = true
            if let bad { firstNonFinite = min(firstNonFinite ?? .max, r.lowerBound + bad) }
        }

        /// The norm: the square root of the measured segments' sums of squares added left to right.
        public var norm: Double {
            var total = 0.0
            for g in 0..<ParameterSegments.count where measured[g] { total += squares[g] }
            return total.squareRoot()
        }
    }
}
