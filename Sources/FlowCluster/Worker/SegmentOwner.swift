import FlowData
import FlowWire
import Flows

/// An owner's side of the sharded exchange for one attempt of a step: the partials' values for
/// the segments it owns, kept by node, sender and segment as their messages arrive, and their
/// folds in tree order — run by run (`ParameterSegments.messageRuns`), as soon as every partial
/// the coordinator's order accepts covers a run. So the first runs are folded and on their way to
/// the other workers while the rest are still arriving.
///
/// Each segment is folded on its own (`GradientSum.fold(borrowing:)`, reading the values where
/// they lie); a fold is element by element, so the bits are those of folding the owner's whole
/// range at once, whatever the runs and the order of arrival.
struct SegmentOwner<Scalar: FlowScalar> {
    /// A partial (node, sender) and what of it has arrived.
    private struct Partial {
        var rows: UInt64
        var lossSum: Double
        /// By owned segment (index − first owned segment): its values, once arrived.
        var values: [ArraySlice<Scalar>?]
    }

    private struct Key: Hashable {
        var node: UInt64
        var sender: UInt32
    }

    private let parameterCount: Int
    private let microBatchSize: Int
    /// The segments owned in this attempt.
    private(set) var segments: Range<Int> = 0..<0
    private var runs: [Range<Int>] = []
    /// Runs folded so far (indices in `runs`).
    private var folded: Set<Int> = []
    private var partials: [Key: Partial] = [:]
    /// Scratch sums, by segment length (at most two lengths).
    private var sums: [Int: GradientSum<Scalar>] = [:]

    init(parameterCount: Int, microBatchSize: Int) {
        self.parameterCount = parameterCount
        self.microBatchSize = microBatchSize
    }

    /// A new attempt owning `segments` (empty: none).
    mutating func reset(owning segments: Range<Int>) {
        if segments != self.segments {
            self.segments = segments
            runs = ParameterSegments.messageRuns(segments, of: parameterCount)
        }
        folded.removeAll(keepingCapacity: true)
        partials.removeAll(keepingCapacity: true)
    }

    /// Whether every run is folded.
    var isDone: Bool { folded.count == runs.count }

    /// Keeps the values of segments `run` of `sender`'s partial of `node`. False (nothing kept)
    /// when the run is not within the owned segments, a segment of it arrived already or was
    /// folded, or the rows or loss differ from an earlier run of the same partial.
    mutating func accept(
        node: UInt64, sender: UInt32, rows: UInt64, lossSum: Double, run: Range<Int>, values: ArraySlice<Scalar>
    ) -> Bool {
        guard !run.isEmpty, run.lowerBound >= segments.lowerBound, run.upperBound <= segments.upperBound,
              values.count == ParameterSegments.range(of: run, in: parameterCount).count
        else { return false }
        let key = Key(node: node, sender: sender)
        var partial = partials[key] ?? Partial(
            rows: rows, lossSum: lossSum, values: [ArraySlice<Scalar>?](repeating: nil, count: segments.count))
        guard partial.rows == rows, partial.lossSum.bitPattern == lossSum.bitPattern,
              run.allSatisfy({ partial.values[$0 - segments.lowerBound] == nil && !isFolded($0) })
        else { return false }
        let start = ParameterSegments.range(of: run, in: parameterCount).lowerBound
        for g in run {
            let r = ParameterSegments.range(g, of: parameterCount)
            let offset = values.startIndex + (r.lowerBound - start)
            partial.values[g - segments.lowerBound] = values[offset..<(offset + r.count)]
        }
        partials[key] = partial
        return true
    }

    private func isFolded(_ g: Int) -> Bool {
        guard let i = runs.firstIndex(where: { $0.contains(g) }) else { return false }
        return folded.contains(i)
    }

    /// Folds every run not folded yet that the accepted partials (`nodes` with their `sources`,
    /// in tree order, as the coordinator's order names them) cover. For each such run, `begin`
    /// gets the run, the fold's loss sum and rows (the same for every run), then `segment` each
    /// segment's folded values in order, then `end` the run. A partial's values are forgotten
    /// once every run is folded.
    mutating func foldCovered(
        nodes: [UInt64], sources: [UInt32],
        begin: (_ run: Range<Int>, _ lossSum: Double, _ rows: Int) -> Void,
        segment: (_ g: Int, _ values: UnsafeBufferPointer<Scalar>) -> Void,
        end: (_ run: Range<Int>) -> Void
    ) {
        var parts: [(node: TreeNode, partial: Partial)] = []
        for (node, source) in zip(nodes, sources) {
            guard let partial = partials[Key(node: node, sender: source)], let tree = TreeNode(key: node) else { return }
            parts.append((tree, partial))
        }
        for (i, run) in runs.enumerated() where !folded.contains(i) {
            let covered = parts.allSatisfy { part in run.allSatisfy { part.partial.values[$0 - segments.lowerBound] != nil } }
            guard covered else { continue }
            folded.insert(i)
            var begun = false
            for g in run {
                let count = ParameterSegments.range(g, of: parameterCount).count
                guard count > 0 else { continue }
                let borrowed = parts.map {
                    GradientSum<Scalar>.BorrowedNode(
                        firstShard: $0.node.firstShard, values: $0.partial.values[g - segments.lowerBound]!, lossSum: $0.partial.lossSum,
                        rows: Int($0.partial.rows), microBatches: Int($0.partial.rows) / microBatchSize)
                }
                var sum = sums.removeValue(forKey: count) ?? GradientSum(parameterCount: count)
                sum.fold(borrowing: borrowed) { root, lossSum, rows in
                    if !begun {
                        begin(run, lossSum, rows)
                        begun = true
                    }
                    segment(g, root)
                }
                sums[count] = sum
            }
            if begun { end(run) }
        }
        if isDone { partials.removeAll(keepingCapacity: true) }
    }
}
