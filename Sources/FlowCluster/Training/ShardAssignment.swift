/// Which live worker owns each shard of the batch plan (`sync=gradients`: the worker that
/// computes the micro-batches of that shard; `sync=parameters`: the one that trains on it).
///
/// Shards are spread evenly over the workers given to `rebalance` and move as little as
/// possible: only when their owner goes, is demoted, or a new worker needs a share.
/// Deterministic: ties are broken by worker id and shard index.
struct ShardAssignment: Sendable, Equatable {
    /// Shards in the plan.
    let shardCount: Int
    /// Owner of each shard (absent: unowned, waiting for a worker).
    private(set) var owner: [Int: UInt32] = [:]
    /// Shards of each worker that owns any.
    private var owned: [UInt32: Set<Int>] = [:]

    init(shardCount: Int) {
        self.shardCount = shardCount
    }

    /// The shards worker `id` owns.
    func shards(of id: UInt32) -> Set<Int> { owned[id] ?? [] }

    /// Worker `id` owns nothing any more (it went): its shards wait for `rebalance`.
    mutating func release(_ id: UInt32) {
        for shard in owned.removeValue(forKey: id) ?? [] { owner[shard] = nil }
    }

    /// Gives every unowned shard to one of `ids` (sorted worker ids; others lose theirs) and
    /// evens out ownership.
    mutating func rebalance(among ids: [UInt32]) {
        guard !ids.isEmpty else { return }
        for id in owned.keys.sorted() where !ids.contains(id) { release(id) }
        let target = (shardCount + ids.count - 1) / ids.count
        // Take shards from owners above the target, evenly spaced over what they own: a step's
        // micro-batches come from consecutive shards, so contiguous ownership would put a whole
        // step on one worker and leave the others idle.
        for id in ids {
            let mine = shards(of: id).sorted()
            guard mine.count > target else { continue }
            let excess = mine.count - target
            for j in 0..<excess { move(mine[j * mine.count / excess], to: nil) }
        }
        // Hand unowned shards to the least loaded (lowest id on ties).
        for shard in 0..<shardCount where owner[shard] == nil {
            move(shard, to: ids.min { (count($0), $0) < (count($1), $1) }!)
        }
        // Even out: trimming to ⌈S/n⌉ can leave a newcomer with nothing (S = 4, n = 3 → 2, 2, 0);
        // move single shards from the largest share to the smallest until they differ by ≤ 1.
        while true {
            let largest = ids.max { (count($0), $1) < (count($1), $0) }!
            let smallest = ids.min { (count($0), $0) < (count($1), $1) }!
            let mine = shards(of: largest).sorted()
            guard mine.count - count(smallest) > 1 else { break }
            move(mine[mine.count / 2], to: smallest)
        }
    }

    private func count(_ id: UInt32) -> Int { owned[id]?.count ?? 0 }

    private mutating func move(_ shard: Int, to id: UInt32?) {
        if let previous = owner[shard] {
            owned[previous]?.remove(shard)
            if owned[previous]?.isEmpty == true { owned[previous] = nil }
        }
        owner[shard] = id
        if let id { owned[id, default: []].insert(shard) }
    }
}
