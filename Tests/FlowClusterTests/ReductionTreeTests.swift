import FlowData
import FlowRandom
import Flows
import Testing

/// The reduction tree and `GradientSum`: the fold of micro-batches, of nodes, and of any mix of
/// the two gives the root's value as `docs/data.md` defines it, bit for bit.
struct ReductionTreeTests {
    /// A vector per micro-batch, with magnitudes spread over many orders so that a different
    /// association of the additions changes the bits.
    static func values(_ tree: ReductionTree, length: Int, seed: UInt64) -> [Int: [Float]] {
        var generator = SeededGenerator(seed: seed)
        var values: [Int: [Float]] = [:]
        for ref in tree.microBatches {
            values[ref.globalIndex] = (0..<length).map { _ in
                let mantissa = Float(generator.next() % 2_000_001) / 1_000_000 - 1
                return mantissa * Float(1 << Int(generator.next() % 24))
            }
        }
        return values
    }

    /// The definition, recursively: a leaf sums its shard's micro-batches in slot order (the
    /// first copied); a node adds its halves' values when both exist.
    static func reference(_ node: TreeNode, _ tree: ReductionTree, _ values: [Int: [Float]]) -> [Float]? {
        let under = tree.microBatches(under: node)
        guard !under.isEmpty else { return nil }
        if node.level == 0 {
            var sum = values[under.first!.globalIndex]!
            for ref in under.dropFirst() { for i in sum.indices { sum[i] += values[ref.globalIndex]![i] } }
            return sum
        }
        let (l, r) = node.children
        switch (reference(l, tree, values), reference(r, tree, values)) {
        case (let a?, let b?): return zip(a, b).map { $0 + $1 }
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }

    /// `GradientSum` over the micro-batches under `node`, in tree order.
    static func fold(_ node: TreeNode, _ tree: ReductionTree, _ values: [Int: [Float]], length: Int) -> GradientSum<Float> {
        var sum = GradientSum<Float>(parameterCount: length)
        for ref in tree.microBatches(under: node) {
            sum.add(microBatchOf: ref.shard, gradient: values[ref.globalIndex]!, lossSum: Double(ref.globalIndex), rows: 1)
        }
        sum.finish()
        return sum
    }

    @Test(arguments: [(6, 8), (8, 8), (64, 16), (16, 64), (13, 40), (7, 3), (1, 5), (5, 1), (100, 37)])
    func everyFoldGivesTheRootsBits(shards: Int, slots: Int) throws {
        let plan = try BatchPlan(seed: 9, rowCount: 50_000, microBatchSize: 1, batchSize: slots, shardCount: shards)
        var leftFoldDiffered = false
        // Kept across steps, as a worker keeps them: the sum's buffers and the lane's array.
        var taken = GradientSum<Float>(parameterCount: 33)
        var lane = [Float](repeating: .nan, count: 33)
        for step in [0, 1, 5, shards + 3] {
            let tree = ReductionTree(plan: plan, step: step)
            let length = 33
            let values = Self.values(tree, length: length, seed: UInt64(step * 1000 + shards))
            let expected = try #require(Self.reference(tree.root, tree, values))
            // One process: micro-batches one by one.
            var whole = Self.fold(tree.root, tree, values, length: length)
            #expect(whole.gradient == expected, "S \(shards) M \(slots) step \(step)")
            #expect(whole.rows == slots && whole.microBatches == slots)
            // As the lanes add: each micro-batch's array taken by the sum, the lane's array reused.
            taken.reset()
            for ref in tree.microBatches(under: tree.root) {
                lane.withUnsafeMutableBufferPointer { _ = $0.update(from: values[ref.globalIndex]!) }
                taken.add(microBatchOf: ref.shard, taking: &lane, lossSum: Double(ref.globalIndex), rows: 1)
            }
            taken.finish()
            #expect(taken.gradient == expected, "taking: S \(shards) M \(slots) step \(step)")
            #expect(taken.lossSum.bitPattern == whole.lossSum.bitPattern && taken.rows == slots)
            // Workers: nodes cut along random owner boundaries, each pre-reduced, then folded.
            var generator = SeededGenerator(seed: UInt64(step))
            for _ in 0..<6 {
                let cuts = Set((0..<3).map { _ in Int(generator.next() % UInt64(shards + 1)) })
                let owner = { (shard: Int) in cuts.filter { $0 <= shard }.count }
                let nodes = tree.cover(tree.root) { node in
                    let shards = tree.shards(under: node)
                    return shards.allSatisfy { owner($0) == owner(shards[0]) }
                }
                #expect(nodes.flatMap { tree.microBatches(under: $0).map(\.globalIndex) } == tree.microBatches.map(\.globalIndex),
                        "the nodes cover the step once, in tree order")
                var partials = GradientSum<Float>(parameterCount: length)
                var borrowedNodes: [GradientSum<Float>.BorrowedNode] = []
                for node in nodes {
                    let part = Self.fold(node, tree, values, length: length)
                    borrowedNodes.append(.init(
                        firstShard: node.firstShard, values: part.gradient[...], lossSum: part.lossSum, rows: part.rows,
                        microBatches: part.microBatches))
                    #expect(part.gradient == Self.reference(node, tree, values))
                    part.gradient.withUnsafeBufferPointer {
                        partials.add(nodeAt: node.firstShard, gradient: $0.baseAddress!, lossSum: part.lossSum, rows: part.rows,
                                     microBatches: part.microBatches)
                    }
                }
                partials.finish()
                #expect(partials.gradient == expected, "S \(shards) M \(slots) step \(step), cuts \(cuts.sorted())")
                #expect(partials.lossSum.bitPattern == whole.lossSum.bitPattern)
                // An owner's fold: the same nodes read where they lie.
                var ownerSum = GradientSum<Float>(parameterCount: length)
                let (root, lossSum, rows) = ownerSum.fold(borrowing: borrowedNodes) { (Array($0), $1, $2) }
                #expect(root == expected, "borrowed: S \(shards) M \(slots) step \(step), cuts \(cuts.sorted())")
                #expect(lossSum.bitPattern == whole.lossSum.bitPattern && rows == slots)
                #expect(ownerSum.isEmpty, "the fold resets the sum: no borrowed address outlives it")
            }
            // The test can fail: adding in slot order (a left fold) gives other bits somewhere (with
        // one shard the tree is one leaf, which is the left fold).
            var left = values[tree.microBatches.map(\.globalIndex).min()!]!
            for g in tree.microBatches.map(\.globalIndex).sorted().dropFirst() { for i in left.indices { left[i] += values[g]![i] } }
            if left != expected { leftFoldDiffered = true }
            whole.reset()
            #expect(whole.isEmpty && whole.rows == 0)
        }
        if slots >= 3, shards >= 2 { #expect(leftFoldDiffered, "S \(shards) M \(slots): the tree is the left fold on every step tried") }
    }

    /// `isFinite()` after any way of adding: known from the additions that wrote the root, or
    /// tested when the root was copied in (one micro-batch, one node).
    @Test(arguments: [(1, 1), (1, 3), (4, 4), (13, 5)])
    func finitenessIsKnownWhateverWroteTheRoot(shards: Int, slots: Int) throws {
        let length = 37
        let plan = try BatchPlan(seed: 5, rowCount: 50_000, microBatchSize: 1, batchSize: slots, shardCount: shards)
        let tree = ReductionTree(plan: plan, step: 0)
        for bad in [Float?.none, .nan, .infinity, -.infinity] {
            for target in Set([0, tree.microBatches.count / 2, tree.microBatches.count - 1]) {
                var values = Self.values(tree, length: length, seed: 9)
                if let bad { values[tree.microBatches[target].globalIndex]![target % length] = bad }
                var whole = Self.fold(tree.root, tree, values, length: length)
                #expect(whole.isFinite() == (bad == nil), "micro-batches: \(String(describing: bad)) in micro-batch \(target)")
                #expect(whole.isFinite() == (bad == nil), "remembered")
                var taken = GradientSum<Float>(parameterCount: length)
                for ref in tree.microBatches {
                    var lane = values[ref.globalIndex]!
                    taken.add(microBatchOf: ref.shard, taking: &lane, lossSum: 0, rows: 1)
                }
                taken.finish()
                #expect(taken.isFinite() == (bad == nil), "taking: \(String(describing: bad)) in micro-batch \(target)")
                var node = GradientSum<Float>(parameterCount: length)
                whole.withGradient { node.add(nodeAt: 0, gradient: $0.baseAddress!, lossSum: 0, rows: 1, microBatches: 1) }
                node.finish()
                #expect(node.isFinite() == (bad == nil), "one node, copied in")
            }
        }
    }

    @Test func nodeKeysRoundTripAndMalformedKeysAreRefused() {
        for node in [TreeNode(leaf: 0), TreeNode(leaf: 5), TreeNode(level: 3, index: 0), TreeNode(level: 2, index: 7), TreeNode(level: 32, index: 0)] {
            #expect(TreeNode(key: node.key) == node)
        }
        #expect(TreeNode(leaf: 3).key == 192 && TreeNode(level: 1, index: 2).key == 257)
        #expect(TreeNode(key: 65) == nil, "first shard 1 is not aligned to level 1")
        #expect(TreeNode(key: 33) == nil, "level 33 is above any tree")
        #expect(TreeNode(key: UInt64(1) << 40) == nil, "first shard beyond 2^32")
        #expect(TreeNode(level: 2, index: 1).contains(TreeNode(leaf: 5)) && !TreeNode(level: 2, index: 1).contains(TreeNode(leaf: 3)))
        #expect(TreeNode(level: 2, index: 1).shards == 4..<8)
    }

    @Test func emptyHalvesAreSkippedNotAddedAsZeros() throws {
        // −0 survives a copy but not 0 + (−0): a leaf alone under its parent keeps its sign bit.
        let plan = try BatchPlan(seed: 1, rowCount: 100, microBatchSize: 1, batchSize: 1, shardCount: 8)
        let tree = ReductionTree(plan: plan, step: 3)
        #expect(tree.microBatches.map(\.shard) == [3])
        var sum = GradientSum<Float>(parameterCount: 2)
        sum.add(microBatchOf: 3, gradient: [-0.0, 1], lossSum: 2, rows: 1)
        sum.finish()
        #expect(sum.gradient[0].sign == .minus && sum.gradient[1] == 1 && sum.lossSum == 2)
        #expect(tree.cover(tree.root) { _ in false } == [TreeNode(leaf: 3)], "splitting stops at the only non-empty leaf")
        #expect(tree.cover(tree.root) { _ in true } == [tree.root])
    }
}
