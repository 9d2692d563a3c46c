import Testing
import FlowRandom
import FlowData

struct BatchPlanTests {
    @Test(arguments: [
        (0, 4, 10, 64, "the micro-batch size must be at least 1, got 0"),
        (3, 4, 10, 64, "the batch size 4 is not a positive multiple of the micro-batch size 3"),
        (2, 0, 10, 64, "the batch size 0 is not a positive multiple of the micro-batch size 2"),
        (2, 4, 0, 64, "there are no training rows"),
        (2, 4, 10, 0, "the shard count must be between 1 and 2^31 − 1, got 0"),
    ])
    func invalidArguments(micro: Int, batch: Int, rows: Int, shards: Int, reason: String) {
        let error = #expect(throws: DataError.self) {
            _ = try BatchPlan(seed: 1, rowCount: rows, microBatchSize: micro, batchSize: batch, shardCount: shards)
        }
        #expect(error == .badBatchPlan(reason: reason))
        #expect(error?.description == "invalid batch plan: \(reason)")
    }

    @Test(arguments: [(1000, 64, 64), (1000, 7, 7), (5, 64, 5), (1, 64, 1), (130, 64, 64)])
    func shardsPartitionTheRows(rows: Int, requested: Int, expected: Int) throws {
        let plan = try BatchPlan(seed: 1, rowCount: rows, microBatchSize: 4, batchSize: 8, shardCount: requested)
        #expect(plan.shardCount == expected)
        var next = 0
        for k in 0..<plan.shardCount {
            let range = plan.shardRange(k)
            #expect(range.lowerBound == next && range.count >= 1)
            #expect(range.lowerBound == k * rows / expected)
            next = range.upperBound
        }
        #expect(next == rows)
    }

    @Test func stepsSpreadOverTheShardsAndTurnByOneShardAStep() throws {
        // M = 5 slots over S = 3 shards: offsets ⌊3j/5⌋ = 0 0 1 1 2, turned by s.
        let plan = try BatchPlan(seed: 1, rowCount: 1000, microBatchSize: 8, batchSize: 40, shardCount: 3)
        #expect(plan.microBatchesPerStep == 5)
        let step0 = plan.microBatches(step: 0)
        let step1 = plan.microBatches(step: 1)
        #expect(step0.map(\.globalIndex) == [0, 1, 2, 3, 4])
        #expect(step0.map(\.shard) == [0, 0, 1, 1, 2])
        #expect(step0.map(\.indexInShard) == [0, 1, 0, 1, 0])
        #expect(step1.map(\.globalIndex) == [5, 6, 7, 8, 9])
        #expect(step1.map(\.shard) == [1, 1, 2, 2, 0])
        #expect(step1.map(\.indexInShard) == [2, 3, 1, 2, 2])
        #expect(plan.microBatch(globalIndex: 7) == MicroBatchRef(globalIndex: 7, shard: 2, indexInShard: 1))
        #expect(plan.slots(step: 1, shard: 2) == 2..<4 && plan.shard(step: 1, slot: 4) == 0)
        // M = 2 slots over S = 8: every fourth shard.
        let wide = try BatchPlan(seed: 1, rowCount: 1000, microBatchSize: 8, batchSize: 16, shardCount: 8)
        #expect((0..<3).map { wide.microBatches(step: $0).map(\.shard) } == [[0, 4], [1, 5], [2, 6]])
        #expect(wide.slots(step: 0, shard: 1).isEmpty)
    }

    /// The closed form of `indexInShard` against counting the earlier draws, for plans with
    /// fewer, as many and more slots than shards, divisible or not; `shard(step:slot:)` and
    /// `slots(step:shard:)` agree with it; every shard is drawn M times in any S consecutive steps.
    @Test(arguments: [(1, 1), (1, 7), (7, 1), (3, 5), (5, 3), (6, 8), (8, 6), (4, 4), (64, 16), (16, 64), (13, 40), (7, 100)])
    func indexInShardCountsEarlierDraws(shards: Int, slots: Int) throws {
        let plan = try BatchPlan(seed: 3, rowCount: 10_000, microBatchSize: 2, batchSize: 2 * slots, shardCount: shards)
        var draws = [Int](repeating: 0, count: shards)
        for s in 0..<(3 * shards + 2) {
            var perShard = [Int](repeating: 0, count: shards)
            for (j, ref) in plan.microBatches(step: s).enumerated() {
                #expect(ref.shard == plan.shard(step: s, slot: j))
                #expect(ref.indexInShard == draws[ref.shard], "S \(shards) M \(slots) step \(s) slot \(j)")
                #expect(plan.slots(step: s, shard: ref.shard).contains(j))
                draws[ref.shard] += 1
                perShard[ref.shard] += 1
            }
            #expect((0..<shards).allSatisfy { plan.slots(step: s, shard: $0).count == perShard[$0] })
        }
        // Steps S+2 ..< 2S+2 (any S consecutive steps): M draws of every shard.
        var window = [Int](repeating: 0, count: shards)
        for s in (shards + 2)..<(2 * shards + 2) { for ref in plan.microBatches(step: s) { window[ref.shard] += 1 } }
        #expect(window.allSatisfy { $0 == slots })
    }

    @Test func theLargestSlotAndShardCountsDoNotOverflow() throws {
        // 2^31 − 1 shards and 2^20 slots, the most a plan allows; 2^20 + 1 slots are refused.
        let plan = try BatchPlan(seed: 1, rowCount: 1 << 40, microBatchSize: 32, batchSize: 32 << 20, shardCount: (1 << 31) - 1)
        #expect(throws: DataError.badBatchPlan(reason: "a step of 1048577 micro-batches (batch 1048577 / micro-batch 1) exceeds the supported 1048576 (2^20)")) {
            _ = try BatchPlan(seed: 1, rowCount: 10, microBatchSize: 1, batchSize: (1 << 20) + 1)
        }
        let last = plan.microBatchesPerStep - 1
        let ref = plan.microBatch(globalIndex: last)
        #expect(ref.shard == plan.shard(step: 0, slot: last) && ref.shard < plan.shardCount)
        #expect(plan.slots(step: 0, shard: ref.shard).contains(last))
    }

    /// Reads shard k's stream for `epochs` epochs through micro-batches and checks that each
    /// epoch is a permutation of the shard's range.
    func checkEveryPositionOncePerEpoch(_ plan: BatchPlan, epochs: Int) {
        var cursor = BatchPlanCursor(plan: plan)
        for k in 0..<plan.shardCount {
            let range = plan.shardRange(k)
            let needed = epochs * range.count
            var stream: [Int] = []
            var j = 0
            while stream.count < needed {
                stream += cursor.positions(of: MicroBatchRef(globalIndex: j * plan.shardCount + k, shard: k, indexInShard: j))
                j += 1
            }
            for e in 0..<epochs {
                let epoch = stream[(e * range.count)..<((e + 1) * range.count)]
                #expect(epoch.sorted() == Array(range), "shard \(k) epoch \(e)")
                #expect(Array(epoch) == plan.permutation(shard: k, epoch: e))
            }
            if epochs >= 2 && range.count > 5 {
                #expect(stream[0..<range.count] != stream[range.count..<(2 * range.count)], "epochs reshuffle")
            }
        }
    }

    @Test func everyPositionOncePerShardEpoch() throws {
        checkEveryPositionOncePerEpoch(try BatchPlan(seed: 3, rowCount: 1003, microBatchSize: 7, batchSize: 21, shardCount: 10), epochs: 3)
        checkEveryPositionOncePerEpoch(try BatchPlan(seed: 3, rowCount: 64 * 5, microBatchSize: 5, batchSize: 10), epochs: 2)
    }

    @Test func fewerRowsThanShardsAndShardsSmallerThanAMicroBatch() throws {
        // N < S: S becomes N, every shard has one row, each micro-batch repeats it m times.
        let tiny = try BatchPlan(seed: 5, rowCount: 5, microBatchSize: 3, batchSize: 6)
        #expect(tiny.shardCount == 5)
        for s in 0..<4 {
            for ref in tiny.microBatches(step: s) {
                #expect(tiny.positions(of: ref) == [ref.shard, ref.shard, ref.shard])
            }
        }
        // n_k < m: a micro-batch spans several epochs, each a full permutation of the shard.
        let small = try BatchPlan(seed: 5, rowCount: 9, microBatchSize: 8, batchSize: 16, shardCount: 3)
        let ref = small.microBatch(globalIndex: 4)  // step 2, slot 0: shard 2, #1: stream entries 8..<16 of rows 6..<9
        #expect(ref.shard == 2 && ref.indexInShard == 1)
        let positions = small.positions(of: ref)
        #expect(positions.count == 8 && positions.allSatisfy { (6..<9).contains($0) })
        let stream = (0..<6).flatMap { small.permutation(shard: 2, epoch: $0) }
        #expect(positions == Array(stream[8..<16]))
        checkEveryPositionOncePerEpoch(small, epochs: 4)
    }

    @Test func deterministicAndSeedDependent() throws {
        let a = try BatchPlan(seed: 10, rowCount: 5000, microBatchSize: 16, batchSize: 64)
        let b = try BatchPlan(seed: 10, rowCount: 5000, microBatchSize: 16, batchSize: 64)
        let c = try BatchPlan(seed: 11, rowCount: 5000, microBatchSize: 16, batchSize: 64)
        #expect(a == b)
        for s in [0, 1, 17, 500] {
            for ref in a.microBatches(step: s) {
                #expect(a.positions(of: ref) == b.positions(of: ref))
            }
        }
        #expect(a.microBatches(step: 3).map(a.positions(of:)) != c.microBatches(step: 3).map(c.positions(of:)))
    }

    @Test func positionsDoNotDependOnCallOrder() throws {
        let plan = try BatchPlan(seed: 12, rowCount: 777, microBatchSize: 9, batchSize: 36, shardCount: 8)
        let refs = (0..<200).flatMap { plan.microBatches(step: $0) }
        var sequential = BatchPlanCursor(plan: plan)
        let inOrder = refs.map { sequential.positions(of: $0) }
        var shuffled = Array(refs.indices)
        var g = SeededGenerator(seed: 99)
        g.shuffle(&shuffled)
        var random = BatchPlanCursor(plan: plan)
        for i in shuffled {
            #expect(random.positions(of: refs[i]) == inOrder[i], "\(refs[i])")
        }
        for i in stride(from: 0, to: refs.count, by: 37) {
            #expect(plan.positions(of: refs[i]) == inOrder[i])
        }
        var cursor = BatchPlanCursor(plan: plan)
        #expect(cursor.positions(step: 5) == plan.microBatches(step: 5).map(plan.positions(of:)))
    }

    @Test func stepsVisitRowsEvenly() throws {
        // Over many steps every row is used about equally often.
        let plan = try BatchPlan(seed: 2, rowCount: 640, microBatchSize: 10, batchSize: 640)
        var counts = [Int](repeating: 0, count: 640)
        var cursor = BatchPlanCursor(plan: plan)
        for s in 0..<10 {
            for positions in cursor.positions(step: s) {
                for p in positions { counts[p] += 1 }
            }
        }
        #expect(counts.allSatisfy { $0 == 10 }, "64 shards of 10 rows, one micro-batch of 10 each per step")
    }

    /// The worked example of docs/data.md.
    @Test func documentedExample() throws {
        let plan = try BatchPlan(seed: 7, rowCount: 10, microBatchSize: 2, batchSize: 4, shardCount: 4)
        #expect((0..<4).map(plan.shardRange) == [0..<2, 2..<5, 5..<7, 7..<10])
        #expect(plan.permutation(shard: 1, epoch: 0) == Self.example["shard1epoch0"])
        #expect(plan.permutation(shard: 1, epoch: 1) == Self.example["shard1epoch1"])
        #expect((0..<4).map { plan.microBatches(step: $0).map(plan.positions(of:)) } == Self.exampleSteps)
    }

    static let example: [String: [Int]] = ["shard1epoch0": [2, 3, 4], "shard1epoch1": [4, 3, 2]]
    static let exampleSteps: [[[Int]]] = [[[1, 0], [6, 5]], [[2, 3], [7, 9]], [[5, 6], [1, 0]], [[8, 8], [4, 4]]]
}
