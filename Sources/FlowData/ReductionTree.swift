/// A node of the reduction tree: the aligned block of shards `[index·2^level, (index+1)·2^level)`
/// (shards at or beyond S are padding and hold nothing). Level 0 nodes are the leaves, one per
/// shard; the root is the node of level ⌈log2 S⌉.
public struct TreeNode: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The node's height above the leaves.
    public let level: Int
    /// The node's position among the nodes of its level.
    public let index: Int

    /// The node of `level` whose block starts at `index·2^level`.
    public init(level: Int, index: Int) {
        precondition(level >= 0 && level <= 32 && index >= 0 && index < (1 << (32 - level)),
                     "TreeNode: level \(level), index \(index) outside a tree of 2^32 shards")
        self.level = level
        self.index = index
    }

    /// The leaf of shard `shard`.
    public init(leaf shard: Int) { self.init(level: 0, index: shard) }

    /// The node that `key` names, or nil when `key` names none (e.g. a peer's bad message).
    public init?(key: UInt64) {
        let level = Int(key & 63), first = key >> 6
        guard level <= 32, first < (1 << 32), first & ((1 << UInt64(level)) - 1) == 0 else { return nil }
        self.level = level
        self.index = Int(first) >> level
    }

    /// The node's name on the wire: `firstShard·64 + level` (ordered by first shard, then level).
    public var key: UInt64 { UInt64(firstShard) << 6 | UInt64(level) }

    /// The first shard of the block.
    public var firstShard: Int { index << level }

    /// The shards of the block, padding included.
    public var shards: Range<Int> { firstShard..<((index + 1) << level) }

    /// The two halves of the block (the node must not be a leaf).
    public var children: (left: TreeNode, right: TreeNode) {
        precondition(level > 0, "TreeNode: a leaf has no children")
        return (TreeNode(level: level - 1, index: 2 * index), TreeNode(level: level - 1, index: 2 * index + 1))
    }

    /// Whether `other`'s block lies inside this one (a node contains itself).
    public func contains(_ other: TreeNode) -> Bool {
        other.level <= level && other.firstShard >> level == index
    }

    /// Tree order: by first shard, then the smaller block first.
    public static func < (a: TreeNode, b: TreeNode) -> Bool { (a.firstShard, a.level) < (b.firstShard, b.level) }

    /// `shards a..<b`, or `shard k` for a leaf.
    public var description: String {
        level == 0 ? "shard \(index)" : "shards \(shards.lowerBound)..<\(shards.upperBound)"
    }
}

/// A step's micro-batches laid out on the reduction tree: the canonical order in which a step's
/// gradient is summed, whoever computes it.
///
/// The step's gradient is the value of the root, where a leaf's value is the sum of the step's
/// micro-batches drawn from that shard (left to right in slot order; a copy of the first), a
/// node's value is `left + right` when both halves hold micro-batches, the value of the one
/// that does otherwise (an empty half is skipped, never added as zeros), and a node without
/// micro-batches has none. The shape depends on the plan (seed, S, m, B, N) and the step only;
/// a node's value has the same bits whoever computes it and however the nodes below it were
/// shared out, which is what lets workers pre-reduce what they hold (see `GradientSum`, which
/// folds values in this order).
public struct ReductionTree: Sendable, Equatable {
    /// The step's micro-batches in tree order: by shard, then by slot.
    public let microBatches: [MicroBatchRef]
    /// The step.
    public let step: Int
    /// The tree's root (its level is ⌈log2 S⌉).
    public let root: TreeNode

    /// The tree of step `step` of `plan`.
    public init(plan: BatchPlan, step: Int) {
        precondition(step >= 0, "ReductionTree: negative step \(step)")
        self.step = step
        var levels = 0
        while (1 << levels) < plan.shardCount { levels += 1 }
        root = TreeNode(level: levels, index: 0)
        let first = step * plan.microBatchesPerStep
        microBatches = (first..<(first + plan.microBatchesPerStep))
            .map { plan.microBatch(globalIndex: $0) }
            .sorted { ($0.shard, $0.globalIndex) < ($1.shard, $1.globalIndex) }
    }

    /// The micro-batches under `node`, in tree order.
    public func microBatches(under node: TreeNode) -> ArraySlice<MicroBatchRef> {
        let block = node.shards
        let lower = partitionPoint { $0.shard >= block.lowerBound }
        let upper = partitionPoint { $0.shard >= block.upperBound }
        return microBatches[lower..<upper]
    }

    /// Whether `node` holds none of the step's micro-batches.
    public func isEmpty(_ node: TreeNode) -> Bool { microBatches(under: node).isEmpty }

    /// The shards under `node` that the step draws from, in order.
    public func shards(under node: TreeNode) -> [Int] {
        var shards: [Int] = []
        for ref in microBatches(under: node) where shards.last != ref.shard { shards.append(ref.shard) }
        return shards
    }

    /// The non-empty nodes that cover `node`'s micro-batches, from the top down: a node is kept
    /// whole when `keepWhole` says so or it is a leaf, and split into its halves otherwise.
    /// In tree order.
    public func cover(_ node: TreeNode, keepWhole: (TreeNode) -> Bool) -> [TreeNode] {
        guard !isEmpty(node) else { return [] }
        if node.level == 0 || keepWhole(node) { return [node] }
        let (left, right) = node.children
        return cover(left, keepWhole: keepWhole) + cover(right, keepWhole: keepWhole)
    }

    /// The first index `i` of `microBatches` with `belongs(microBatches[i])` (a monotone predicate).
    private func partitionPoint(_ belongs: (MicroBatchRef) -> Bool) -> Int {
        var low = 0, high = microBatches.count
        while low < high {
            let mid = (low + high) / 2
            if belongs(microBatches[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
