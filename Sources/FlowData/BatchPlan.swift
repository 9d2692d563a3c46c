import FlowRandom

/// One micro-batch of a ``BatchPlan``: the `indexInShard`-th micro-batch of shard `shard`,
/// which is global micro-batch `globalIndex`.
public struct MicroBatchRef: Sendable, Hashable, CustomStringConvertible {
    /// Position in the global micro-batch sequence: micro-batch `j` of step `s` is `s·M + j`.
    public let globalIndex: Int
    /// The shard whose rows the micro-batch holds (``BatchPlan/shard(step:slot:)``).
    public let shard: Int
    /// The micro-batch's index within its shard's stream: how many micro-batches of that shard
    /// come before it in the global sequence.
    public let indexInShard: Int

    /// Creates a reference (normally obtained from ``BatchPlan/microBatches(step:)``).
    public init(globalIndex: Int, shard: Int, indexInShard: Int) {
        self.globalIndex = globalIndex
        self.shard = shard
        self.indexInShard = indexInShard
    }

    /// `micro-batch g (shard k, #j)`.
    public var description: String {
        "micro-batch \(globalIndex) (shard \(shard), #\(indexInShard))"
    }
}

/// The step → micro-batch → rows plan shared by single-process training and the cluster: a
/// pure function of (seed, shard count S, micro-batch size m, batch size B, row count N).
///
/// Rules (documented with a worked example in `docs/data.md`):
/// - S = min(requested shard count, N). Shard k (0 ≤ k < S) owns the contiguous positions
///   `[k·N/S, (k+1)·N/S)` (integer division) of the training-row list; n_k ≥ 1 rows.
/// - Each shard has an endless stream of positions: epoch e = 0, 1, 2, … contributes a
///   permutation of its n_k positions drawn with
///   `SeededGenerator(seed: seed, stream: (k + 1)·2^32 + e)`.
/// - Micro-batch i of shard k is stream entries `[i·m, (i+1)·m)`; it may span an epoch
///   boundary and, when n_k < m, hold a row more than once.
/// - Step s has M = B/m micro-batches, global micro-batches `[s·M, (s+1)·M)`. Its micro-batch
///   j (0 ≤ j < M) is drawn from shard `(⌊j·S/M⌋ + s) mod S`: a step's micro-batches are spread
///   evenly over the shard space and the pattern turns by one shard a step, so that every shard
///   is drawn M times in any S consecutive steps, and a worker that owns a contiguous range of
///   shards holds whole subtrees of the step's ``ReductionTree``. Its index within the shard's
///   stream is the number of earlier draws of that shard (in step order, then j).
///
/// Positions index the training-row list (for example ``TrainValidationSplit/train``), not
/// the file. ``positions(of:)`` recomputes permutations on every call; use a
/// ``BatchPlanCursor`` to walk micro-batches in O(m) amortised time each.
public struct BatchPlan: Sendable, Equatable {
    /// The most micro-batches a step may have (B/m ≤ 2^20): a step's tree lists them all, in the
    /// coordinator and in every worker, so a plan received from a peer must not ask for more.
    public static let maximumMicroBatchesPerStep = 1 << 20

    /// The shard count used when none is given (Horovod's advice: keep the number of
    /// partitions constant, independent of the number of workers).
    public static let defaultShardCount = 64

    /// The shuffling seed.
    public let seed: UInt64
    /// N, the number of rows in the training-row list.
    public let rowCount: Int
    /// S, the number of shards actually used (≤ N).
    public let shardCount: Int
    /// m, rows per micro-batch.
    public let microBatchSize: Int
    /// B, rows per step.
    public let batchSize: Int

    /// Creates a plan.
    ///
    /// - Throws: ``DataError/badBatchPlan(reason:)`` unless `microBatchSize ≥ 1`,
    ///   `batchSize` is a positive multiple of `microBatchSize`, `1 ≤ rowCount ≤ 2^40`,
    ///   `microBatchSize ≤ 2^30`, `batchSize ≤ 2^40`, `batchSize / microBatchSize ≤ 2^20` and
    ///   `1 ≤ shardCount < 2^31`.
    public init(
        seed: UInt64, rowCount: Int, microBatchSize: Int, batchSize: Int,
        shardCount: Int = BatchPlan.defaultShardCount
    ) throws(DataError) {
        guard microBatchSize >= 1 else {
            throw DataError.badBatchPlan(reason: "the micro-batch size must be at least 1, got \(microBatchSize)")
        }
        guard batchSize >= 1 && batchSize % microBatchSize == 0 else {
            throw DataError.badBatchPlan(
                reason: "the batch size \(batchSize) is not a positive multiple of the micro-batch size \(microBatchSize)")
        }
        guard rowCount >= 1 else {
            throw DataError.badBatchPlan(reason: "there are no training rows")
        }
        guard shardCount >= 1 && shardCount < (1 << 31) else {
            throw DataError.badBatchPlan(reason: "the shard count must be between 1 and 2^31 − 1, got \(shardCount)")
        }
        // Shard ranges compute (k + 1)·N; a plan received from a peer must not overflow it, nor
        // the micro-batch positions (index · m), so N and m are bounded well inside Int.
        guard rowCount <= (1 << 40), microBatchSize <= (1 << 30), batchSize <= (1 << 40) else {
            throw DataError.badBatchPlan(
                reason: "row count \(rowCount), micro-batch \(microBatchSize) or batch \(batchSize) exceeds the supported range (2^40 rows, 2^30-row micro-batches)")
        }
        guard batchSize / microBatchSize <= Self.maximumMicroBatchesPerStep else {
            throw DataError.badBatchPlan(
                reason: "a step of \(batchSize / microBatchSize) micro-batches (batch \(batchSize) / micro-batch \(microBatchSize)) exceeds the supported 1048576 (2^20)")
        }
        self.seed = seed
        self.rowCount = rowCount
        self.shardCount = min(shardCount, rowCount)
        self.microBatchSize = microBatchSize
        self.batchSize = batchSize
    }

    /// B/m, the number of micro-batches in every step.
    public var microBatchesPerStep: Int { batchSize / microBatchSize }

    /// The positions owned by shard `k`: `[k·N/S, (k+1)·N/S)`.
    public func shardRange(_ k: Int) -> Range<Int> {
        precondition(k >= 0 && k < shardCount, "BatchPlan.shardRange: shard \(k) outside 0..<\(shardCount)")
        return (k * rowCount / shardCount)..<((k + 1) * rowCount / shardCount)
    }

    /// Global micro-batch `g` (micro-batch `g mod M` of step `⌊g/M⌋`).
    public func microBatch(globalIndex g: Int) -> MicroBatchRef {
        precondition(g >= 0, "BatchPlan.microBatch: negative index \(g)")
        let M = microBatchesPerStep, S = shardCount
        let s = g / M, j = g % M
        let offset = slotOffset(j)
        let k = (offset + s % S) % S
        // Draws of shard k before step s: M per full period of S steps, then those of the steps
        // s' = q·S + t (t < r), which draw k from slot offset (k − t) mod S: the offsets in the
        // cyclic window [k − r + 1, k].
        let q = s / S, r = s % S
        let window = k - r + 1 >= 0
            ? slotsBefore(offset: k + 1) - slotsBefore(offset: k - r + 1)
            : slotsBefore(offset: k + 1) + M - slotsBefore(offset: S + k - r + 1)
        // Then the earlier slots of step s with the same offset.
        let index = q * M + window + (j - slotsBefore(offset: offset))
        return MicroBatchRef(globalIndex: g, shard: k, indexInShard: index)
    }

    /// The shard of micro-batch `slot` (0 ≤ slot < M) of step `s`: `(⌊slot·S/M⌋ + s) mod S`.
    public func shard(step s: Int, slot j: Int) -> Int {
        precondition(s >= 0 && j >= 0 && j < microBatchesPerStep, "BatchPlan.shard: slot \(j) of step \(s) outside the plan")
        return (slotOffset(j) + s % shardCount) % shardCount
    }

    /// The slots of step `s` that draw from shard `k`, in order (empty when the step does not use it).
    public func slots(step s: Int, shard k: Int) -> Range<Int> {
        precondition(s >= 0 && k >= 0 && k < shardCount, "BatchPlan.slots: shard \(k) outside 0..<\(shardCount)")
        let x = ((k - s % shardCount) % shardCount + shardCount) % shardCount
        return slotsBefore(offset: x)..<slotsBefore(offset: x + 1)
    }

    /// ⌊j·S/M⌋, the shard offset of slot j (computed in 128 bits: j·S may exceed 2^63).
    private func slotOffset(_ j: Int) -> Int {
        let product = j.multipliedFullWidth(by: shardCount)
        return microBatchesPerStep.dividingFullWidth((product.high, product.low)).quotient
    }

    /// ⌈x·M/S⌉ (0 ≤ x ≤ S): the number of slots whose offset is below x.
    private func slotsBefore(offset x: Int) -> Int {
        let product = x.multipliedFullWidth(by: microBatchesPerStep)
        let (quotient, remainder) = shardCount.dividingFullWidth((product.high, product.low))
        return remainder == 0 ? quotient : quotient + 1
    }

    /// The micro-batches of step `s` (0-based), in the order their results are combined.
    public func microBatches(step s: Int) -> [MicroBatchRef] {
        precondition(s >= 0, "BatchPlan.microBatches: negative step \(s)")
        let first = s * microBatchesPerStep
        return (first..<(first + microBatchesPerStep)).map { microBatch(globalIndex: $0) }
    }

    /// The positions of shard `k` in the order of its epoch `e` (the permutation drawn for
    /// that shard-epoch, offset to the shard's range).
    public func permutation(shard k: Int, epoch e: Int) -> [Int] {
        let range = shardRange(k)
        precondition(e >= 0, "BatchPlan.permutation: negative epoch \(e)")
        var generator = SeededGenerator(seed: seed, stream: RandomStream.shardEpoch(shard: k, epoch: e))
        var order = generator.permutation(range.count)
        for i in order.indices { order[i] += range.lowerBound }
        return order
    }

    /// The m positions (into the training-row list) of a micro-batch. Recomputes the
    /// permutations it needs; see ``BatchPlanCursor`` for repeated use.
    public func positions(of ref: MicroBatchRef) -> [Int] {
        var cursor = BatchPlanCursor(plan: self)
        return cursor.positions(of: ref)
    }
}

/// Walks a ``BatchPlan`` with a per-shard cache of the current epoch's permutation, so that
/// consecutive micro-batches of a shard cost O(m) each (amortised) instead of O(n_k).
///
/// A value type: each thread or task keeps its own cursor (`positions(of:)` is `mutating`).
/// Any call order gives the same positions as ``BatchPlan/positions(of:)``.
public struct BatchPlanCursor: Sendable {
    /// The plan being walked.
    public let plan: BatchPlan

    private struct ShardCache: Sendable {
        var epochs: [Int] = []
        var orders: [[Int]] = []
    }

    private var caches: [Int: ShardCache] = [:]

    /// A cursor with empty caches.
    public init(plan: BatchPlan) {
        self.plan = plan
    }

    /// The m positions of `ref`, as ``BatchPlan/positions(of:)`` defines them.
    public mutating func positions(of ref: MicroBatchRef) -> [Int] {
        let k = ref.shard
        precondition(k >= 0 && k < plan.shardCount && ref.indexInShard >= 0,
                     "BatchPlanCursor: \(ref) is not a micro-batch of this plan")
        let size = plan.shardRange(k).count
        let m = plan.microBatchSize
        var result = [Int]()
        result.reserveCapacity(m)
        var p = ref.indexInShard * m
        let end = p + m
        while p < end {
            let epoch = p / size
            let offset = p % size
            let order = permutation(shard: k, epoch: epoch)
            let take = min(end - p, size - offset)
            result.append(contentsOf: order[offset..<(offset + take)])
            p += take
        }
        return result
    }

    /// The positions of all micro-batches of step `s`, in order.
    public mutating func positions(step s: Int) -> [[Int]] {
        plan.microBatches(step: s).map { positions(of: $0) }
    }

    /// The cached permutation of shard `k`, epoch `e` (the two most recent epochs of each shard
    /// are kept, enough for a micro-batch that spans an epoch boundary).
    private mutating func permutation(shard k: Int, epoch e: Int) -> [Int] {
        var cache = caches[k] ?? ShardCache()
        if let slot = cache.epochs.firstIndex(of: e) {
            return cache.orders[slot]
        }
        let order = plan.permutation(shard: k, epoch: e)
        cache.epochs.append(e)
        cache.orders.append(order)
        if cache.epochs.count > 2 {
            cache.epochs.removeFirst()
            cache.orders.removeFirst()
        }
        caches[k] = cache
        return order
    }
}
