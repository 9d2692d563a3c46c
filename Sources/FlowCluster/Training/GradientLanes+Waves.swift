import Flows

extension GradientLanes {
    /// One micro-batch's rows for the lanes: the rows of `rows` (row-major, `D` columns) at
    /// `positions`.
    public typealias MicroBatch = (rows: [Scalar], positions: [Int])

    /// The one micro-batch gradient loop of the trainer, the worker (per step and per local
    /// round) and the coordinator's own check: computes `batches` in waves of `count` lanes, in
    /// order, and after each wave calls `each(i, lane)` for every micro-batch `i` of the wave in
    /// order, while lane `lane` holds its gradient and loss (`gradient(lane:)`, `loss(lane:)`,
    /// `add(lane:rows:to:)`).
    ///
    /// Bit-identity for any worker count rests on this: a micro-batch's bits depend only on the
    /// parameters and its rows (one lane, one BLAS thread), and the callers add results in
    /// the order of the step's reduction tree (`reduce`).
    public func computeInWaves(model: RealNVP<Scalar>, _ batches: [MicroBatch], each: (_ index: Int, _ lane: Int) -> Void) {
        var next = 0
        while next < batches.count {
            let end = min(batches.count, next + count)
            let wave = Array(batches[next..<end])
            compute(model: model, batches: wave)
            for lane in wave.indices { each(next + lane, lane) }
            next = end
        }
    }

    /// The value of a node of a step's reduction tree (the whole step: the root): computes
    /// `batches`, the node's micro-batches in tree order (`ReductionTree.microBatches(under:)`),
    /// `shards[i]` being the shard of `batches[i]`, and folds them into `sum` (reset first,
    /// finished after).
    public func reduce(model: RealNVP<Scalar>, _ batches: [MicroBatch], shards: [Int], into sum: inout GradientSum<Scalar>) {
        reduce(model: model, batches, shards: shards, nodeEnds: [batches.count], into: &sum) { _, _ in }
    }

    /// The values of several nodes: `batches` holds their micro-batches one node after the other
    /// (each in tree order), node k ending before index `nodeEnds[k]`. The micro-batches are
    /// computed in waves across node boundaries, so every lane is busy even when the nodes are
    /// small; each node is folded on its own into `sum`, and `each(k, sum)` is called with the
    /// finished value of node k, in order. The trainer, the workers and the coordinator's own
    /// check all reduce through here, so a node has the same bits wherever it is computed.
    public func reduce(
        model: RealNVP<Scalar>, _ batches: [MicroBatch], shards: [Int], nodeEnds: [Int], into sum: inout GradientSum<Scalar>,
        each: (_ node: Int, _ sum: inout GradientSum<Scalar>) -> Void
    ) {
        precondition(batches.count == shards.count, "reduce: \(batches.count) micro-batches, \(shards.count) shards")
        precondition(nodeEnds.last == batches.count && zip(nodeEnds, nodeEnds.dropFirst()).allSatisfy { $0 < $1 } && (nodeEnds.first ?? 1) > 0,
                     "reduce: node ends \(nodeEnds) do not split \(batches.count) micro-batches into non-empty nodes")
        var node = 0
        sum.reset()
        computeInWaves(model: model, batches) { i, lane in
            add(lane: lane, shard: shards[i], rows: batches[i].positions.count, to: &sum)
            guard i == nodeEnds[node] - 1 else { return }
            sum.finish()
            each(node, &sum)
            node += 1
            if node < nodeEnds.count { sum.reset() }
        }
    }
}
