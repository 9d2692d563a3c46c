/// The exchanges `tributary simulate` compares (`sync=gradients`), from the same measured costs.
///
/// - `microBatchStar` — the cluster before 0.4.0: every micro-batch's gradient crosses the
///   coordinator's link (`ClusterSimulation.project(workers:)`).
/// - `star` — the cluster as built: the star with pre-reduction on the worker: each worker adds the micro-batches
///   it computed into the maximal complete subtrees of the step's canonical reduction tree that
///   it holds and sends one partial per subtree; the coordinator combines them and applies Adam.
/// - `sharded` — the exchange as built: the parameters cut into `segments` segments, each owned
///   by a worker; workers send each segment of their partials straight to its owner
///   (reduce-scatter), the owner combines them in tree order and sends the step's gradient
///   segment to every worker (all-gather); every worker then applies Adam to the whole vector
///   (the optimiser state is replicated, so any survivor holds the committed state). The
///   coordinator orders the fold and commits the step (two latencies).
/// - `ring` — for reference, what a ring all-reduce takes (PyTorch DDP, Horovod): `2(W−1)` hops of
///   `1/W` of the gradient each, then every worker applies Adam to all of it.
///
/// Shared assumptions: a worker's share of the step is a contiguous run of the step's leaves
/// (`n/W` each, balanced), so the partials it sends are the aligned blocks that cover its run in
/// a binary tree over the `n` leaves (`subtrees(of:)`: one per worker when `W` divides `n` in
/// powers of two); every worker has a link of `bandwidth` to a non-blocking switch; a phase of
/// worker-to-worker traffic takes the largest bytes any one link sends or receives; compute and
/// communication do not overlap within a worker's step (a partial is complete only at the end).
extension ClusterSimulation {
    /// How one step's gradients are combined.
    public enum Exchange: String, Sendable, CaseIterable {
        case microBatchStar = "micro-batch-star"
        case star
        case sharded
        case ring
    }

    /// The number of aligned blocks (subtrees of a binary tree over `0..<n`, padded to a power
    /// of two) that exactly cover `range`: the partials a worker holding those leaves sends.
    public static func subtrees(of range: Range<Int>) -> Int {
        var count = 0
        var lower = range.lowerBound
        while lower < range.upperBound {
            // The largest aligned block starting at `lower` that stays inside the range.
            var size = lower == 0 ? 1 << 62 : lower & -lower
            while lower + size > range.upperBound { size >>= 1 }
            lower += size
            count += 1
        }
        return count
    }

    /// The leaves of worker `k` of `busy` (contiguous, balanced).
    static func leaves(of k: Int, busy: Int, n: Int) -> Range<Int> { (k * n / busy)..<((k + 1) * n / busy) }

    /// Projects one step with `workers` workers over `exchange`.
    public func project(workers: Int, exchange: Exchange, segments: Int = 64) -> Projection {
        precondition(localSteps == nil || exchange == .microBatchStar, "the exchanges model sync=gradients")
        precondition(segments >= 1, "at least one segment")
        if exchange == .microBatchStar { return project(workers: workers) }
        let n = microBatchesPerStep
        let busy = min(workers, n)
        let rate = bandwidth * linkEfficiency
        let transfer = messageBytes / rate
        let shares = (0..<busy).map { Self.leaves(of: $0, busy: busy, n: n) }
        let nodes = shares.map { Self.subtrees(of: $0) }
        // Compute, then pre-reduce the leaves into the subtrees (the ring: into one gradient).
        let folded = exchange == .ring ? [Int](repeating: 1, count: busy) : nodes
        let computed = (0..<busy).map { Double(shares[$0].count) * microBatchSeconds + Double(shares[$0].count - folded[$0]) * addSeconds }
        let compute = computed.max()!
        let busiest = Double(shares.map(\.count).max()!) * microBatchSeconds
        let partials = nodes.reduce(0, +)
        switch exchange {
        case .microBatchStar:
            fatalError("handled above")
        case .star:
            // Parameters out to every busy worker together, then partials in, in order of readiness.
            let arrival = Double(busy) * transfer + latency
            var linkFree = 0.0, combined = 0.0
            for k in (0..<busy).sorted(by: { (computed[$0], $0) < (computed[$1], $1) }) {
                linkFree = max(linkFree, arrival + computed[k]) + Double(nodes[k]) * transfer
                combined = max(combined, linkFree + latency) + Double(nodes[k]) * addSeconds
            }
            return Projection(
                workers: workers, busyWorkers: busy, stepSeconds: combined - addSeconds + applySeconds,
                computeSeconds: busiest, linkSeconds: Double(partials) * transfer)
        case .sharded:
            guard busy > 1 else {
                return Projection(workers: workers, busyWorkers: 1, stepSeconds: compute + applySeconds, computeSeconds: busiest, linkSeconds: 0)
            }
            let owners = min(busy, segments)
            let owned = (0..<busy).map { $0 < owners ? Double(($0 + 1) * segments / owners - $0 * segments / owners) / Double(segments) : 0 }
            // Reduce-scatter: each worker sends every other owner that owner's part of each partial.
            var sent = [Double](repeating: 0, count: busy), received = [Double](repeating: 0, count: busy)
            for k in 0..<busy {
                for o in 0..<owners where o != k {
                    sent[k] += Double(nodes[k]) * owned[o] * messageBytes
                    received[o] += Double(nodes[k]) * owned[o] * messageBytes
                }
            }
            let scatter = zip(sent, received).map { max($0, $1) }.max()! / rate + latency
            // Owners combine every partial of their segments (after the coordinator's order).
            let largest = owned.max()!
            let update = Double(partials - 1) * addSeconds * largest + latency
            // All-gather: each owner sends the step's gradient segments to every other worker,
            // and every worker applies Adam to the whole vector.
            let gatherOut = Double(busy - 1) * largest * messageBytes
            let gatherIn = (1 - owned.min()!) * messageBytes
            let gather = max(gatherOut, gatherIn) / rate + latency + applySeconds
            let commit = 2 * latency
            return Projection(
                workers: workers, busyWorkers: busy, stepSeconds: compute + scatter + update + gather + commit,
                computeSeconds: busiest, linkSeconds: (zip(sent, received).map { max($0, $1) }.max()! + max(gatherOut, gatherIn)) / rate)
        case .ring:
            guard busy > 1 else {
                return Projection(workers: workers, busyWorkers: 1, stepSeconds: compute + applySeconds, computeSeconds: busiest, linkSeconds: 0)
            }
            let hops = 2 * (busy - 1)
            let hop = messageBytes / Double(busy) / rate + latency
            let reduce = Double(busy - 1) / Double(busy) * addSeconds
            return Projection(
                workers: workers, busyWorkers: busy, stepSeconds: compute + Double(hops) * hop + reduce + applySeconds,
                computeSeconds: busiest, linkSeconds: Double(hops) * messageBytes / Double(busy) / rate)
        }
    }
}
