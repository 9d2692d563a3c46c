import FlowData
import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// `--verify-fraction` under the sharded exchange, without sockets: checked leaves go to two
/// workers of the roster, whose results carry the digest of the partial they sent to the owners;
/// agreeing digests decide, and the reduce order names a worker whose bits were accepted;
/// disagreeing ones ask the coordinator, whose answer quarantines the liar and restarts the
/// attempt without it. (The job is `ShardedCoordinatorTests`', with every leaf checked.)
struct ShardedVerificationTests {
    typealias Action = CoordinatorStateMachine.Action
    typealias Base = CoordinatorStateMachineTests
    typealias Sharded = ShardedCoordinatorTests

    static func machine() throws -> CoordinatorStateMachine {
        var spec = Base.spec()
        if case .training(var training) = spec.mode {
            training.sync = .sharded(Sharded.settings)
            training.digestResults = true
            spec.mode = .training(training)
        }
        var job = CoordinatorStateMachine.Job(
            spec: spec, plan: Base.plan(), steps: 3, checkpointEvery: nil, minimumWorkers: 2,
            heartbeatInterval: Base.interval, heartbeatLiveness: Base.liveness, instance: 7)
        job.verifyFraction = 1
        var machine = CoordinatorStateMachine(job: job)
        machine.heldStateVersion = 0
        return machine
    }

    /// Worker `n`'s result for `node` of step 0, with `digest`.
    static func result(_ node: UInt64, digest: UInt64) -> WireMessage {
        guard case .gradientResult(var r) = Sharded.header(node, step: 0) else { fatalError() }
        r.digest = digest
        return .gradientResult(r)
    }

    static func orders(_ actions: [Action]) -> [WireMessage.ReduceOrder] {
        Sharded.sent(actions).compactMap { if case .reduce(let o) = $0.message { return o } else { return nil } }
    }

    /// Every assignment of `actions` by worker.
    static func handed(_ actions: [Action]) -> [UInt8: [UInt64]] {
        var out: [UInt8: [UInt64]] = [:]
        for (id, a) in Sharded.assignments(actions) { out[id, default: []] += a.items }
        return out
    }

    @Test func everyCheckedLeafGoesToTwoWorkersAndAgreeingDigestsDecide() throws {
        var m = try Self.machine()
        var actions = Sharded.receive(&m, Sharded.hello(1), from: 1, at: 0)
        actions += Sharded.receive(&m, Sharded.hello(2), from: 2, at: 0)
        let handed = Self.handed(actions)
        let leaves = Set(handed.values.flatMap { $0 })
        // Only leaves, each to both workers; no computing here.
        #expect(leaves.allSatisfy { TreeNode(key: $0)?.level == 0 } && !leaves.isEmpty)
        #expect(Set(handed[1] ?? []) == leaves && Set(handed[2] ?? []) == leaves, "\(handed)")
        #expect(!actions.contains { if case .computeLocally = $0 { return true } else { return false } })
        // A result without a digest is invalid in this job.
        let first = leaves.sorted()[0]
        var reduce: [Action] = []
        reduce += Sharded.receive(&m, Self.result(first, digest: 0), from: 1, at: 0.1)
        #expect((m.invalidMessages[[1]] ?? 0) == 1)
        for node in leaves.sorted() {
            for n: UInt8 in [1, 2] { reduce += Sharded.receive(&m, Self.result(node, digest: 1000 + node), from: n, at: 0.125) }
        }
        let order = try #require(Self.orders(reduce).first, "\(reduce)")
        #expect(order.nodes == leaves.sorted() && order.sources.allSatisfy { $0 == 1 || $0 == 2 })
        #expect(!reduce.contains { if case .computeLocally = $0 { return true } else { return false } })
    }

    @Test func disagreeingDigestsAskTheCoordinatorWhoseAnswerQuarantinesTheLiarAndRestartsTheAttempt() throws {
        var m = try Self.machine()
        var actions = Sharded.receive(&m, Sharded.hello(1), from: 1, at: 0)
        actions += Sharded.receive(&m, Sharded.hello(2), from: 2, at: 0)
        let leaves = Set(Self.handed(actions).values.flatMap { $0 }).sorted()
        let epoch = m.epoch
        let bad = leaves[0]
        // Worker 2 lies about the first leaf.
        var after: [Action] = []
        for node in leaves {
            after += Sharded.receive(&m, Self.result(node, digest: 7), from: 1, at: 0.125)
            after += Sharded.receive(&m, Self.result(node, digest: node == bad ? 8 : 7), from: 2, at: 0.125)
        }
        #expect(after.contains { if case .computeLocally(0, let item) = $0 { return item == Int(bad) } else { return false } }, "\(after)")
        #expect(m.sources(ofChecked: Int(bad)) == [1, 2])
        #expect(Self.orders(after).isEmpty)
        // The coordinator's own digest agrees with worker 1: worker 2 is quarantined, and the
        // attempt starts over under a new epoch with worker 1 alone (the coordinator is the
        // second source of every checked leaf now).
        guard case .gradientResult(var truth) = Self.result(bad, digest: 7) else { return }
        truth.gradient = .float32([])
        let verdict = m.coordinatorComputed(truth, now: 0.25)
        #expect(verdict.contains { if case .log(.workerQuarantined(2, _, _, _)) = $0 { return true } else { return false } }, "\(verdict)")
        #expect(m.liveWorkerIDs == [1])
        let roster = try #require(Sharded.rosters(verdict).last)
        #expect(roster.epoch > epoch && roster.workerIDs == [1])
        #expect(Set(Self.handed(verdict)[1] ?? []) == Set(leaves), "\(verdict)")
        #expect(verdict.filter { if case .computeLocally = $0 { return true } else { return false } }.count == leaves.count)
        #expect(Self.orders(verdict).isEmpty)
    }

    /// When no worker has the coordinator's bits, no worker's segments can stand for the leaf:
    /// every worker that answered is quarantined (here both), and the step waits for workers.
    @Test func whenNoWorkerAgreesWithTheCoordinatorNoValueIsTaken() throws {
        var m = try Self.machine()
        var actions = Sharded.receive(&m, Sharded.hello(1), from: 1, at: 0)
        actions += Sharded.receive(&m, Sharded.hello(2), from: 2, at: 0)
        let leaves = Set(Self.handed(actions).values.flatMap { $0 }).sorted()
        _ = Sharded.receive(&m, Self.result(leaves[0], digest: 5), from: 1, at: 0.125)
        _ = Sharded.receive(&m, Self.result(leaves[0], digest: 6), from: 2, at: 0.125)
        guard case .gradientResult(let truth) = Self.result(leaves[0], digest: 9) else { return }
        let verdict = m.coordinatorComputed(truth, now: 0.25)
        let quarantined = verdict.compactMap { if case .log(.workerQuarantined(let id, _, _, _)) = $0 { return id } else { return nil } }
        #expect(quarantined.sorted() == [1, 2], "\(verdict)")
        #expect(m.liveWorkerIDs.isEmpty && Self.orders(verdict).isEmpty)
    }
}
