import FlowData
import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// The coordinator's control plane of the sharded exchange (`sync=sharded`), without sockets:
/// rosters and epochs, the reduce order, the commit on agreeing `stepReady` reports, and what a
/// change of membership, a stalled reduce or the loss of every worker does. The job is
/// `CoordinatorStateMachineTests`'s (S = 6 shards, 8 micro-batches a step, heartbeats every
/// 0.25 s, liveness 4), with `sync=sharded`.
struct ShardedCoordinatorTests {
    typealias Action = CoordinatorStateMachine.Action
    typealias Base = CoordinatorStateMachineTests

    static let settings = WireMessage.JobSpec.LocalOptimizer(localSteps: 1)

    static func machine(steps: Int = 3, minimumWorkers: Int = 1) throws -> CoordinatorStateMachine {
        var spec = Base.spec()
        if case .training(var training) = spec.mode {
            training.sync = .sharded(settings)
            spec.mode = .training(training)
        }
        var machine = CoordinatorStateMachine(
            job: .init(
                spec: spec, plan: Base.plan(), steps: steps, checkpointEvery: nil, minimumWorkers: minimumWorkers,
                heartbeatInterval: Base.interval, heartbeatLiveness: Base.liveness, instance: 7))
        machine.heldStateVersion = 0
        return machine
    }

    static func hello(_ n: UInt8, peer: String = "tcp://127.0.0.1:7000") -> WireMessage {
        .hello(.init(
            instance: 10 + UInt64(n), processID: 1, name: "w\(n)", host: "h",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000), peerEndpoint: peer))
    }

    static func receive(_ m: inout CoordinatorStateMachine, _ message: WireMessage, from n: UInt8, at t: Double) -> [Action] {
        m.messageReceived(.message(message), from: [n], now: t)
    }

    /// The messages of kind `kind` sent in `actions`, with their receivers.
    static func sent(_ actions: [Action]) -> [(identity: [UInt8], message: WireMessage)] {
        actions.compactMap { if case .send(let identity, let message) = $0 { return (identity, message) } else { return nil } }
    }

    static func rosters(_ actions: [Action]) -> [WireMessage.Roster] {
        sent(actions).compactMap { if case .roster(let r) = $0.message { return r } else { return nil } }
    }

    static func assignments(_ actions: [Action]) -> [(UInt8, WireMessage.Assignment)] {
        sent(actions).compactMap { if case .assignment(let a) = $0.message { return ($0.identity[0], a) } else { return nil } }
    }

    /// The header a worker sends for node `node` of `step` (no gradient).
    static func header(_ node: UInt64, step: Int) -> WireMessage {
        let rows = UInt64(Base.microBatches(of: Int(node), step: step).count * Base.microBatchSize)
        return .gradientResult(.init(
            jobID: Base.jobID, step: UInt64(step), version: UInt64(step), node: node, rowCount: rows, lossSum: 1,
            gradient: .float32([])))
    }

    static func ready(step: Int, epoch: UInt64, loss: Double = 0.5) -> WireMessage {
        .stepReady(.init(jobID: Base.jobID, step: UInt64(step), epoch: epoch, rowCount: 80, meanLoss: loss, gradientNorm: 1))
    }

    /// Two workers joined and step 0 handed out; returns the machine and the actions.
    static func twoWorkers() throws -> (CoordinatorStateMachine, [Action]) {
        var m = try Self.machine(minimumWorkers: 2)
        var actions = receive(&m, hello(1), from: 1, at: 0)
        actions += receive(&m, hello(2), from: 2, at: 0)
        return (m, actions)
    }

    @Test func aWorkerWithoutAPeerEndpointIsRefusedAtItsHello() throws {
        var m = try Self.machine()
        let actions = Self.receive(&m, Self.hello(1, peer: ""), from: 1, at: 0)
        let replies = Self.sent(actions)
        #expect(replies.count == 1 && m.liveWorkerIDs.isEmpty)
        guard case .error(let report)? = replies.first?.message else {
            Issue.record("\(actions)")
            return
        }
        #expect(report.code == .noPeerEndpoint && report.message.contains("--peer-endpoint"))
    }

    @Test func eachStepSendsTheStateToWorkersWithoutItThenTheRosterThenTheWork() throws {
        var m = try Self.machine()
        let first = Self.receive(&m, Self.hello(1), from: 1, at: 0)
        // The first worker: the state (version 0), the roster, then its work (the root).
        let kinds = first.compactMap { action -> String? in
            switch action {
            case .sendState(_, let v): return "state v\(v)"
            case .send(_, .roster(let r)): return "roster e\(r.epoch) v\(r.version) \(r.workerIDs)"
            case .send(_, .assignment(let a)): return "assign \(a.items.count)"
            default: return nil
            }
        }
        #expect(kinds == ["state v0", "roster e1 v0 [1]", "assign 1"], "\(kinds)")
        let roster = try #require(Self.rosters(first).first)
        #expect(roster.endpoints == ["tcp://127.0.0.1:7000"] && roster.token != 0)
    }

    @Test func coveredStepsAreReducedAndCommittedOnAgreeingReports() throws {
        var m = try Self.machine()
        var actions = Self.receive(&m, Self.hello(1), from: 1, at: 0)
        let (_, assignment) = try #require(Self.assignments(actions).first)
        // The header without a gradient is accepted; the step is covered: every worker of the
        // roster gets the reduce order, with whose value counts.
        actions = Self.receive(&m, Self.header(assignment.items[0], step: 0), from: 1, at: 0.125)
        let orders = Self.sent(actions).compactMap { if case .reduce(let o) = $0.message { return o } else { return nil } }
        #expect(orders.count == 1 && orders[0].nodes == assignment.items && orders[0].sources == [1] && orders[0].epoch == 1)
        // A report of another epoch is dropped; the right one commits the step.
        #expect(Self.receive(&m, Self.ready(step: 0, epoch: 9), from: 1, at: 0.125).isEmpty)
        actions = Self.receive(&m, Self.ready(step: 0, epoch: 1), from: 1, at: 0.125)
        #expect(actions.contains { if case .stepReduced(0, 0.5, 1) = $0 { return true } else { return false } }, "\(actions)")
        // The next step: no state (the worker holds version 1 once it applies), a roster naming v1.
        let next = m.unitApplied(now: 0.25)
        #expect(!next.contains { if case .sendState = $0 { return true } else { return false } })
        #expect(Self.rosters(next).map(\.version) == [1] && Self.rosters(next).map(\.epoch) == [1])
    }

    @Test func workersThatDisagreeFailTheJob() throws {
        var (m, actions) = try Self.twoWorkers()
        actions = []
        // Both workers compute their nodes of step 0 (whatever the cover is).
        var t = 0.125
        for _ in 0..<4 {
            for (id, a) in Self.assignments(m.pendingAssignmentsForTests()) {
                for node in a.items { actions += Self.receive(&m, Self.header(node, step: 0), from: id, at: t) }
            }
            t += 0.125
        }
        #expect(m.isReducingForTests, "\(actions)")
        #expect(m.roster == [1, 2])
        #expect(Self.receive(&m, Self.ready(step: 0, epoch: m.epoch, loss: 0.5), from: 1, at: t).isEmpty)
        let failed = Self.receive(&m, Self.ready(step: 0, epoch: m.epoch, loss: 0.25), from: 2, at: t)
        #expect(failed.contains { if case .failed(let reason) = $0 { return reason.contains("different gradients") } else { return false } }, "\(failed)")
    }

    /// A worker that joins during a step is not in its roster: it gets no backups (it could not
    /// send their segments), and its loss does not restart the attempt.
    @Test func aWorkerThatJoinedDuringTheStepHasNoPartInIt() throws {
        var m = try Self.machine()
        var actions = Self.receive(&m, Self.hello(1), from: 1, at: 0)
        // Step 0 on worker 1 alone (it gives the backup rule a previous step's duration).
        let first = try #require(Self.assignments(actions).first?.1)
        _ = Self.receive(&m, Self.header(first.items[0], step: 0), from: 1, at: 0)
        _ = Self.receive(&m, Self.ready(step: 0, epoch: m.epoch), from: 1, at: 0)
        actions = m.unitApplied(now: 0)
        #expect(Self.rosters(actions).map(\.workerIDs) == [[1]])
        // Worker 2 joins during step 1; worker 1 is slow: no backup goes to worker 2, idle but
        // not in the roster.
        _ = Self.receive(&m, Self.hello(2), from: 2, at: 0)
        var t = 0.0
        actions = []
        while t < 0.75 {
            t += 0.125
            _ = m.messageReceived(.message(.heartbeat(.init(sequence: 1))), from: [1], now: t)
            _ = m.messageReceived(.message(.heartbeat(.init(sequence: 1))), from: [2], now: t)
            actions += m.tick(now: t)
        }
        #expect(!actions.contains { if case .log(.backup) = $0 { return true } else { return false } }, "\(actions)")
        // Worker 2 leaves: the attempt goes on as it was.
        let gone = Self.receive(&m, .goodbye(.init(reason: "bye")), from: 2, at: t)
        #expect(Self.rosters(gone).isEmpty && m.epoch == 1, "\(gone)")
    }

    /// Work handed out again during a step (here after an error report) goes to a worker of the
    /// roster, even where the shards moved to a worker that joined during the step: that worker
    /// could not send the node's segments, and the step would never complete.
    @Test func workHandedOutAgainDuringAStepStaysInTheRoster() throws {
        // Two workers: worker 2 owns shards 3..<6 and computes the node of shards 4 and 5.
        var (m, actions) = try Self.twoWorkers()
        let ofTwo = Self.assignments(actions).filter { $0.0 == 2 }.flatMap { $0.1.items }
        let node = try #require(ofTwo.first { TreeNode(key: $0)?.firstShard == 4 }, "\(ofTwo)")
        // Worker 3 joins: shards 4..<6 are now its own, but it is not in the step's roster.
        _ = Self.receive(&m, Self.hello(3), from: 3, at: 0.05)
        #expect(m.shards(of: 3) == [4, 5] && m.roster == [1, 2])
        actions = Self.receive(&m, .error(.init(
            code: .missingRows, jobID: Base.jobID, step: 0, item: node, message: "rows lost")), from: 2, at: 0.1)
        let handed = Self.assignments(actions)
        #expect(!handed.isEmpty && handed.allSatisfy { $0.0 != 3 }, "\(actions)")
    }

    @Test func aWorkerLostDuringTheReduceRestartsTheAttemptUnderANewEpoch() throws {
        var (m, _) = try Self.twoWorkers()
        var t = 0.125
        for (id, a) in Self.assignments(m.pendingAssignmentsForTests()) {
            for node in a.items { _ = Self.receive(&m, Self.header(node, step: 0), from: id, at: t) }
        }
        #expect(m.isReducingForTests)
        let epoch = m.epoch
        _ = Self.receive(&m, Self.ready(step: 0, epoch: epoch), from: 1, at: t)
        // Worker 2 goes silent; worker 1 keeps heartbeating.
        var restart: [Action] = []
        while t < 2, m.liveWorkerIDs.count == 2 {
            t += 0.125
            _ = m.messageReceived(.message(.heartbeat(.init(sequence: 1))), from: [1], now: t)
            restart += m.tick(now: t)
        }
        #expect(m.liveWorkerIDs == [1])
        let roster = try #require(Self.rosters(restart).last)
        #expect(roster.epoch == epoch + 1 && roster.workerIDs == [1] && roster.version == 0)
        // The whole step is covered again by worker 1, and its earlier report does not count.
        let covered = Self.assignments(restart).flatMap { $0.1.items }.flatMap { Base.microBatches(of: Int($0), step: 0) }.sorted()
        #expect(covered == Base.step(0), "\(restart)")
        #expect(!m.isReducingForTests)
    }

    @Test func aStalledReduceStartsTheAttemptOver() throws {
        var m = try Self.machine()
        let actions = Self.receive(&m, Self.hello(1), from: 1, at: 0)
        let (_, assignment) = try #require(Self.assignments(actions).first)
        _ = Self.receive(&m, Self.header(assignment.items[0], step: 0), from: 1, at: 0.125)
        #expect(m.isReducingForTests)
        // Within the deadline (liveness 1 s): nothing; after it: a new epoch, the work again.
        var t = 0.125
        var restarted: [Action] = []
        while t < 1.5 {
            t += 0.125
            _ = m.messageReceived(.message(.heartbeat(.init(sequence: 1))), from: [1], now: t)
            let tick = m.tick(now: t)
            if t <= 1.125 { #expect(Self.rosters(tick).isEmpty, "restarted at \(t)") }
            restarted += tick
        }
        #expect(restarted.contains { if case .log(.attemptRestarted(0, _)) = $0 { return true } else { return false } }, "\(restarted)")
        #expect(Self.rosters(restarted).first?.epoch == 2 && !Self.assignments(restarted).isEmpty)
    }

    /// A reduce that stalls again after every restart (a worker the others cannot reach) fails
    /// the job after three restarts, naming the workers that never reported — it does not spin.
    @Test func aReduceThatKeepsStallingFailsTheJobNamingWhoNeverReported() throws {
        var m = try Self.machine()
        var actions = Self.receive(&m, Self.hello(1), from: 1, at: 0)
        var t = 0.0
        var failure: String?
        while t < 30, failure == nil {
            // Worker 1 answers every assignment with its header, never with a stepReady.
            for (_, a) in Self.assignments(actions) {
                for node in a.items { actions += Self.receive(&m, Self.header(node, step: Int(a.step)), from: 1, at: t) }
            }
            t += 0.125
            _ = m.messageReceived(.message(.heartbeat(.init(sequence: 1))), from: [1], now: t)
            actions = m.tick(now: t)
            for case .failed(let reason) in actions { failure = reason }
        }
        let reason = try #require(failure, "the job never failed")
        #expect(reason.contains("stalled 4 times") && reason.contains("no stepReady from worker 1") && reason.contains("--peer-endpoint"), "\(reason)")
    }

    /// A result from a worker that was not handed the node in the current attempt — a late one
    /// of an earlier attempt, whose segments went to that attempt's owners — does not count.
    @Test func aResultFromAWorkerNotHandedTheNodeInThisAttemptIsDropped() throws {
        var m = try Self.machine(minimumWorkers: 3)
        for n: UInt8 in 1...3 { _ = Self.receive(&m, Self.hello(n), from: n, at: 0) }
        // Worker 3 leaves: a new attempt, the step covered again by workers 1 and 2.
        let restart = Self.receive(&m, .goodbye(.init(reason: "bye")), from: 3, at: 0.125)
        #expect(Self.rosters(restart).first.map { $0.epoch == 2 && $0.workerIDs == [1, 2] } == true)
        let ofTwo = try #require(Self.assignments(restart).first { $0.0 == 2 }?.1.items.first, "\(restart)")
        // Worker 1 answers for worker 2's node: dropped, and the node is still pending.
        let before = m.droppedMessages
        _ = Self.receive(&m, Self.header(ofTwo, step: 0), from: 1, at: 0.25)
        #expect(m.droppedMessages == before + 1)
        #expect(!m.isReducingForTests)
        // Worker 2's own answer counts.
        _ = Self.receive(&m, Self.header(ofTwo, step: 0), from: 2, at: 0.25)
        #expect(m.droppedMessages == before + 1)
    }

    @Test func losingEveryWorkerGoesBackToTheHeldCopy() throws {
        var m = try Self.machine(steps: 5)
        var t = 0.0
        _ = Self.receive(&m, Self.hello(1), from: 1, at: t)
        // Two steps done; the driver's copy is of step 0 (the start).
        for step in 0..<2 {
            let a = Self.assignments(m.pendingAssignmentsForTests()).first!.1
            _ = Self.receive(&m, Self.header(a.items[0], step: step), from: 1, at: t)
            _ = Self.receive(&m, Self.ready(step: step, epoch: m.epoch), from: 1, at: t)
            _ = m.unitApplied(now: t)
        }
        #expect(m.unit == 2)
        // The worker dies: nobody holds step 2's state; the run goes back to step 0 and waits.
        var actions: [Action] = []
        while m.liveWorkerIDs.count == 1, t < 5 {
            t += 0.125
            actions += m.tick(now: t)
        }
        #expect(m.unit == 0, "\(actions)")
        #expect(actions.contains { if case .log(.rolledBack(0, 2)) = $0 { return true } else { return false } }, "\(actions)")
        // A new worker is started from the copy: state v0, then a roster of a new epoch.
        let again = Self.receive(&m, Self.hello(3), from: 3, at: t)
        #expect(again.contains { if case .sendState(_, 0) = $0 { return true } else { return false } })
        #expect(Self.rosters(again).first.map { $0.version == 0 && $0.epoch > 1 } == true, "\(again)")
    }
}

extension CoordinatorStateMachine {
    /// The assignments the machine would hand out now (re-covering what is outstanding) — for the
    /// tests, which answer them.
    mutating func pendingAssignmentsForTests() -> [Action] {
        var byNode: [Action] = []
        for (g, id) in pending.sorted(by: { $0.key < $1.key }) {
            guard let peer = workers[id] else { continue }
            byNode.append(.send(identity: peer.identity, message: .assignment(.init(
                jobID: job.spec.jobID, step: UInt64(unit), version: UInt64(unit), items: [UInt64(g)]))))
        }
        return byNode
    }

    /// Whether the machine waits for the owners' folds.
    var isReducingForTests: Bool { phase == .reducing }
}
