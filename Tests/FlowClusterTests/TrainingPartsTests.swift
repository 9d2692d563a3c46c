import FlowWire
import Testing
@testable import FlowCluster

/// The training machine's owned parts on their own: shard assignment, the straggler policy,
/// step verification, local-round progress, and the sampler both machines share.
struct TrainingPartsTests {
    @Test func shardsAreSpreadEvenlyAndMoveOnlyAsNeeded() {
        var a = ShardAssignment(shardCount: 10)
        a.rebalance(among: [1])
        #expect(a.shards(of: 1) == Set(0..<10))
        a.rebalance(among: [1, 2, 3])
        let counts = [1, 2, 3].map { a.shards(of: $0).count }
        #expect(counts.max()! - counts.min()! <= 1 && counts.reduce(0, +) == 10)
        for shard in 0..<10 { #expect(a.shards(of: a.owner[shard]!).contains(shard)) }
        let before = a.owner
        a.release(2)
        #expect(a.shards(of: 2).isEmpty && (0..<10).filter { a.owner[$0] == nil }.count == counts[1])
        a.rebalance(among: [1, 3])
        // Only worker 2's shards moved.
        for shard in 0..<10 where before[shard] != 2 { #expect(a.owner[shard] == before[shard]) }
        #expect(a.shards(of: 1).count + a.shards(of: 3).count == 10)
        // A worker left out of the list (demoted) loses its shards.
        a.rebalance(among: [3])
        #expect(a.shards(of: 1).isEmpty && a.shards(of: 3).count == 10)
    }

    @Test func backupsWaitForTwiceAShareAndResetForgetsTheStep() {
        var p = StragglerPolicy(minimumBackupDelay: 0.05, slowStepsBeforeDemotion: 2, demotionSteps: 4...16)
        p.stepStarted(0, now: 0)
        p.ownerGiven(1)
        p.ownerGiven(2)
        p.resultAccepted(from: 2, owner: 2, now: 0.1)  // worker 2 is done after 0.1 s
        let pending: [Int: UInt32] = [0: 1, 1: 1]
        #expect(p.backups(pending: pending, live: [1, 2], now: 0.19).isEmpty)  // not yet 2 × 0.1 s
        let due = p.backups(pending: pending, live: [1, 2], now: 0.21)
        #expect(due.count == 1 && due[0].to == 2 && due[0].microBatches == [0, 1] && p.backupsSent == 2)
        #expect(p.backups(pending: pending, live: [1, 2], now: 0.5).isEmpty)  // each is backed up once
        p.resultAccepted(from: 2, owner: 1, now: 0.3)  // the backup won: worker 1 was beaten
        #expect(p.stepCompleted(0, live: [1, 2], now: 0.3).isEmpty)  // one slow step of two
        p.reset()
        p.stepStarted(1, now: 1)
        p.ownerGiven(1)
        p.resultAccepted(from: 2, owner: 1, now: 1.2)
        let demoted = p.stepCompleted(1, live: [1, 2], now: 1.2)
        #expect(demoted.count == 1 && demoted[0].id == 1 && demoted[0].slowSteps == 2 && demoted[0].until == 6)
        #expect(p.isDemoted(1))
        p.reset()
        p.stepStarted(6, now: 2)
        #expect(!p.isDemoted(1))
        p.forget(1)
        #expect(p.demotedUntil.isEmpty)
    }

    static func result(_ g: Int, value: Float) -> WireMessage.GradientResult {
        .init(jobID: 1, step: 0, version: 0, node: UInt64(g), rowCount: 4, lossSum: 1, gradient: .float32([value]))
    }

    @Test func verificationAcceptsAgreementAsksTheCoordinatorOnceAndTrustsIt() {
        var v = StepVerification(sampler: VerificationSampler(fraction: 1, seed: 3))
        v.addCandidate(Self.result(0, value: 1), for: 0, from: 1)
        #expect(v.verdict(on: 0) == .undecided)
        v.addCandidate(Self.result(0, value: 1), for: 0, from: 2)
        #expect(v.verdict(on: 0) == .accept(Self.result(0, value: 1), source: 1, liars: []))
        v.addCandidate(Self.result(1, value: 1), for: 1, from: 1)
        v.addCandidate(Self.result(1, value: 2), for: 1, from: 2)
        #expect(v.verdict(on: 1) == .askCoordinator(workers: [1, 2]))
        #expect(v.verdict(on: 1) == .undecided)  // asked once
        let answered = v.coordinatorAnswered(1)
        #expect(answered)
        v.addCandidate(Self.result(1, value: 2), for: 1, from: 0)
        #expect(v.verdict(on: 1) == .accept(Self.result(1, value: 2), source: 2, liars: [1]))
        v.acceptedUnverified(5, from: 1)
        let (unverified, lost) = v.discard(1)
        #expect(unverified == [5] && lost == [0, 1])
        v.reset()
        #expect(v.verdict(on: 1) == .undecided && !v.hasCandidate(1, from: 2))
    }

    @Test func localRoundsReturnInOrderAndResetClearsThem() {
        var r = LocalRoundProgress()
        r.sent([0, 2], to: 1)
        r.sent([4], to: 1)
        #expect(r.oldestUnit(of: 1) == [0, 2])
        let result = WireMessage.LocalResult(jobID: 1, round: 0, baseVersion: 0, rowCount: 8, lossSum: 1, parameters: .float32([0]))
        r.returnOldest(of: 1, result)
        #expect(r.oldestUnit(of: 1) == [4] && r.microBatchesDone == 2 && r.results == [result])
        #expect(r.takeBack(unitStarting: 4, from: 1) == [4] && r.oldestUnit(of: 1) == nil)
        r.reset()
        #expect(r.microBatchesDone == 0 && r.results.isEmpty)
    }

    @Test func theSamplerIsAPureFunctionOfSeedAndIndex() {
        let a = VerificationSampler(fraction: 0.3, seed: 9)
        let picked = (0..<10_000).filter { a.contains($0) }
        #expect(picked.count > 2_700 && picked.count < 3_300, "\(picked.count)")
        #expect(picked == (0..<10_000).filter { VerificationSampler(fraction: 0.3, seed: 9).contains($0) })
        #expect(picked != (0..<10_000).filter { VerificationSampler(fraction: 0.3, seed: 10).contains($0) })
        #expect(!(0..<100).contains { VerificationSampler(fraction: 0, seed: 9).contains($0) })
        #expect((0..<100).allSatisfy { VerificationSampler(fraction: 1, seed: 9).contains($0) })
    }
}
