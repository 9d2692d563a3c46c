import FlowData
import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// `--verify-fraction` in the coordinator's state machine: checked leaves of the step's tree go
/// alone to two sources and are accepted only when their bits agree; a disagreement is settled by
/// the coordinator's own computation, and the worker that disagrees with it is quarantined, its
/// unverified results of the step redone. Same job as `CoordinatorStateMachineTests`: step 0
/// draws from all six shards, so with every leaf checked a step is six leaves (keys `T.leaf(k)`).
struct CoordinatorVerificationTests {
    typealias T = CoordinatorStateMachineTests
    typealias Action = CoordinatorStateMachine.Action

    static func machine(fraction: Double, minimumWorkers: Int) throws -> CoordinatorStateMachine {
        var job = try T.machine(minimumWorkers: minimumWorkers).job
        job.verifyFraction = fraction
        return CoordinatorStateMachine(job: job)
    }

    static func hello(_ m: inout CoordinatorStateMachine, _ n: UInt8, at now: Double = 0) -> [Action] {
        m.messageReceived(from: [n], bytes: T.helloMessage(n).encoded(), now: now)
    }

    static func send(_ m: inout CoordinatorStateMachine, _ n: UInt8, _ result: WireMessage.GradientResult, at now: Double = 0.1) -> [Action] {
        m.messageReceived(from: [n], bytes: WireMessage.gradientResult(result).encoded(), now: now)
    }

    static func applied(_ actions: [Action]) -> [WireMessage.GradientResult]? {
        for case .applyStep(_, let results) in actions { return results }
        return nil
    }

    static func computedHere(_ actions: [Action]) -> [Int] {
        actions.compactMap { if case .computeLocally(_, let g) = $0 { return g } else { return nil } }
    }

    /// The machine of `machine(fraction:minimumWorkers:)` at unit `unit`.
    static func machine(fraction: Double, unit: Int) throws -> CoordinatorStateMachine {
        var job = try T.machine(steps: unit + 1).job
        job.verifyFraction = fraction
        return CoordinatorStateMachine(job: job, startUnit: unit)
    }

    @Test func theCheckedShareFollowsTheFractionAndTheSeedAndOnlyLeavesAreChecked() throws {
        let leaves = (0..<T.shardCount).map(T.leaf)
        var checked = 0
        for unit in 0..<600 {
            let half = try Self.machine(fraction: 0.5, unit: unit), again = try Self.machine(fraction: 0.5, unit: unit)
            checked += leaves.filter { half.isChecked(item: $0) }.count
            #expect(leaves.allSatisfy { half.isChecked(item: $0) == again.isChecked(item: $0) })
        }
        #expect((1600...2000).contains(checked), "\(checked) of 3600 leaves checked at 0.5")
        let none = try Self.machine(fraction: 0, unit: 0), all = try Self.machine(fraction: 1, unit: 0)
        #expect(leaves.allSatisfy { !none.isChecked(item: $0) && all.isChecked(item: $0) })
        #expect(!all.isChecked(item: T.root()), "a node above the leaves is never checked")
    }

    /// Step 0's leaves, in tree order.
    static var leaves: [Int] { (0..<T.shardCount).map(T.leaf) }

    @Test func checkedMicroBatchesGoToTwoWorkersAndAgreeingBitsAreAccepted() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 2)
        _ = Self.hello(&m, 1)
        let start = Self.hello(&m, 2)
        let assigned = T.assigned(start)
        #expect(assigned[[1]]!.count + assigned[[2]]!.count == 12, "\(assigned)")
        #expect(Set(assigned[[1]]!).union(assigned[[2]]!) == Set(Self.leaves))
        #expect(Set(assigned[[1]]!).intersection(assigned[[2]]!).count == 6, "every leaf on both workers")
        #expect(Self.computedHere(start).isEmpty)
        // Nothing is given to the driver's running sum before the step is complete.
        for g in Self.leaves { #expect(Self.applied(Self.send(&m, 1, T.result(g, step: 0))) == nil) }
        #expect(m.acceptedResult(at: 0) == nil)
        var last: [Action] = []
        for g in Self.leaves { last = Self.send(&m, 2, T.result(g, step: 0)) }
        #expect(Self.applied(last)?.map(\.node) == Self.leaves.map { UInt64($0) })
        // A third copy, or one from a worker not asked, is dropped.
        #expect(m.droppedMessages == 0)
    }

    @Test func aDisagreementIsSettledHereAndTheWorkerThatLiedIsQuarantined() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 2)
        _ = Self.hello(&m, 1)
        _ = Self.hello(&m, 2)
        for g in Self.leaves { _ = Self.send(&m, 1, T.result(g, step: 0)) }
        // Worker 2 returns other bits for micro-batch 3: the coordinator computes it itself.
        var disagreement: [Action] = []
        for g in Self.leaves { disagreement += Self.send(&m, 2, T.result(g, step: 0, tag: g == T.leaf(3) ? 0.5 : 0)) }
        #expect(T.summary(disagreement).contains("disagree shard 3 of step 1 [1, 2]"), "\(T.summary(disagreement))")
        #expect(Self.computedHere(disagreement) == [T.leaf(3)])
        #expect(Self.applied(disagreement) == nil)
        // The coordinator's result agrees with worker 1: worker 2 is quarantined.
        let settled = m.coordinatorComputed(T.result(T.leaf(3), step: 0), now: 0.2)
        let lines = T.summary(settled)
        #expect(lines.contains("quarantined 2 w2 shard 3 of step 1 redone 0"), "\(lines)")
        #expect(lines.contains("goodbye [2]"), "\(lines)")
        #expect(m.liveWorkerIDs == [1])
        #expect(Self.applied(settled)?.map(\.lossSum) == Self.leaves.map { Double($0) }, "\(lines)")
        // It cannot come back under the same instance.
        let back = m.messageReceived(from: [9], bytes: T.helloMessage(2).encoded(), now: 0.3)
        #expect(T.summary(back).contains("goodbye [9]") && T.summary(back).contains("hello refused [9] #1"), "\(T.summary(back))")
        #expect(m.liveWorkerIDs == [1])
    }

    @Test func theOnlyWorkerIsCheckedByTheCoordinator() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 1)
        let start = Self.hello(&m, 1)
        #expect(Self.computedHere(start) == Self.leaves)
        for g in Self.leaves { _ = m.coordinatorComputed(T.result(g, step: 0), now: 0.05) }
        var last: [Action] = []
        for g in Self.leaves where g != T.leaf(5) { last = Self.send(&m, 1, T.result(g, step: 0)) }
        #expect(Self.applied(last) == nil)
        // Its wrong result for the last micro-batch: quarantined, and the step is complete with
        // the coordinator's result.
        last = Self.send(&m, 1, T.result(T.leaf(5), step: 0, tag: 1))
        #expect(T.summary(last).contains("quarantined 1 w1 shard 5 of step 1 redone 0"), "\(T.summary(last))")
        #expect(Self.applied(last)?.map(\.lossSum) == Self.leaves.map { Double($0) })
    }

    @Test func theUnverifiedResultsOfAQuarantinedWorkerAreRedone() throws {
        // A fraction that checks some micro-batches of step 0 and not others.
        var fraction = 0.3
        var probe = try Self.machine(fraction: fraction, minimumWorkers: 2)
        while !(Self.leaves.contains { probe.isChecked(item: $0) } && Self.leaves.contains { !probe.isChecked(item: $0) }) {
            fraction += 0.1
            probe = try Self.machine(fraction: fraction, minimumWorkers: 2)
        }
        var m = probe
        _ = Self.hello(&m, 1)
        let start = Self.hello(&m, 2)
        let assigned = T.assigned(start)
        let checked = Self.leaves.filter { m.isChecked(item: $0) }
        // Worker 2 answers everything it was given, wrongly for one checked micro-batch and
        // for every unchecked one (those are accepted for now: nobody can tell yet).
        let byTwo = assigned[[2]] ?? []
        let uncheckedByTwo = byTwo.filter { !m.isChecked(item: $0) }
        guard let lie = byTwo.first(where: { m.isChecked(item: $0) }) else {
            Issue.record("worker 2 got no checked micro-batch: \(assigned), checked \(checked)")
            return
        }
        for g in byTwo { _ = Self.send(&m, 2, T.result(g, step: 0, tag: m.isChecked(item: g) && g != lie ? 0 : 0.25)) }
        // Worker 1 answers correctly; the disagreement on `lie` asks the coordinator.
        var actions: [Action] = []
        for g in assigned[[1]] ?? [] { actions += Self.send(&m, 1, T.result(g, step: 0)) }
        #expect(Self.computedHere(actions).contains(lie), "\(T.summary(actions))")
        let settled = m.coordinatorComputed(T.result(lie, step: 0), now: 0.2)
        #expect(T.summary(settled).contains("quarantined 2 w2 shard \(TreeNode(key: UInt64(lie))!.index) of step 1 redone \(uncheckedByTwo.count)"), "\(T.summary(settled))")
        // Its unchecked micro-batches go to worker 1 again (checked ones left without a second
        // source are computed here).
        let redone = T.assigned(settled)[[1]] ?? []
        #expect(Set(uncheckedByTwo).isSubset(of: Set(redone)), "\(T.summary(settled))")
        var last = settled
        for g in redone { last = Self.send(&m, 1, T.result(g, step: 0)) }
        for g in Self.computedHere(settled) { last = m.coordinatorComputed(T.result(g, step: 0), now: 0.3) }
        let applied = Self.applied(last)
        #expect(applied?.map(\.lossSum) == applied?.map { Double($0.node) }, "only worker 1's and the coordinator's bits: \(T.summary(last))")
        #expect(applied.map { T.covered($0, step: 0) } == T.treeOrder(0))
    }

    /// The verifier of a checked leaf dies while the leaf's first worker is still computing it,
    /// and the new ownership gives the leaf's shard to a third worker: the first worker stays a
    /// source (its answer counts) and the new owner becomes the second — the step completes.
    @Test func aLeafStillComputedWhenItsVerifierDiesKeepsItsWorker() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 3)
        _ = Self.hello(&m, 1)
        _ = Self.hello(&m, 2)
        let start = Self.hello(&m, 3)
        // Shards 0..<2, 2..<4, 4..<6: the leaf of shard 2 is worker 2's, checked by worker 3.
        #expect(T.assigned(start)[[2]]?.contains(T.leaf(2)) == true && T.assigned(start)[[3]]?.contains(T.leaf(2)) == true,
                "\(T.summary(start))")
        // Nobody answers; worker 3 goes silent and is declared dead. Shard 2 is now worker 1's.
        for t in [0.5, 1.0] { for n: UInt8 in [1, 2] { _ = m.messageReceived(from: [n], bytes: WireMessage.heartbeat(.init(sequence: 1)).encoded(), now: t) } }
        let tick = m.tick(now: 1.3)
        #expect(T.summary(tick).contains { $0.hasPrefix("lost 3 w3") }, "\(T.summary(tick))")
        #expect(m.shardOwner[2] == 1)
        #expect(T.assigned(tick)[[2]]?.contains(T.leaf(2)) != true, "worker 2 is not asked again")
        // Everyone answers what it was given, before and after the death.
        var all: [Action] = []
        for n: UInt8 in [1, 2] {
            for g in (T.assigned(start)[[n]] ?? []) + (T.assigned(tick)[[n]] ?? []) { all += Self.send(&m, n, T.result(g, step: 0), at: 1.4) }
        }
        for g in Self.computedHere(tick) + Self.computedHere(all) { all += m.coordinatorComputed(T.result(g, step: 0), now: 1.5) }
        #expect(Self.applied(all)?.map(\.node) == Self.leaves.map { UInt64($0) }, "the step completes: \(T.summary(tick + all))")
    }

    @Test func aLostVerifierIsReplaced() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 3)
        _ = Self.hello(&m, 1)
        _ = Self.hello(&m, 2)
        let start = Self.hello(&m, 3)
        #expect(T.assigned(start).values.reduce(0) { $0 + $1.count } == 12, "six leaves, twice")
        // Workers 1 and 2 answer; worker 3 goes silent and is declared dead.
        for n: UInt8 in [1, 2] { for g in T.assigned(start)[[n]] ?? [] { _ = Self.send(&m, n, T.result(g, step: 0), at: 0.5) } }
        let tick = m.tick(now: 1.3)
        #expect(T.summary(tick).contains { $0.hasPrefix("lost 3 w3") }, "\(T.summary(tick))")
        var last = tick
        for n: UInt8 in [1, 2] { for g in T.assigned(tick)[[n]] ?? [] { last = Self.send(&m, n, T.result(g, step: 0), at: 1.4) } }
        for g in Self.computedHere(tick) { last = m.coordinatorComputed(T.result(g, step: 0), now: 1.4) }
        #expect(Self.applied(last)?.map(\.node) == Self.leaves.map { UInt64($0) }, "\(T.summary(tick))")
    }

    @Test func aVerifierThatLacksRowsGetsThemAgain() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 2)
        _ = Self.hello(&m, 1)
        let start = Self.hello(&m, 2)
        // Worker 2 answers its primaries but reports missing rows for one check copy.
        let byOne = T.assigned(start)[[1]]!, byTwo = T.assigned(start)[[2]]!
        let copy = try #require(byTwo.first { byOne.contains($0) })
        let report = WireMessage.error(.init(code: .missingRows, jobID: T.jobID, step: 0, item: UInt64(copy), message: "no rows"))
        let again = m.messageReceived(from: [2], bytes: report.encoded(), now: 0.1)
        #expect(T.assigned(again)[[2]] == [copy], "\(T.summary(again))")
        #expect(T.summary(again).contains { $0.hasPrefix("rows [2]") }, "\(T.summary(again))")
        var last: [Action] = []
        for g in byOne { last = Self.send(&m, 1, T.result(g, step: 0)) }
        for g in byTwo { last = Self.send(&m, 2, T.result(g, step: 0)) }
        #expect(Self.applied(last) != nil, "\(T.summary(last))")
    }

    /// With CURVE the driver passes each message's ZAP user id (the peer's key): a quarantined
    /// worker's key is revoked, and a hello over a connection with it is refused even from a new
    /// process (a new instance).
    @Test func aQuarantinedWorkersKeyIsRevoked() throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 2)
        func hello(_ n: UInt8, instance: UInt64, key: String, at now: Double) -> [Action] {
            let bytes = WireMessage.hello(.init(
                instance: instance, processID: 1, name: "w\(n)", host: "h",
                capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))).encoded()
            return m.messageReceived(from: [n], bytes: bytes, userID: key, now: now)
        }
        _ = hello(1, instance: 11, key: "key-one", at: 0)
        _ = hello(2, instance: 12, key: "key-two", at: 0)
        for g in Self.leaves { _ = Self.send(&m, 1, T.result(g, step: 0)) }
        for g in Self.leaves { _ = Self.send(&m, 2, T.result(g, step: 0, tag: g == 0 ? 1 : 0)) }
        let settled = m.coordinatorComputed(T.result(0, step: 0), now: 0.2)
        #expect(T.summary(settled).contains("revoke key-two"), "\(T.summary(settled))")
        #expect(m.quarantinedKeys == ["key-two"])
        let back = hello(7, instance: 99, key: "key-two", at: 0.3)
        #expect(T.summary(back).contains("goodbye [7]") && !T.summary(back).contains("welcome [7]"), "\(T.summary(back))")
        let other = hello(8, instance: 100, key: "key-three", at: 0.4)
        #expect(T.summary(other).contains("welcome [8]"), "\(T.summary(other))")
    }

    /// Three workers, one of which lies about some of its results, in every order of answers the
    /// seeds give: the step always completes, with the honest bits, and only the liar goes.
    @Test(arguments: 0..<20)
    func aStepWithALiarAmongThreeAlwaysCompletes(seed: Int) throws {
        var m = try Self.machine(fraction: 1, minimumWorkers: 3)
        var rng = SplitMix(seed: UInt64(seed))
        var inbox: [(UInt8, Int)] = []  // (worker, micro-batch) assigned and not yet answered
        var local: [Int] = []
        func take(_ actions: [Action]) {
            for (identity, list) in T.assigned(actions) { for g in list { inbox.append((identity[0], g)) } }
            local += Self.computedHere(actions)
        }
        take(Self.hello(&m, 1))
        take(Self.hello(&m, 2))
        take(Self.hello(&m, 3))
        var applied: [WireMessage.GradientResult]? = nil
        var quarantined: [String] = []
        var rounds = 0
        while applied == nil, rounds < 1000 {
            rounds += 1
            var actions: [Action]
            if !local.isEmpty, inbox.isEmpty || rng.next() % 3 == 0 {
                actions = m.coordinatorComputed(T.result(local.removeFirst(), step: 0), now: 0.2)
            } else if !inbox.isEmpty {
                let (n, g) = inbox.remove(at: Int(rng.next() % UInt64(inbox.count)))
                // Worker 2 lies about odd micro-batches.
                actions = Self.send(&m, n, T.result(g, step: 0, tag: n == 2 && g % 2 == 1 ? 0.5 : 0), at: 0.2)
            } else {
                break
            }
            quarantined += T.summary(actions).filter { $0.hasPrefix("quarantined") }
            take(actions)
            applied = Self.applied(actions)
        }
        #expect(applied?.map(\.lossSum) == Self.leaves.map { Double($0) }, "seed \(seed): stalled with \(inbox) waiting, \(local) to compute here")
        #expect(quarantined.allSatisfy { $0.hasPrefix("quarantined 2 ") } && quarantined.count <= 1, "\(quarantined)")
        #expect(!m.liveWorkerIDs.contains(2) || quarantined.isEmpty)
    }
}

/// A small seeded generator for the orders of answers.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
