/// A model of one training step (or `sync=parameters` round) on a star cluster — the
/// coordinator's link carries every message — from a micro-batch's compute time, the link's
/// bandwidth and latency, and the coordinator's own costs, for `tributary simulate`
/// (DESIGN §3: "a simulation mode projects step time for many workers").
///
/// The step is replayed event by event, as the coordinator ran it before 0.4.0 — one result per
/// micro-batch (`micro-batch-star`; the pre-reduced star is `ClusterSimulation+Exchanges`):
///
/// 1. the coordinator sends the parameters (`4P` bytes in float32) to every worker that has work
///    at once: the W messages share its outgoing link (TCP divides a bottleneck fairly between
///    connections), so all of them arrive `W · 4P / bandwidth` plus a latency later — not one
///    after another, which emulated hosts showed to be 20–40 % optimistic with 2–4 workers;
/// 2. micro-batch `j` of the `n = B/m` belongs to worker `j mod W` (shards are spread evenly);
///    a worker computes its micro-batches in order, `t` seconds each, from the moment its
///    parameters arrive, and sends each result when it is done;
/// 3. results queue for the coordinator's incoming link in the order they are ready (each takes
///    `4P / bandwidth` there) and arrive a latency later;
/// 4. the coordinator adds results in order (`add` seconds each) as soon as every
///    earlier one is in, then applies the optimiser (`apply` seconds) — the step ends.
///
/// With `localSteps = H` (`sync=parameters`) a round is: parameters out, each worker computes
/// its micro-batches of H steps plus H local optimiser updates, sends its parameters back, and
/// the coordinator averages them (`add` seconds per worker); the step time is the round's / H.
///
/// Every transfer takes `bytes / (bandwidth · linkEfficiency)`: TCP over Ethernet carries 1448
/// payload bytes in a 1538-byte slot of the wire (headers, preamble, gap), 94 %.
///
/// What it leaves out: the CPU that encryption (CURVE) and copying take per byte, the workers' own links (assumed no slower than the coordinator's),
/// switch contention, stragglers, and the CPU the coordinator's messaging takes from workers on
/// the same host — it is a projection for dedicated hosts, not a measurement.
public struct ClusterSimulation: Sendable, Equatable {
    /// Seconds to compute one micro-batch's gradient on one worker thread.
    public var microBatchSeconds: Double
    /// Micro-batches per step (`B/m`).
    public var microBatchesPerStep: Int
    /// Bytes of one gradient or parameter message (`4P` for float32, `8P` for float64).
    public var messageBytes: Double
    /// The coordinator's link, bytes per second in each direction (full duplex).
    public var bandwidth: Double
    /// The share of the link's rate that carries message bytes (the rest is framing), in (0, 1].
    public var linkEfficiency: Double
    /// One-way latency of a message, seconds.
    public var latency: Double
    /// Coordinator seconds to add one result (or, `sync=parameters`, one worker's parameters).
    public var addSeconds: Double
    /// Seconds of one optimiser update (the coordinator's per step; a worker's per local step).
    public var applySeconds: Double
    /// `sync=parameters`: local steps per round; `nil` for `sync=gradients`.
    public var localSteps: Int?

    /// A model with the given costs.
    public init(
        microBatchSeconds: Double, microBatchesPerStep: Int, messageBytes: Double, bandwidth: Double, latency: Double,
        addSeconds: Double, applySeconds: Double, localSteps: Int? = nil, linkEfficiency: Double = 1
    ) {
        self.linkEfficiency = linkEfficiency
        self.microBatchSeconds = microBatchSeconds
        self.microBatchesPerStep = microBatchesPerStep
        self.messageBytes = messageBytes
        self.bandwidth = bandwidth
        self.latency = latency
        self.addSeconds = addSeconds
        self.applySeconds = applySeconds
        self.localSteps = localSteps
    }

    /// The projected timing of one step with `workers` workers.
    public struct Projection: Sendable, Equatable {
        /// Workers asked for.
        public var workers: Int
        /// Workers that get work (a step has only `B/m` micro-batches).
        public var busyWorkers: Int
        /// Seconds per optimiser step (per plan step with `sync=parameters`).
        public var stepSeconds: Double
        /// Seconds per step the busiest worker computes.
        public var computeSeconds: Double
        /// Seconds per step the coordinator's incoming link is busy.
        public var linkSeconds: Double

        /// The share of a step not spent computing on the busiest worker.
        public var communicationShare: Double { max(0, 1 - computeSeconds / stepSeconds) }
        /// The share of a step the coordinator's incoming link is busy.
        public var linkUtilisation: Double { min(1, linkSeconds / stepSeconds) }
    }

    /// Replays one step (or round) with `workers` workers.
    public func project(workers: Int) -> Projection {
        precondition(workers >= 1 && microBatchesPerStep >= 1, "at least one worker and one micro-batch")
        let n = microBatchesPerStep
        let busy = min(workers, n)
        let transfer = messageBytes / (bandwidth * linkEfficiency)
        // 1. Parameters out to every busy worker at once, sharing the coordinator's outgoing link.
        let arrival = [Double](repeating: Double(busy) * transfer + latency, count: busy)
        guard let H = localSteps else {
            // 2. Each worker computes its micro-batches j ≡ k (mod busy) in order.
            var ready = [Double](repeating: 0, count: n)
            for k in 0..<busy {
                var clock = arrival[k]
                for j in stride(from: k, to: n, by: busy) {
                    clock += microBatchSeconds
                    ready[j] = clock
                }
            }
            // 3. Results through the incoming link in the order they are ready.
            var arrived = [Double](repeating: 0, count: n)
            var linkFree = 0.0
            for j in (0..<n).sorted(by: { (ready[$0], $0) < (ready[$1], $1) }) {
                linkFree = max(linkFree, ready[j]) + transfer
                arrived[j] = linkFree + latency
            }
            // 4. In-order adds, then the update.
            var added = 0.0
            for j in 0..<n { added = max(added, arrived[j]) + addSeconds }
            let perWorker = (n + busy - 1) / busy
            return Projection(
                workers: workers, busyWorkers: busy, stepSeconds: added + applySeconds,
                computeSeconds: Double(perWorker) * microBatchSeconds, linkSeconds: Double(n) * transfer)
        }
        // sync=parameters: H steps of local work, one exchange per round.
        let share = { (k: Int) in stride(from: k, to: n, by: busy).underestimatedCount }
        let done = (0..<busy).map { arrival[$0] + Double(H) * (Double(share($0)) * microBatchSeconds + applySeconds) }
        var linkFree = 0.0
        var averaged = 0.0
        for k in (0..<busy).sorted(by: { (done[$0], $0) < (done[$1], $1) }) {
            linkFree = max(linkFree, done[k]) + transfer
            averaged = max(averaged, linkFree + latency) + addSeconds
        }
        let perWorker = (n + busy - 1) / busy
        return Projection(
            workers: workers, busyWorkers: busy, stepSeconds: averaged / Double(H),
            computeSeconds: Double(perWorker) * microBatchSeconds + applySeconds,
            linkSeconds: Double(busy) * transfer / Double(H))
    }
}
