/// Which live worker owns each shard of the batch plan (`sync=gradients`: the worker that
/// computes the step's tree nodes over those shards; `sync=parameters`: the one that trains on
/// them).
///
/// The workers given to `rebalance`, in id order, own consecutive contiguous ranges of shards of
/// sizes differing by at most one (`[i·S/W, (i+1)·S/W)` for the i-th of W): a worker then holds
/// whole subtrees of each step's reduction tree and returns one pre-reduced partial per subtree
/// (one per step when W is a power of two and S a multiple of W). A change of membership moves
/// the boundaries (rows already sent to a worker stay with it, so moving back costs nothing).
/// Deterministic: a function of the sorted worker ids alone.
struct ShardAssignment: Sendable, Equatable {
    /// Shards in the plan.
    let shardCount: Int
    /// Owner of each shard (absent: unowned, waiting for a worker).
    private(set) var owner: [Int: UInt32] = [:]
    /// The range of each worker that owns any.
    private var ranges: [UInt32: Range<Int>] = [:]

    init(shardCount: Int) {
        self.shardCount = shardCount
    }

    /// The shards worker `id` owns.
    func shards(of id: UInt32) -> Set<Int> { Set(ranges[id] ?? 0..<0) }

    /// The contiguous range worker `id` owns (empty: none).
    func range(of id: UInt32) -> Range<Int> { ranges[id] ?? 0..<0 }

    /// Worker `id` owns nothing any more (it went): its shards wait for `rebalance`.
    mutating func release(_ id: UInt32) {
        for shard in ranges.removeValue(forKey: id) ?? 0..<0 { owner[shard] = nil }
    }

    /// Cuts the shards into contiguous ranges over `ids` (sorted worker ids; others lose theirs).
    mutating func rebalance(among ids: [UInt32]) {
        guard !ids.isEmpty else { return }
        let sorted = ids.sorted()
        let W = sorted.count
        ranges.removeAll(keepingCapacity: true)
        for (i, id) in sorted.enumerated() {
            let range = (i * shardCount / W)..<((i + 1) * shardCount / W)
            guard !range.isEmpty else { continue }
            ranges[id] = range
            for shard in range { owner[shard] = id }
        }
    }
}
