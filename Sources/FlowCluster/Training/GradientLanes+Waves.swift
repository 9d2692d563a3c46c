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
    /// micro-batch order.
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
}
