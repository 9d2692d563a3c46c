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
    /// finished after). The trainer, the workers and the coordinator's own check all reduce
    /// through here, so a node has the same bits wherever it is computed.
    public func reduce(model: RealNVP<Scalar>, _ batches: [MicroBatch], shards: [Int], into sum: inout GradientSum<Scalar>) {
        precondition(batches.count == shards.count, "reduce: \(batches.count) micro-batches, \(shards.count) shards")
        sum.reset()
        computeInWaves(model: model, batches) { i, lane in
            add(lane: lane, shard: shards[i], rows: batches[i].positions.count, to: &sum)
        }
        sum.finish()
    }
}
