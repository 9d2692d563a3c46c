import FlowData
import FlowWire
import Flows
import Foundation
import Testing
@testable import FlowCluster

/// The coordinator's decisions without sockets: every event in every phase.
///
/// The job, unless a test says otherwise: N = 120 rows of D = 2 in S = 6 shards of 20 rows,
/// micro-batches of m = 10 and batches of B = 80, so a step has M = B/m = 8 micro-batches, slot j
/// drawn from shard (⌊6j/8⌋ + s) mod 6: step 0 is g 0…7 (shards 0 0 1 2 3 3 4 5), step 1 is
/// g 8…15 (shards 1 1 2 3 4 4 5 0). Work goes out as nodes of the step's reduction tree (keys
/// `TreeNode.key`); with one worker, the root. Heartbeats every 0.25 s, liveness 4: a worker
/// silent for more than 1 s is dead. Worker n talks from ROUTER identity [n] and says hello with instance 10 + n and name
/// "wn". Times are binary fractions, so deadlines compare exactly.
///
/// Which shard a worker owns is the rebalancer's business; the tests check the rules (a partition
/// of the shards into contiguous ranges, even shares, every micro-batch covered once by a node
/// whose shards its worker owns, rows and parameters before the assignment that needs them), not
/// one layout.
struct CoordinatorStateMachineTests {
    typealias Action = CoordinatorStateMachine.Action
    typealias Machine = CoordinatorStateMachine

    static let jobID: UInt64 = 42
    static let rowCount = 120, shardCount = 6, microBatchSize = 10, batchSize = 80
    static let interval = 0.25, liveness = 4
    static let smallFlow = WireMessage.JobSpec.Architecture(dimension: 2, couplings: 2, hidden: 4, depth: 1)
    /// P of `smallFlow`: 2 couplings × ((1·4 + 4) + (4·2 + 2)).
    static let P = 36

    static func spec(
        dtype: WireDType = .float32, shardCount: Int = shardCount, architecture: WireMessage.JobSpec.Architecture = smallFlow
    ) -> WireMessage.JobSpec {
        WireMessage.JobSpec(
            jobID: jobID, dtype: dtype, architecture: architecture, standardization: nil,
            mode: .training(.init(
                seed: 1, rowCount: UInt64(rowCount), shardCount: UInt32(shardCount), microBatchSize: UInt32(microBatchSize),
                batchSize: UInt32(batchSize), sync: .gradients)))
    }

    static func machine(
        steps: Int = 3, minimumWorkers: Int = 1, checkpointEvery: Int? = nil, startUnit: Int = 0, shardCount: Int = shardCount,
        dtype: WireDType = .float32, architecture: WireMessage.JobSpec.Architecture = smallFlow
    ) throws -> Machine {
        let plan = try BatchPlan(
            seed: 1, rowCount: rowCount, microBatchSize: microBatchSize, batchSize: batchSize, shardCount: shardCount)
        return Machine(
            job: .init(
                spec: spec(dtype: dtype, shardCount: shardCount, architecture: architecture), plan: plan, steps: steps,
                checkpointEvery: checkpointEvery, minimumWorkers: minimumWorkers, heartbeatInterval: interval,
                heartbeatLiveness: liveness, instance: 7),
            startUnit: startUnit)
    }

    /// The global micro-batches of `step`, in plan order.
    static func step(_ s: Int) -> [Int] { Array((s * 8)..<((s + 1) * 8)) }

    /// The plan of `machine()` with `shardCount` shards.
    static func plan(shardCount: Int = shardCount) -> BatchPlan {
        try! BatchPlan(seed: 1, rowCount: rowCount, microBatchSize: microBatchSize, batchSize: batchSize, shardCount: shardCount)
    }

    /// The reduction tree of `step` of `plan(shardCount:)`.
    static func tree(_ step: Int, shardCount: Int = shardCount) -> ReductionTree {
        ReductionTree(plan: plan(shardCount: shardCount), step: step)
    }

    /// The key of the root of `step`'s tree: the whole step as one item (one worker owns every shard).
    static func root(_ step: Int = 0, shardCount: Int = shardCount) -> Int { Int(tree(step, shardCount: shardCount).root.key) }

    /// The global micro-batches under item (node key) `item` of `step`.
    static func microBatches(of item: Int, step: Int, shardCount: Int = shardCount) -> [Int] {
        guard item >= 0, let node = TreeNode(key: UInt64(item)) else { return [] }
        return tree(step, shardCount: shardCount).microBatches(under: node).map(\.globalIndex)
    }

    /// The results of the `applyStep` in `actions` (empty: none).
    static func appliedResults(_ actions: [Action]) -> [WireMessage.GradientResult] {
        for case .applyStep(_, let results) in actions { return results }
        return []
    }

    /// The micro-batches of `step` in tree order (by shard, then slot).
    static func treeOrder(_ step: Int) -> [Int] { tree(step).microBatches.map(\.globalIndex) }

    /// The micro-batches the nodes of `results` hold, in their order.
    static func covered(_ results: [WireMessage.GradientResult], step: Int) -> [Int] {
        results.flatMap { microBatches(of: Int($0.node), step: step) }
    }

    /// The key of the leaf of shard `shard` (a node of every step that draws from it).
    static func leaf(_ shard: Int) -> Int { Int(TreeNode(leaf: shard).key) }

    static func helloMessage(_ n: UInt8, instance: UInt64? = nil, dtypes: WireDTypeSet = .all) -> WireMessage {
        .hello(.init(
            instance: instance ?? 10 + UInt64(n), processID: 1, name: "w\(n)", host: "h",
            capabilities: .init(dtypes: dtypes, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000)))
    }

    /// A result for item (node key) `g` of `step` whose loss and gradient say which item (and
    /// which `tag`) it came from; `rows` defaults to the node's rows.
    static func result(
        _ g: Int, step: Int, version: Int? = nil, job: UInt64 = jobID, rows: UInt64? = nil, count: Int = P,
        dtype: WireDType = .float32, tag: Double = 0, shardCount: Int = shardCount
    ) -> WireMessage.GradientResult {
        let rows = rows ?? UInt64(microBatches(of: g, step: step, shardCount: shardCount).count * microBatchSize)
        let gradient: WireVector = dtype == .float32
            ? .float32(Array(repeating: Float(g), count: count)) : .float64(Array(repeating: Double(g), count: count))
        return .init(
            jobID: job, step: UInt64(step), version: UInt64(version ?? step), node: UInt64(g), rowCount: rows,
            lossSum: Double(g) + tag, gradient: gradient)
    }

    // MARK: Reading actions

    /// One line per action, the way a log would read: `assign [2] step 0 v0 [3, 4, 5]`.
    static func summary(_ actions: [Action]) -> [String] {
        actions.map { action -> String in
            switch action {
            case .send(let identity, let message):
                switch message {
                case .assignment(let a): return "assign \(identity) step \(a.step) v\(a.version) \(a.items)"
                case .heartbeat(let h): return "heartbeat \(identity) #\(h.sequence) step \(h.currentStep.map(String.init) ?? "-")"
                case .error(let e): return "error \(identity) \(e.code == .notRegistered ? "notRegistered" : "\(e.code)")"
                case .goodbye: return "goodbye \(identity)"
                default: return "\(message.kind) \(identity)"
                }
            case .sendShard(let identity, let shard): return "rows \(identity) \(shard)"
            case .sendParameters(let identity, let version): return "parameters \(identity) v\(version)"
            case .sendState(let identity, let version): return "state \(identity) v\(version)"
            case .stepReduced(let step, _, _): return "reduced step \(step)"
            case .applyStep(let step, let results): return "apply step \(step) \(results.map(\.node))"
            case .averageRound(let round, let results): return "average round \(round) \(results.map(\.rowCount))"
            case .checkpoint(let steps): return "checkpoint \(steps)"
            case .computeLocally(let step, let g): return "compute here step \(step) g\(g)"
            case .revokeKey(let key): return "revoke \(key)"
            case .finished: return "finished"
            case .failed(let reason): return "failed \(reason)"
            case .log(let event):
                switch event {
                case .workerJoined(let id, let name, let shards): return "joined \(id) \(name) \(shards) shards"
                case .workerLost(let id, let name, let reassigned): return "lost \(id) \(name) \(reassigned) reassigned"
                case .workerLeft(let id, let name): return "left \(id) \(name)"
                case .backup(let microBatches, let slow, let to): return "backup \(microBatches) of \(slow) to \(to)"
                case .workerDemoted(let id, let name, let slowSteps, let until): return "demoted \(id) \(name) after \(slowSteps) until \(until)"
                case .invalidMessage(let peer, _): return "invalid \(peer)"
                case .ignored(let peer, _): return "ignored \(peer)"
                case .helloRefused(let peer, _, let total): return "hello refused \(peer) #\(total)"
                case .resultsDisagree(let item, let ids): return "disagree \(item) \(ids)"
                case .workerQuarantined(let id, let name, let item, let redone): return "quarantined \(id) \(name) \(item) redone \(redone)"
                case .rolledBack(let step, let from): return "rolled back to \(step) from \(from)"
                case .attemptRestarted(let step, _): return "attempt of \(step) restarted"
                }
            }
        }
    }

    /// The items assigned in `actions`, per identity.
    static func assigned(_ actions: [Action]) -> [[UInt8]: [Int]] {
        var result: [[UInt8]: [Int]] = [:]
        for case .send(let identity, .assignment(let a)) in actions { result[identity, default: []] += a.items.map { Int($0) } }
        return result
    }

    static func isHandOut(_ action: Action) -> Bool {
        switch action {
        case .sendShard, .sendParameters, .send(_, .assignment): return true
        default: return false
        }
    }

    /// Checks one hand-out of work against the rules: nodes that cover every micro-batch of
    /// `expected` exactly once, each to the owner of all its shards (as ownership stands after the
    /// event); before its assignment
    /// a worker gets the rows it lacks and, unless it holds version `step`, the parameters; it is
    /// sent no rows it holds or does not need, and nobody but a live worker is sent anything.
    /// Logs and heartbeats are skipped.
    static func checkHandOut(
        _ actions: [Action], before: Machine, after: Machine, step: Int, expected: [Int],
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        let plan = after.job.plan
        var liveID: [[UInt8]: UInt32] = [:]
        for peer in after.workers.values { liveID[peer.identity] = peer.id }
        var rowsSent: [UInt32: [Int]] = [:]
        var parametersSent: Set<UInt32> = []
        var needed: [UInt32: Set<Int>] = [:]
        var all: [Int] = []
        for action in actions {
            switch action {
            case .log, .send(_, .heartbeat):
                continue
            case .sendShard(let identity, let shard):
                guard let id = liveID[identity] else {
                    Issue.record("rows of shard \(shard) sent to \(identity), not a live worker", sourceLocation: sourceLocation)
                    continue
                }
                #expect(before.workers[id]?.rowsHeld.contains(shard) != true,
                        "worker \(id) already holds shard \(shard)", sourceLocation: sourceLocation)
                #expect(rowsSent[id]?.contains(shard) != true, "shard \(shard) sent twice to worker \(id)", sourceLocation: sourceLocation)
                rowsSent[id, default: []].append(shard)
            case .sendParameters(let identity, let version):
                guard let id = liveID[identity] else {
                    Issue.record("parameters sent to \(identity), not a live worker", sourceLocation: sourceLocation)
                    continue
                }
                #expect(version == UInt64(step), "parameters v\(version) for step \(step)", sourceLocation: sourceLocation)
                #expect(before.workers[id]?.version != UInt64(step), "worker \(id) already holds v\(step)", sourceLocation: sourceLocation)
                parametersSent.insert(id)
            case .send(let identity, .assignment(let a)):
                guard let id = liveID[identity] else {
                    Issue.record("assignment \(a.items) sent to \(identity), not a live worker", sourceLocation: sourceLocation)
                    continue
                }
                #expect(a.jobID == jobID && a.step == UInt64(step) && a.version == UInt64(step),
                        "assignment job \(a.jobID) step \(a.step) v\(a.version), expected step and version \(step)",
                        sourceLocation: sourceLocation)
                let gs = a.items.map { Int($0) }
                #expect(gs == gs.sorted(), "assignment not in tree order: \(gs)", sourceLocation: sourceLocation)
                let tree = ReductionTree(plan: plan, step: step)
                for g in gs where after.job.localSteps != nil {
                    // sync=parameters: the items are micro-batches.
                    let shard = plan.microBatch(globalIndex: g).shard
                    #expect(after.shardOwner[shard] == id, "micro-batch \(g) (shard \(shard)) went to worker \(id)", sourceLocation: sourceLocation)
                    needed[id, default: []].insert(shard)
                    all.append(g)
                }
                for g in gs where after.job.localSteps == nil {
                    let node = TreeNode(key: UInt64(g))!
                    for shard in tree.shards(under: node) {
                        #expect(after.shardOwner[shard] == id,
                                "\(node) went to worker \(id); the owner of shard \(shard) is \(String(describing: after.shardOwner[shard]))",
                                sourceLocation: sourceLocation)
                        needed[id, default: []].insert(shard)
                    }
                    all += tree.microBatches(under: node).map(\.globalIndex)
                }
                let held = (before.workers[id]?.rowsHeld ?? []).union(rowsSent[id] ?? [])
                #expect(needed[id, default: []].isSubset(of: held),
                        "worker \(id) assigned \(gs) before the rows of shards \(needed[id, default: []].subtracting(held).sorted())",
                        sourceLocation: sourceLocation)
                #expect(before.workers[id]?.version == UInt64(step) || parametersSent.contains(id),
                        "worker \(id) assigned \(gs) before the parameters of v\(step)", sourceLocation: sourceLocation)
            default:
                Issue.record("unexpected action in a hand-out: \(summary([action]))", sourceLocation: sourceLocation)
            }
        }
        for (id, shards) in rowsSent {
            #expect(Set(shards).isSubset(of: needed[id] ?? []),
                    "worker \(id) was sent rows of shards \(Set(shards).subtracting(needed[id] ?? []).sorted()) it was given no work on",
                    sourceLocation: sourceLocation)
        }
        #expect(all.sorted() == expected.sorted(), "handed out \(all.sorted()), expected \(expected.sorted())", sourceLocation: sourceLocation)
    }

    /// Ownership is a partition of the shards over the live workers (when there are any), and
    /// each worker's `shards` agrees with `shardOwner`.
    static func checkOwnership(_ m: Machine, sourceLocation: SourceLocation = #_sourceLocation) {
        let S = m.job.plan.shardCount
        for peer in m.workers.values {
            #expect(m.shards(of: peer.id) == Set((0..<S).filter { m.shardOwner[$0] == peer.id }),
                    "worker \(peer.id) owns \(m.shards(of: peer.id).sorted()), shardOwner disagrees", sourceLocation: sourceLocation)
        }
        guard !m.workers.isEmpty else { return }
        for shard in 0..<S {
            #expect(m.shardOwner[shard].map { m.workers[$0] != nil } == true,
                    "shard \(shard) has no live owner", sourceLocation: sourceLocation)
        }
    }

    static func shareCounts(_ m: Machine) -> [Int] { m.liveWorkerIDs.map { m.shards(of: $0).count } }

    /// Nobody owns more than its share, ⌈S/n⌉ (the bound the rebalancer holds today; that the
    /// smallest share is ⌊S/n⌋ is `sharesStayEvenWhateverTheNumberOfWorkers`).
    static func checkShareBound(_ m: Machine, _ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let counts = shareCounts(m)
        guard !counts.isEmpty else { return }
        let S = m.job.plan.shardCount
        #expect(counts.max()! <= (S + counts.count - 1) / counts.count, "\(context): shares \(counts)", sourceLocation: sourceLocation)
    }

    // MARK: Joining

    @Test func aWorkerIsWelcomedGivenTheJobRowsParametersAndWork() throws {
        var m = try Self.machine()
        let actions = m.hello(1, at: 0)
        // One worker owns every shard: the whole step is one item, the root (shards 0..<8).
        #expect(Self.summary(actions) == [
            "welcome [1]", "jobSpec [1]", "joined 1 w1 6 shards",
            "rows [1] 0", "rows [1] 1", "rows [1] 2", "rows [1] 3", "rows [1] 4", "rows [1] 5",
            "parameters [1] v0", "assign [1] step 0 v0 [\(Self.root())]",
        ])
        #expect(Self.root() == 3, "the root of 6 shards is level 3, first shard 0")
        #expect(actions.first == .send(identity: [1], message: .welcome(.init(
            workerID: 1, workerInstance: 11, coordinatorInstance: 7, heartbeatIntervalMilliseconds: 250, heartbeatLiveness: 4))))
        #expect(actions.dropFirst().first == .send(identity: [1], message: .jobSpec(Self.spec())))
        #expect(m.liveWorkerIDs == [1])
        #expect(m.workers[1]?.rowsHeld == Set(0..<6) && m.workers[1]?.version == 0)
    }

    @Test(arguments: 1...4)
    func everyMicroBatchOfTheStepIsCoveredOnceByANodeOfItsShardsOwner(workers n: Int) throws {
        var m = try Self.machine(minimumWorkers: n)
        for k in 1..<n {
            let actions = m.hello(UInt8(k), at: 0)
            #expect(Self.summary(actions) == ["welcome [\(k)]", "jobSpec [\(k)]", "joined \(k) w\(k) \(m.shards(of: UInt32(k)).count) shards"],
                    "below minimumWorkers nothing is handed out")
        }
        let before = m
        let actions = m.hello(UInt8(n), at: 0)
        #expect(Self.summary(Array(actions.prefix(3))) == ["welcome [\(n)]", "jobSpec [\(n)]", "joined \(n) w\(n) \(m.shards(of: UInt32(n)).count) shards"])
        Self.checkHandOut(Array(actions.dropFirst(3)), before: before, after: m, step: 0, expected: Self.step(0))
        Self.checkOwnership(m)
        #expect(m.liveWorkerIDs == (1...n).map { UInt32($0) })
    }

    @Test func twoWorkersGetOneWholeSubtreeEachWhenTheShardsSplitOnANodeBoundary() throws {
        // S = 8, M = 8: step s draws shard j + s mod 8 for slot j, so each half of the shards is
        // a node of the tree holding four micro-batches: one partial per worker and step.
        var m = try Self.machine(minimumWorkers: 2, shardCount: 8)
        _ = m.hello(1, at: 0)
        let actions = m.hello(2, at: 0)
        let half = { (first: Int) in Int(TreeNode(level: 2, index: first / 4).key) }
        #expect(Self.assigned(actions) == [[1]: [half(0)], [2]: [half(4)]])
        #expect(m.shards(of: 1) == Set(0..<4) && m.shards(of: 2) == Set(4..<8))
    }

    @Test func minimumWorkersHoldsTheFirstStepBack() throws {
        var m = try Self.machine(minimumWorkers: 2)
        #expect(Self.summary(m.hello(1, at: 0)) == ["welcome [1]", "jobSpec [1]", "joined 1 w1 6 shards"])
        // Waiting: time passes, the worker is heartbeated, nothing is handed out.
        #expect(Self.summary(m.tick(now: 0.25)) == ["heartbeat [1] #1 step 0"])
        // Waiting: a result nobody asked for is dropped.
        #expect(m.result(1, Self.result(Self.root(), step: 0), at: 0.25).isEmpty)
        #expect(m.droppedMessages == 1)
        let before = m
        let actions = m.hello(2, at: 0.5)
        #expect(Self.summary(Array(actions.prefix(3))) == ["welcome [2]", "jobSpec [2]", "joined 2 w2 3 shards"])
        Self.checkHandOut(Array(actions.dropFirst(3)), before: before, after: m, step: 0, expected: Self.step(0))
        #expect(Set(Self.assigned(actions).keys) == [[1], [2]], "both workers get work")
    }

    @Test func aWorkerLeavingBeforeTheFirstStepIsForgotten() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        #expect(Self.summary(m.receive(1, .goodbye(.init(reason: "bye")), at: 0.25)) == ["left 1 w1"])
        #expect(m.liveWorkerIDs.isEmpty)
        _ = m.hello(2, at: 0.5)
        let before = m
        let actions = m.hello(3, at: 0.5)
        Self.checkHandOut(Array(actions.dropFirst(3)), before: before, after: m, step: 0, expected: Self.step(0))
        Self.checkOwnership(m)
    }

    @Test func aWorkerJoiningMidStepGetsAShareButNoWorkUntilTheNextStep() throws {
        var m = try Self.machine()
        let first = m.hello(1, at: 0)
        #expect(Self.assigned(first) == [[1]: [Self.root()]])
        for n: UInt8 in [2, 3] {
            let actions = m.hello(n, at: 0.125)
            let id = UInt32(n)
            #expect(Self.summary(actions) == ["welcome [\(n)]", "jobSpec [\(n)]", "joined \(n) w\(n) \(m.shards(of: id).count) shards"],
                    "a mid-step joiner gets no rows or work yet")
            Self.checkOwnership(m)
            #expect(m.shards(of: id).count >= 1, "worker \(n) got no share of \(Self.shardCount) shards")
        }
        // Worker 1 still owes all of step 0; the step completes with its result.
        let last = m.result(1, Self.result(Self.root(), step: 0), at: 0.25)
        #expect(Self.summary(last) == ["apply step 0 [\(Self.root())]"])
        // Step 1 follows the new ownership, with rows to the newcomers.
        let before = m
        let next = m.unitApplied(now: 0.25)
        Self.checkHandOut(next, before: before, after: m, step: 1, expected: Self.step(1))
    }

    @Test func ownershipIsContiguousRangesInIDOrder() throws {
        var m = try Self.machine(shardCount: 64)
        for n in 1...8 {
            _ = m.hello(UInt8(n), at: 0)
            Self.checkOwnership(m)
            Self.checkShareBound(m, "join \(n)")
            for (i, id) in m.liveWorkerIDs.enumerated() {
                let W = m.liveWorkerIDs.count
                #expect(m.shards(of: id) == Set((i * 64 / W)..<((i + 1) * 64 / W)), "join \(n): worker \(id) owns \(m.shards(of: id).sorted())")
            }
        }
        for n: UInt8 in [3, 8, 1, 5, 2, 7, 4] {
            _ = m.receive(n, .goodbye(.init(reason: "bye")), at: 0.125)
            Self.checkOwnership(m)
            Self.checkShareBound(m, "after \(n) left")
            for (i, id) in m.liveWorkerIDs.enumerated() {
                let W = m.liveWorkerIDs.count
                #expect(m.shards(of: id) == Set((i * 64 / W)..<((i + 1) * 64 / W)), "after \(n) left: worker \(id) owns \(m.shards(of: id).sorted())")
            }
        }
        #expect(m.liveWorkerIDs == [6] && m.shards(of: 6).count == 64)
    }

    @Test func sharesStayEvenWhateverTheNumberOfWorkers() throws {
        // Shares may differ by one shard at most.
        var uneven: [String] = []
        for S in [4, 6, 64] {
            var m = try Self.machine(shardCount: S)
            for n in 1...min(S, 8) {
                _ = m.hello(UInt8(n), at: 0)
                let counts = Self.shareCounts(m)
                if counts.max()! - counts.min()! > 1 { uneven.append("S=\(S) n=\(n): \(counts)") }
            }
            for n in 1..<min(S, 8) {
                _ = m.receive(UInt8(n), .goodbye(.init(reason: "bye")), at: 0)
                let counts = Self.shareCounts(m)
                if counts.max()! - counts.min()! > 1 { uneven.append("S=\(S) after \(n) left: \(counts)") }
            }
        }
        #expect(uneven.isEmpty, "uneven shares: \(uneven)")
    }

    @Test func membershipDecisionsAreDeterministicAcrossProcesses() async throws {
        // Set and Dictionary orders change with each process's hash seed: replay the same events
        // in a child process and require the same actions.
        let expected = try Self.churnScript()
        await #expect(processExitsWith: .success) { [expected = expected as [String]] in
            let actual = try CoordinatorStateMachineTests.churnScript()
            if actual != expected { exit(1) }
        }
        #expect(try Self.churnScript() == expected)
    }

    /// A run of joins, a death, a goodbye and a re-hello over two steps; the action log as text.
    static func churnScript() throws -> [String] {
        var m = try machine(minimumWorkers: 2, shardCount: 64)
        var log: [String] = []
        log += summary(m.hello(1, at: 0))
        log += summary(m.hello(2, at: 0))
        log += summary(m.hello(3, at: 0.125))
        log += summary(m.hello(4, at: 0.125))
        for t in [0.5, 1.0] { for n: UInt8 in [1, 2, 4] { log += summary(m.heartbeat(n, at: t)) } }
        log += summary(m.tick(now: 1.25))  // worker 3 silent since 0.125: dead
        log += summary(m.receive(4, .goodbye(.init(reason: "bye")), at: 1.25))
        log += summary(m.hello(2, instance: 99, at: 1.25))
        log += ["owners \((0..<64).map { m.shardOwner[$0].map(String.init) ?? "-" })"]
        return log
    }

    // MARK: Hello variants

    @Test(arguments: [(WireDType.float32, WireDTypeSet.float64), (.float64, .float32)])
    func aHelloWithoutTheJobsDTypeIsRefused(job: WireDType, worker: WireDTypeSet) throws {
        var m = try Self.machine(dtype: job)
        let actions = m.receive(1, Self.helloMessage(1, dtypes: worker), at: 0)
        #expect(Self.summary(actions) == ["error [1] unsupportedDType"])
        #expect(m.liveWorkerIDs.isEmpty)
        // It is not registered: its heartbeats are answered notRegistered.
        #expect(Self.summary(m.heartbeat(1, at: 0.25)) == ["error [1] notRegistered"])
    }

    @Test func aHelloInAnUnsupportedProtocolVersionIsRefused() throws {
        var m = try Self.machine()
        // A worker of version 1 sends its hello in a version-1 header, versions 1...1.
        var bytes = Self.helloMessage(1).encoded()
        bytes[4] = 1; bytes[5] = 0  // header version
        bytes[8] = 1; bytes[9] = 0  // hello.minimumVersion
        bytes[10] = 1; bytes[11] = 0  // hello.maximumVersion
        let actions = m.messageReceived(from: [1], bytes: bytes, now: 0)
        #expect(m.liveWorkerIDs.isEmpty)
        // Counted as invalid (the header is not ours) and answered, so the worker can say why it cannot join.
        #expect(Self.summary(actions) == ["invalid [1]", "error [1] unsupportedVersion"])
        // The answer is an `error` in the version-1 header, which that worker can read.
        let reply = actions.compactMap { action -> [UInt8]? in
            if case .send(_, let message) = action { return message.encoded() } else { return nil }
        }
        #expect(reply.first.map { $0[4] == 1 && $0[5] == 0 } == true)
        // A version-6 header whose hello claims versions 7...8 is inconsistent: invalid, counted.
        var inconsistent = Self.helloMessage(2).encoded()
        inconsistent[8] = 7; inconsistent[10] = 8
        #expect(Self.summary(m.messageReceived(from: [2], bytes: inconsistent, now: 0)) == ["invalid [2]"])
        #expect(m.invalidMessages[[2]] == 1)
    }

    /// Step 0's items with workers 1 and 2 (shards 0..<3 and 3..<6): worker 1 the nodes over
    /// shards 0..<2 and 2, worker 2 those over 3 and 4..<8 — in tree order.
    static let twoWorkerItems = [1, 128, 192, 258]

    @Test func aSecondHelloOnTheSameIdentityReRegistersTheWorkerFromScratch() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = m.hello(2, at: 0)
        #expect(Self.assigned(handOut) == [[1]: [1, 128], [2]: [192, 258]])
        #expect(m.result(1, Self.result(1, step: 0), at: 0.125).isEmpty)
        // Worker 1 restarted behind the same identity (new instance): it holds nothing.
        let before = m
        let actions = m.hello(1, instance: 21, at: 0.25)
        // The old registration is logged as lost (`remove(_:now:lost:)` honours `lost`), with the
        // item it still had, which goes to the owner of its shard under the new ownership.
        #expect(actions.contains(.send(identity: [1], message: .welcome(.init(
            workerID: 3, workerInstance: 21, coordinatorInstance: 7, heartbeatIntervalMilliseconds: 250, heartbeatLiveness: 4)))))
        #expect(Self.summary(Array(actions.prefix(1))) == ["lost 1 w1 1 reassigned"])
        let handOutAgain = actions.filter { Self.isHandOut($0) }
        Self.checkHandOut(handOutAgain, before: before, after: m, step: 0, expected: Self.microBatches(of: 128, step: 0))
        #expect(m.liveWorkerIDs == [2, 3])
        Self.checkOwnership(m)
        // The result it sent before counts; the rest complete the step.
        var last: [Action] = []
        for (identity, items) in Self.assigned(handOutAgain) {
            for g in items { last = m.result(identity[0], Self.result(g, step: 0, tag: 0.5), at: 0.375) }
        }
        for g in [192, 258] { last = m.result(2, Self.result(g, step: 0), at: 0.375) }
        guard case .applyStep(0, let results) = last.first else { Issue.record("\(Self.summary(last))"); return }
        #expect(results == [Self.result(1, step: 0), Self.result(128, step: 0, tag: 0.5), Self.result(192, step: 0), Self.result(258, step: 0)])
    }

    // MARK: Results

    enum Order: String, CaseIterable, Sendable { case ascending, descending, interleaved }

    @Test(arguments: Order.allCases)
    func theStepCompletesOnlyWhenEveryResultIsInAndListsThemInTreeOrder(order: Order) throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = m.hello(2, at: 0)
        let owner = Self.assigned(handOut).flatMap { identity, gs in gs.map { ($0, identity) } }
        let byG = Dictionary(uniqueKeysWithValues: owner)
        let all = Self.twoWorkerItems
        #expect(Set(byG.keys) == Set(all))
        let gs: [Int]
        switch order {
        case .ascending: gs = all
        case .descending: gs = all.reversed()
        case .interleaved: gs = [all[2], all[0], all[3], all[1]]
        }
        for (i, g) in gs.enumerated() {
            let actions = m.messageReceived(from: byG[g]!, bytes: WireMessage.gradientResult(Self.result(g, step: 0)).encoded(), now: 0.125)
            if i < gs.count - 1 {
                #expect(actions.isEmpty, "after \(i + 1) of 4 results: \(Self.summary(actions))")
            } else {
                #expect(actions == [.applyStep(step: 0, results: all.map { Self.result($0, step: 0) })])
            }
        }
        #expect(m.droppedMessages == 0 && m.invalidMessages.isEmpty)
    }

    @Test func theDriverCanFoldAcceptedNodesInTreeOrderBeforeTheStepCompletes() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        _ = m.hello(2, at: 0)
        // Tree order over step 0's micro-batches: positions 0..<3 under node 1 (shards 0, 0, 1),
        // 3 under 128 (shard 2), 4..<6 under 192 (shard 3), 6..<8 under 258 (shards 4, 5).
        _ = m.result(2, Self.result(192, step: 0), at: 0.125)
        #expect(m.acceptedResult(at: 0) == nil, "the prefix is not in")
        #expect(m.acceptedResult(at: 4)?.microBatches == 2, "a later node is there for the asking")
        _ = m.result(1, Self.result(1, step: 0), at: 0.125)
        #expect(m.acceptedResult(at: 0)?.microBatches == 3)
        #expect(m.acceptedResult(at: 1) == nil, "a position inside a node is not a start")
        #expect(m.acceptedResult(at: 3) == nil, "shard 2 is not in yet")
        _ = m.result(1, Self.result(128, step: 0), at: 0.125)
        #expect(m.acceptedResult(at: 3)?.result == Self.result(128, step: 0))
        #expect(m.acceptedResult(at: 4)?.microBatches == 2)
    }

    @Test func aDuplicateResultIsDroppedAndCounted() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let root = Self.root()
        #expect(m.result(1, Self.result(root, step: 0), at: 0.125) == [.applyStep(step: 0, results: [Self.result(root, step: 0)])])
        #expect(m.result(1, Self.result(root, step: 0, tag: 0.5), at: 0.125).isEmpty)
        #expect(m.droppedMessages == 1)
        #expect(m.invalidMessages.isEmpty)
        // With two workers, a second copy of an accepted node is dropped too.
        var two = try Self.machine(minimumWorkers: 2)
        _ = two.hello(1, at: 0)
        _ = two.hello(2, at: 0)
        #expect(two.result(1, Self.result(1, step: 0), at: 0.125).isEmpty)
        #expect(two.result(1, Self.result(1, step: 0, tag: 0.5), at: 0.125).isEmpty)
        #expect(two.droppedMessages == 1)
        var last: [Action] = []
        for (n, g) in [(1, 128), (2, 192), (2, 258)] as [(UInt8, Int)] { last = two.result(n, Self.result(g, step: 0), at: 0.25) }
        #expect(last == [.applyStep(step: 0, results: Self.twoWorkerItems.map { Self.result($0, step: 0) })], "the first result counts")
    }

    @Test func lateAndUnaskedResultsAreDropped() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let last = m.result(1, Self.result(Self.root(), step: 0), at: 0.125)
        #expect(Self.summary(last) == ["apply step 0 [3]"])
        // Applying: nothing more is taken for the step.
        #expect(m.result(1, Self.result(Self.root(), step: 0), at: 0.125).isEmpty)
        #expect(m.droppedMessages == 1)
        _ = m.unitApplied(now: 0.25)
        let late: [(String, WireMessage.GradientResult)] = [
            ("previous step", Self.result(Self.root(0), step: 0)),
            ("previous version", Self.result(Self.root(1), step: 1, version: 0)),
            ("future version", Self.result(Self.root(1), step: 1, version: 2)),
            ("not handed out in this step", Self.result(1, step: 1)),
            ("a node above the root", Self.result(7, step: 1)),
            ("not a node (misaligned)", Self.result(65, step: 1, rows: 10)),
            ("future step", Self.result(Self.root(2), step: 2)),
        ]
        for (i, (what, result)) in late.enumerated() {
            #expect(m.result(1, result, at: 0.375).isEmpty, "\(what)")
            #expect(m.droppedMessages == 2 + i, "\(what)")
        }
        #expect(m.invalidMessages.isEmpty)
        #expect(m.result(1, Self.result(Self.root(1), step: 1), at: 0.5) == [.applyStep(step: 1, results: [Self.result(Self.root(1), step: 1)])])
    }

    @Test func aResultForAnotherJobIsDropped() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        #expect(Self.summary(m.result(1, Self.result(Self.root(), step: 0, job: 43), at: 0.125)) == ["ignored [1]"])
        #expect(m.droppedMessages == 1 && m.invalidMessages.isEmpty)
    }

    enum Malformation: String, CaseIterable, Sendable { case rowCount, gradientLength, dtype }

    @Test(arguments: Malformation.allCases)
    func aMalformedResultIsCountedInvalidAndTheNodeStaysOpen(_ malformation: Malformation) throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        func bad() -> WireMessage.GradientResult {
            switch malformation {
            // The root holds 8 micro-batches of 10 rows: one micro-batch's rows is not its value.
            case .rowCount: return Self.result(Self.root(), step: 0, rows: 10)
            case .gradientLength: return Self.result(Self.root(), step: 0, count: Self.P - 1)
            case .dtype: return Self.result(Self.root(), step: 0, dtype: .float64)
            }
        }
        #expect(Self.summary(m.result(1, bad(), at: 0.125)) == ["invalid [1]"])
        #expect(m.result(1, bad(), at: 0.125).isEmpty, "logged once per peer")
        #expect(m.invalidMessages[[1]] == 2)
        let last = m.result(1, Self.result(Self.root(), step: 0), at: 0.25)
        #expect(last == [.applyStep(step: 0, results: [Self.result(Self.root(), step: 0)])])
    }

    @Test func aResultFromAnUnregisteredPeerIsAnsweredNotRegistered() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let actions = m.result(9, Self.result(Self.root(), step: 0), at: 0.125)
        #expect(Self.summary(actions) == ["error [9] notRegistered"])
        #expect(m.droppedMessages == 1)
        // It did not count: the step still needs the root.
        #expect(Self.summary(m.result(1, Self.result(Self.root(), step: 0), at: 0.25)) == ["apply step 0 [3]"])
    }

    @Test func aWorkersErrorReportAboutAPendingNodeIsRetriedWithRowsAndParametersResent() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        _ = m.hello(2, at: 0)
        for (n, g) in [(1, 1), (1, 128), (2, 192)] as [(UInt8, Int)] { _ = m.result(n, Self.result(g, step: 0), at: 0.125) }
        // Worker 2 could not compute the node over shards 4..<8 (missing rows, lost parameters, …).
        let report = WireMessage.error(.init(code: .missingParameters, jobID: Self.jobID, step: 0, item: 258, message: "no parameters"))
        let actions = Self.summary(m.receive(2, report, at: 0.25)).filter { !$0.hasPrefix("ignored") }
        #expect(actions == ["rows [2] 4", "rows [2] 5", "parameters [2] v0", "assign [2] step 0 v0 [258]"], "\(actions)")
        #expect(Self.summary(m.result(2, Self.result(258, step: 0), at: 0.3)) == ["apply step 0 [1, 128, 192, 258]"])
    }

    @Test func aNonFiniteNodeFailsTheJobLikeSingleProcessTraining() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let report = WireMessage.error(.init(code: .nonFinite, jobID: Self.jobID, step: 0, item: UInt64(Self.root()), message: "NaN"))
        let actions = m.receive(1, report, at: 0.25)
        #expect(actions.contains { if case .failed = $0 { return true }; return false }, "\(Self.summary(actions))")
        #expect(actions.contains { if case .failed(let reason) = $0 { return reason.contains("shards 0..<8 of step 1") }; return false })
        #expect(m.isFinished)
    }

    @Test func anErrorReportAboutWorkItDoesNotHoldIsOnlyLogged() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let report = WireMessage.error(.init(code: .computeFailed, jobID: Self.jobID, step: 5, item: 3, message: "stale"))
        let actions = Self.summary(m.receive(1, report, at: 0.25))
        #expect(actions.allSatisfy { $0.hasPrefix("ignored") }, "\(actions)")
        #expect(m.droppedMessages == 1)
    }

    // MARK: Invalid and unknown messages

    static let garbage: [[UInt8]] = {
        let hello = helloMessage(1).encoded()
        var badMagic = hello; badMagic[0] = 0x58
        var unknownKind = hello; unknownKind[6] = 0x7F
        var flags = hello; flags[7] = 1
        return [[], [0x54, 0x52], badMagic, unknownKind, flags, Array(hello.dropLast()), hello + [0]]
    }()

    static let coordinatorOnly: [WireMessage] = [
        .welcome(.init(workerID: 1, workerInstance: 1, coordinatorInstance: 1, heartbeatIntervalMilliseconds: 1, heartbeatLiveness: 1)),
        .jobSpec(spec()),
        .shardRows(.init(jobID: jobID, shard: 0, firstPosition: 0, rowCount: 1, dimension: 2, values: .float32([0, 0]))),
        .parameters(.init(jobID: jobID, version: 0, values: .float32([0]))),
        .assignment(.init(jobID: jobID, step: 0, version: 0, items: [0])),
        .scoreChunk(.init(jobID: jobID, chunk: 0, firstRow: 0, rowCount: 1, dimension: 2, values: .float32([0, 0]))),
        .scoreResult(.init(jobID: jobID, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.ok], logProbs: .float64([0]), latent: nil)),
        .localResult(.init(jobID: jobID, round: 0, baseVersion: 0, rowCount: 1, lossSum: 0, parameters: .float32([0]))),
    ]

    @Test func garbageAndCoordinatorOnlyKindsAreCountedAndLoggedOncePerPeer() throws {
        for message in Self.coordinatorOnly {
            #expect(throws: Never.self, "\(message.kind) must be a valid message") { try message.validate() }
        }
        var m = try Self.machine()
        let handOut = m.hello(1, at: 0)
        let inputs = Self.garbage + Self.coordinatorOnly.map { $0.encoded() }
        for peer: UInt8 in [1, 9] {
            for (i, bytes) in inputs.enumerated() {
                let actions = m.messageReceived(from: [peer], bytes: bytes, now: 0.125)
                #expect(Self.summary(actions) == (i == 0 ? ["invalid [\(peer)]"] : []), "input \(i) from [\(peer)]")
            }
            #expect(m.invalidMessages[[peer]] == inputs.count)
        }
        #expect(m.droppedMessages == 0)
        #expect(m.liveWorkerIDs == [1])
        // Nothing changed: worker 1 still owes step 0 and completes it.
        #expect(Self.assigned(handOut) == [[1]: [Self.root()]])
        let last = m.result(1, Self.result(Self.root(), step: 0), at: 0.25)
        #expect(Self.summary(last) == ["apply step 0 [3]"])
    }

    @Test func heartbeatsAndErrorReportsFromUnregisteredPeersAreAnsweredNotRegistered() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        let expected = Action.send(identity: [9], message: .error(.init(code: .notRegistered, message: "not registered: send hello")))
        #expect(m.heartbeat(9, at: 0.125) == [expected])
        #expect(m.receive(9, .error(.init(code: .computeFailed, message: "x")), at: 0.125) == [expected])
        #expect(m.droppedMessages == 2)
        // From a registered worker: a heartbeat is taken silently, an error report logged and dropped.
        #expect(m.heartbeat(1, at: 0.125).isEmpty)
        #expect(Self.summary(m.receive(1, .error(.init(code: .computeFailed, message: "x")), at: 0.125)) == ["ignored [1]"])
        #expect(m.droppedMessages == 3)
        // A goodbye from a stranger is ignored.
        #expect(m.receive(9, .goodbye(.init(reason: "")), at: 0.125).isEmpty)
        #expect(m.liveWorkerIDs == [1] && m.invalidMessages.isEmpty)
    }

    // MARK: Time

    @Test func heartbeatsGoToWorkersQuietForOneInterval() throws {
        var m = try Self.machine()
        #expect(m.tick(now: 0).isEmpty, "no workers, nothing to do")
        _ = m.hello(1, at: 0)  // sends to worker 1 at t = 0
        #expect(m.tick(now: 0.125).isEmpty)
        #expect(Self.summary(m.tick(now: 0.25)) == ["heartbeat [1] #1 step 0"])
        #expect(m.tick(now: 0.375).isEmpty)
        _ = m.hello(2, at: 0.375)  // sends to worker 2 at 0.375
        _ = m.heartbeat(1, at: 0.375)  // hearing from a worker does not postpone heartbeats to it
        #expect(Self.summary(m.tick(now: 0.5)) == ["heartbeat [1] #2 step 0"])
        #expect(Self.summary(m.tick(now: 0.625)) == ["heartbeat [2] #3 step 0"])
        #expect(Self.summary(m.tick(now: 0.75)) == ["heartbeat [1] #4 step 0"])
    }

    @Test func aWorkerSilentForLivenessIntervalsIsDead() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        _ = m.tick(now: 0.5)
        #expect(!m.tick(now: 1.0).contains { if case .log(.workerLost) = $0 { return true }; return false }, "exactly 4 intervals: still alive")
        #expect(m.liveWorkerIDs == [1])
        // Any message is a sign of life: a heartbeat, or a result.
        _ = m.heartbeat(1, at: 1.0)
        _ = m.tick(now: 2.0)
        _ = m.result(1, Self.result(0, step: 0), at: 2.0)
        _ = m.tick(now: 3.0)
        #expect(m.liveWorkerIDs == [1])
        let actions = m.tick(now: 3.125)
        #expect(Self.summary(actions).first?.hasPrefix("lost 1 w1") == true, "\(Self.summary(actions))")
        #expect(m.liveWorkerIDs.isEmpty)
        // Its identity is forgotten.
        #expect(Self.summary(m.heartbeat(1, at: 3.25)) == ["error [1] notRegistered"])
    }

    @Test func aDeadWorkersMicroBatchesGoToTheOthersWithRowsAndParametersFirst() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)        // worker 1 owes all of step 0
        _ = m.hello(2, at: 0.125)    // worker 2 joins mid-step: some shards, no rows, no parameters
        _ = m.hello(3, at: 0.125)
        for t in [0.5, 1.0] { _ = m.heartbeat(2, at: t); _ = m.heartbeat(3, at: t) }
        let before = m
        let actions = m.tick(now: 1.125)
        #expect(Self.summary(actions).first == "lost 1 w1 1 reassigned")
        #expect(m.liveWorkerIDs == [2, 3])
        Self.checkOwnership(m)
        Self.checkHandOut(actions, before: before, after: m, step: 0, expected: Self.step(0))
        #expect(Self.assigned(actions) == [[2]: [1, 128], [3]: [192, 258]], "the root is split along the new ownership")
        // The survivors complete the step.
        let last = m.answer(actions, step: 0, at: 1.25)
        #expect(Self.summary(last) == ["apply step 0 [1, 128, 192, 258]"])
    }

    @Test func onlyTheDeadWorkersUnfinishedMicroBatchesAreReassigned() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = m.hello(2, at: 0)
        let owed = Self.assigned(handOut)[[2]]!
        // Worker 2 returns its first micro-batch and falls silent.
        _ = m.result(2, Self.result(owed[0], step: 0), at: 0.125)
        for t in [0.5, 1.0] { _ = m.heartbeat(1, at: t) }
        let before = m
        let actions = m.tick(now: 1.25)
        #expect(m.liveWorkerIDs == [1])
        #expect(Self.summary(actions).first == "lost 2 w2 \(owed.count - 1) reassigned")
        Self.checkHandOut(actions, before: before, after: m, step: 0, expected: owed.dropFirst().flatMap { Self.microBatches(of: $0, step: 0) })
        // Whatever was resent, the step completes with the first result of each node.
        var last: [Action] = []
        for g in Self.assigned(actions)[[1]] ?? [] { last = m.result(1, Self.result(g, step: 0, tag: 0.5), at: 1.375) }
        for g in Self.assigned(handOut)[[1]]! { last = m.result(1, Self.result(g, step: 0), at: 1.375) }
        guard case .applyStep(0, let results) = last.first else { Issue.record("\(Self.summary(last))"); return }
        #expect(results.flatMap { Self.microBatches(of: Int($0.node), step: 0) } == Self.step(0).sorted {
            (Self.plan().microBatch(globalIndex: $0).shard, $0) < (Self.plan().microBatch(globalIndex: $1).shard, $1)
        }, "the nodes cover the step in tree order")
        #expect(results.first { $0.node == UInt64(owed[0]) } == Self.result(owed[0], step: 0))
    }

    @Test func twoWorkersDyingInOneTickAreSentNothing() throws {
        var m = try Self.machine(minimumWorkers: 3)
        _ = m.hello(1, at: 0)
        _ = m.hello(2, at: 0)
        let handOut = m.hello(3, at: 0)
        for t in [0.5, 1.0] { _ = m.heartbeat(3, at: t) }
        let before = m
        let actions = m.tick(now: 1.125)
        #expect(m.liveWorkerIDs == [3])
        let owed = ((Self.assigned(handOut)[[1]] ?? []) + (Self.assigned(handOut)[[2]] ?? [])).flatMap { Self.microBatches(of: $0, step: 0) }
        #expect(Set(Self.assigned(actions).keys) == [[3]], "the survivor gets all the dead workers' work")
        Self.checkHandOut(actions, before: before, after: m, step: 0, expected: owed)
    }

    @Test func whenEveryWorkerIsLostTheStepWaitsAndANewWorkerGetsWhatIsOutstanding() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        _ = m.hello(2, at: 0)
        _ = m.result(1, Self.result(1, step: 0), at: 0.25)
        let death = m.tick(now: 1.5)
        #expect(Self.summary(death).count == 2 && Self.summary(death)[0].hasPrefix("lost 1 w1"), "\(Self.summary(death))")
        #expect(m.liveWorkerIDs.isEmpty && !m.isFinished)
        #expect(m.tick(now: 1.75).isEmpty)
        // Waiting: the dead worker's late result is refused.
        #expect(Self.summary(m.result(1, Self.result(128, step: 0), at: 1.75)) == ["error [1] notRegistered"])
        let before = m
        let actions = m.hello(5, at: 2)
        #expect(Self.summary(Array(actions.prefix(3))) == ["welcome [5]", "jobSpec [5]", "joined 3 w5 6 shards"])
        // Everything but the accepted node over shards 0..<2: the largest nodes that avoid it.
        Self.checkHandOut(Array(actions.dropFirst(3)), before: before, after: m, step: 0, expected: Array(Self.treeOrder(0).dropFirst(3)))
        #expect(Self.assigned(actions) == [[5]: [129, 258]], "the root is split around the accepted node: 2..<4 and 4..<8")
        let last = m.answer(actions, step: 0, at: 2.25, tag: 0.5)
        #expect(last == [.applyStep(step: 0, results: [Self.result(1, step: 0), Self.result(129, step: 0, tag: 0.5), Self.result(258, step: 0, tag: 0.5)])])
    }

    @Test func aGoodbyeHandsTheWorkersMicroBatchesToTheOthers() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = m.hello(2, at: 0)
        let before = m
        let actions = m.receive(2, .goodbye(.init(reason: "shutting down")), at: 0.125)
        #expect(Self.summary(actions).first == "left 2 w2")
        #expect(m.liveWorkerIDs == [1])
        Self.checkOwnership(m)
        Self.checkHandOut(actions, before: before, after: m, step: 0, expected: Self.assigned(handOut)[[2]]!.flatMap { Self.microBatches(of: $0, step: 0) })
        _ = m.answer(handOut.filter { if case .send([1], _) = $0 { return true }; return false }, step: 0, at: 0.25)
        let last = m.answer(actions, step: 0, at: 0.25)
        #expect(Self.covered(Self.appliedResults(last), step: 0) == Self.treeOrder(0))
    }

    @Test func aWorkerLostWhileTheStepIsAppliedLeavesTheNextStepToTheOthers() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = m.hello(2, at: 0)
        for (identity, gs) in Self.assigned(handOut) { for g in gs { _ = m.result(identity[0], Self.result(g, step: 0), at: 0.25) } }
        _ = m.heartbeat(1, at: 1.0)
        let death = m.tick(now: 1.5)
        #expect(Self.summary(death).first?.hasPrefix("lost 2 w2") == true && Self.summary(death).dropFirst() == ["heartbeat [1] #1 step 0"],
                "nothing is reassigned while the step is applied: \(Self.summary(death))")
        #expect(Self.summary(death).first == "lost 2 w2 0 reassigned")
        let before = m
        let next = m.unitApplied(now: 1.5)
        #expect(m.liveWorkerIDs == [1])
        Self.checkOwnership(m)
        Self.checkHandOut(next, before: before, after: m, step: 1, expected: Self.step(1))
        #expect(Set(Self.assigned(next).keys) == [[1]])
    }

    @Test func aWorkerJoiningWhileTheStepIsAppliedGetsWorkInTheNextStep() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        _ = m.result(1, Self.result(Self.root(), step: 0), at: 0.125)
        let join = m.hello(2, at: 0.25)
        #expect(Self.summary(join) == ["welcome [2]", "jobSpec [2]", "joined 2 w2 \(m.shards(of: 2).count) shards"])
        let before = m
        let next = m.unitApplied(now: 0.375)
        Self.checkHandOut(next, before: before, after: m, step: 1, expected: Self.step(1))
        #expect(Set(Self.assigned(next).keys) == [[1], [2]], "step 1 visits every shard: both workers have work")
    }

    // MARK: Steps

    @Test func stepAppliedHandsOutTheNextStepWithNewParameters() throws {
        var m = try Self.machine(minimumWorkers: 3)
        var handOut: [Action] = []
        for n: UInt8 in 1...3 { handOut = m.hello(n, at: 0) }
        #expect(!Self.appliedResults(m.answer(handOut, step: 0, at: 0.125)).isEmpty)
        let before = m
        let actions = m.unitApplied(now: 0.25)
        Self.checkHandOut(actions, before: before, after: m, step: 1, expected: Self.step(1))
        let parameters = actions.compactMap { if case .sendParameters(let identity, let v) = $0 { return "\(identity) v\(v)" }; return nil }
        #expect(parameters.count == Self.assigned(actions).count, "every worker with work gets version 1: \(parameters)")
        #expect(Self.summary(m.tick(now: 0.5)).allSatisfy { $0.hasSuffix("step 1") })
    }

    @Test(arguments: [(nil, []), (1, [1, 2, 3, 4, 5]), (2, [2, 4, 5]), (5, [5]), (7, [5])] as [(Int?, [Int])])
    func checkpointsComeEveryNStepsAndAtTheEnd(every: Int?, expected: [Int]) throws {
        var m = try Self.machine(steps: 5, checkpointEvery: every)
        var actions = m.hello(1, at: 0)
        var checkpoints: [Int] = []
        var applied: [Int] = []
        var t = 0.0
        while !m.isFinished {
            let owed = Self.assigned(actions)[[1]] ?? []
            #expect(!owed.isEmpty, "no work after step \(m.unit)")
            if owed.isEmpty { break }
            actions = []
            for g in owed { actions += m.result(1, Self.result(g, step: m.unit), at: t) }
            guard case .applyStep(let s, let results) = actions.last else { Issue.record("\(Self.summary(actions))"); return }
            applied.append(s)
            #expect(results.map(\.node) == [UInt64(Self.root(s))])
            t += 0.125
            actions = m.unitApplied(now: t)
            for case .checkpoint(let steps) in actions { checkpoints.append(steps) }
        }
        #expect(applied == [0, 1, 2, 3, 4])
        #expect(checkpoints == expected)
    }

    @Test func theLastStepEndsWithCheckpointGoodbyesAndFinished() throws {
        var m = try Self.machine(steps: 1, minimumWorkers: 2, checkpointEvery: 10)
        _ = m.hello(1, at: 0)
        #expect(!Self.appliedResults(m.answer(m.hello(2, at: 0), step: 0, at: 0.125)).isEmpty)
        let actions = m.unitApplied(now: 0.25)
        #expect(Self.summary(actions) == ["checkpoint 1", "goodbye [1]", "goodbye [2]", "finished"])
        #expect(m.isFinished && m.unit == 1)
        // Finished: a late result is dropped, a newcomer is told goodbye.
        #expect(m.result(1, Self.result(0, step: 0), at: 0.375).isEmpty)
        #expect(Self.summary(m.hello(3, at: 0.375)) == ["welcome [3]", "jobSpec [3]", "goodbye [3]"])
    }

    @Test func aResumedMachineStartsAtItsStep() throws {
        var m = try Self.machine(steps: 3, startUnit: 2)
        #expect(m.unit == 2 && !m.isFinished)
        let actions = m.hello(1, at: 0)
        #expect(Self.summary(Array(actions.suffix(2))) == ["parameters [1] v2", "assign [1] step 2 v2 [3]"])
        #expect(Self.summary(m.tick(now: 0.25)) == ["heartbeat [1] #1 step 2"])
        let last = m.result(1, Self.result(Self.root(2), step: 2), at: 0.25)
        #expect(Self.summary(last) == ["apply step 2 [3]"])
        #expect(Self.summary(m.unitApplied(now: 0.375)) == ["goodbye [1]", "finished"])

        var done = try Self.machine(steps: 3, startUnit: 3)
        #expect(done.isFinished)
        #expect(Self.summary(done.hello(1, at: 0)) == ["welcome [1]", "jobSpec [1]", "goodbye [1]"])
    }

    @Test func afterTheFirstStepWorkGoesOnWithFewerThanMinimumWorkers() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOutOne = m.hello(2, at: 0).filter { if case .send([1], .assignment) = $0 { return true }; return false }
        let goodbye = m.receive(2, .goodbye(.init(reason: "bye")), at: 0.125)
        _ = m.answer(handOutOne, step: 0, at: 0.25)
        #expect(!Self.appliedResults(m.answer(goodbye, step: 0, at: 0.25)).isEmpty)
        let before = m
        let next = m.unitApplied(now: 0.375)
        Self.checkHandOut(next, before: before, after: m, step: 1, expected: Self.step(1))
    }

    @Test func aRunWithJoinsDeathsAndGoodbyesAppliesEveryStepOnceInOrder() throws {
        // A simulated cluster: every 0.125 s each answering worker returns its oldest item
        // (or heartbeats), then the coordinator ticks. Worker 2 hangs at the start of step 1,
        // worker 3 joins once it is declared dead, worker 4 joins during step 2, worker 1 leaves
        // during step 3.
        var m = try Self.machine(steps: 4, minimumWorkers: 2)
        var owed: [UInt8: [(step: Int, item: Int)]] = [:]  // the workers that answer, and what they owe
        func take(_ actions: [Action]) {
            for case .send(let identity, .assignment(let a)) in actions where owed[identity[0]] != nil {
                owed[identity[0]]! += a.items.map { (Int(a.step), Int($0)) }
            }
        }
        func join(_ n: UInt8, at t: Double) { owed[n] = []; take(m.hello(n, at: t)) }
        var done: Set<String> = []
        var applied: [Int] = []
        var t = 0.0
        join(1, at: t)
        join(2, at: t)
        while !m.isFinished && t < 30 {
            t += 0.125
            if m.unit == 1, done.insert("hang 2").inserted { owed[2] = nil }
            if done.contains("hang 2"), m.workers[2] == nil, done.insert("join 3").inserted { join(3, at: t) }
            if m.unit == 2, done.insert("join 4").inserted { join(4, at: t) }
            if m.unit == 3, done.insert("leave 1").inserted { owed[1] = nil; take(m.receive(1, .goodbye(.init(reason: "bye")), at: t)) }
            for n in owed.keys.sorted() {
                guard let (step, g) = owed[n]?.first else { _ = m.heartbeat(n, at: t); continue }
                owed[n]!.removeFirst()
                for case .applyStep(let s, let results) in m.result(n, Self.result(g, step: step), at: t) {
                    applied.append(s)
                    #expect(Self.covered(results, step: s) == Self.treeOrder(s))
                    take(m.unitApplied(now: t))
                }
            }
            take(m.tick(now: t))
        }
        #expect(m.isFinished, "stuck at step \(m.unit) at t = \(t)")
        #expect(applied == [0, 1, 2, 3])
        #expect(done == ["hang 2", "join 3", "join 4", "leave 1"])
        // The only duplicates are results of items also sent to a backup worker.
        #expect(m.droppedMessages <= m.backupsSent && m.invalidMessages.isEmpty, "\(m.droppedMessages) dropped, \(m.backupsSent) backups")
    }

    @Test(arguments: [(2, 2, 4, 1), (2, 8, 64, 2), (3, 1, 5, 2), (5, 4, 8, 3), (7, 2, 1, 1)])
    func parameterCountMatchesTheFlowsLayout(dimension: Int, couplings: Int, hidden: Int, depth: Int) throws {
        let m = try Self.machine(architecture: .init(
            dimension: UInt32(dimension), couplings: UInt32(couplings), hidden: UInt32(hidden), depth: UInt32(depth)))
        let configuration = FlowConfiguration(dimension: dimension, couplings: couplings, hidden: hidden, depth: depth)
        #expect(m.parameterCount == configuration.parameterCount)
        #expect(m.parameterCount == ParameterLayout(configuration).count)
    }
}

private extension CoordinatorStateMachine {
    /// Answers every item assigned in `actions` (to the identity it was sent to) with
    /// `CoordinatorStateMachineTests.result`; returns the actions of the answers.
    mutating func answer(_ actions: [Action], step: Int, at now: Double, tag: Double = 0) -> [Action] {
        var out: [Action] = []
        for case .send(let identity, .assignment(let a)) in actions {
            for g in a.items { out += result(identity[0], CoordinatorStateMachineTests.result(Int(g), step: step, tag: tag), at: now) }
        }
        return out
    }

    mutating func receive(_ n: UInt8, _ message: WireMessage, at now: Double) -> [Action] {
        messageReceived(from: [n], bytes: message.encoded(), now: now)
    }

    mutating func hello(_ n: UInt8, instance: UInt64? = nil, at now: Double) -> [Action] {
        receive(n, CoordinatorStateMachineTests.helloMessage(n, instance: instance), at: now)
    }

    mutating func heartbeat(_ n: UInt8, at now: Double) -> [Action] {
        receive(n, .heartbeat(.init(sequence: 1)), at: now)
    }

    mutating func result(_ n: UInt8, _ result: WireMessage.GradientResult, at now: Double) -> [Action] {
        receive(n, .gradientResult(result), at: now)
    }
}

extension CoordinatorStateMachineTests {
    @Test func acceptedResultsAreCountedPerWorkerAndDuplicatesAreNot() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        _ = m.answer(m.hello(2, at: 0), step: 0, at: 0.1)
        _ = m.result(1, Self.result(1, step: 0), at: 0.2)  // a duplicate
        #expect(m.acceptedResults == [1: 2, 2: 2])
    }
}

/// Backups: a live but slow worker's outstanding items also go to an idle worker.
extension CoordinatorStateMachineTests {
    /// Two workers; worker 1 returns all of step 0 at t = 0.125, worker 2 nothing (it heartbeats).
    static func slowSecondWorker() throws -> (Machine, mine: [Int], slow: [Int]) {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        let handOut = Self.assigned(m.hello(2, at: 0))
        let mine = handOut[[1]] ?? [], slow = handOut[[2]] ?? []
        for g in mine { _ = m.result(1, Self.result(g, step: 0), at: 0.125) }
        return (m, mine, slow)
    }

    @Test func aSlowWorkersMicroBatchesAreBackedUpOnceAfterTwiceTheShareAndAnInterval() throws {
        var (m, mine, slow) = try Self.slowSecondWorker()
        #expect(!mine.isEmpty && !slow.isEmpty)
        // Share 0.125 s: the threshold is max(0.25, 0.25) = 0.25 s after the hand-out.
        _ = m.heartbeat(2, at: 0.25)
        #expect(!Self.summary(m.tick(now: 0.25)).contains { $0.hasPrefix("backup") })
        let before = m
        let actions = m.tick(now: 0.375)
        let summary = Self.summary(actions)
        #expect(summary.contains("backup \(slow) of [2] to 1"), "\(summary)")
        // Rows worker 1 lacks come before the assignment; it already holds version 0.
        let rows = Set(slow.flatMap { Self.tree(0).shards(under: TreeNode(key: UInt64($0))!) }).subtracting(before.workers[1]!.rowsHeld)
        #expect(Set(actions.compactMap { if case .sendShard([1], let shard) = $0 { return shard } else { return nil } }) == rows)
        #expect(!summary.contains { $0.hasPrefix("parameters") })
        #expect(Self.assigned(actions) == [[1]: slow])
        #expect(m.backupsSent == slow.count)
        // Ownership does not move.
        #expect(m.shardOwner == before.shardOwner)
        // Nothing is backed up twice.
        _ = m.heartbeat(2, at: 0.5)
        #expect(Self.assigned(m.tick(now: 0.5)).isEmpty)
        // The backup's results complete the step; the slow worker's copies are late.
        var last: [Action] = []
        for g in slow { last = m.result(1, Self.result(g, step: 0), at: 0.625) }
        #expect(Self.summary(last) == ["apply step 0 [1, 128, 192, 258]"])
        let dropped = m.droppedMessages
        _ = m.unitApplied(now: 0.75)
        _ = m.result(2, Self.result(slow[0], step: 0), at: 0.75)
        #expect(m.droppedMessages == dropped + 1)
    }

    @Test func whicheverCopyComesFirstCounts() throws {
        var (m, _, slow) = try Self.slowSecondWorker()
        _ = m.heartbeat(2, at: 0.375)
        _ = m.tick(now: 0.375)
        // The slow worker answers first after all; the backup's copies are then duplicates.
        var last: [Action] = []
        for g in slow { last = m.result(2, Self.result(g, step: 0), at: 0.5) }
        #expect(Self.summary(last) == ["apply step 0 [1, 128, 192, 258]"])
        #expect(m.acceptedResults[2] == slow.count)
    }

    @Test func noBackupWithoutAnIdleWorkerOrATimeToCompareWith() throws {
        // Both workers busy: nothing to back up with.
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        _ = m.hello(2, at: 0)
        for t in [0.25, 0.5, 0.75] {
            _ = m.heartbeat(1, at: t)
            _ = m.heartbeat(2, at: t)
            #expect(!Self.summary(m.tick(now: t)).contains { $0.hasPrefix("backup") })
        }
        // A worker that joined mid-step has no share of this step, and there is no previous step.
        var n = try Self.machine()
        _ = n.hello(1, at: 0)
        _ = n.hello(2, at: 0.125)
        for t in [0.25, 0.5, 0.75] {
            _ = n.heartbeat(1, at: t)
            _ = n.heartbeat(2, at: t)
            #expect(!Self.summary(n.tick(now: t)).contains { $0.hasPrefix("backup") })
        }
        #expect(n.backupsSent == 0)
    }

    @Test func afterAStepTheIdleNewcomerBacksUpWhenTheStepRunsTwiceAsLongAsThePreviousOne() throws {
        var m = try Self.machine()
        _ = m.hello(1, at: 0)
        // Step 0 takes 0.5 s.
        let last = m.result(1, Self.result(Self.root(), step: 0), at: 0.5)
        #expect(Self.summary(last) == ["apply step 0 [3]"])
        _ = m.unitApplied(now: 0.5)
        // Worker 2 joins during step 1 and gets no item of it.
        _ = m.hello(2, at: 0.625)
        for t in [0.75, 1.0, 1.375] {
            _ = m.heartbeat(1, at: t)
            _ = m.heartbeat(2, at: t)
            #expect(!Self.summary(m.tick(now: t)).contains { $0.hasPrefix("backup") }, "t = \(t)")
        }
        _ = m.heartbeat(1, at: 1.625)
        _ = m.heartbeat(2, at: 1.625)
        #expect(Self.assigned(m.tick(now: 1.625)) == [[2]: [Self.root(1)]])
    }
}

/// Demotion: a worker beaten by backups step after step stops owning shards for a while.
extension CoordinatorStateMachineTests {
    @Test func aWorkerBeatenByBackupsThreeStepsInARowIsDemotedThenGetsAShareAgain() throws {
        var m = try Self.machine(steps: 80, minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        var handOut = Self.assigned(m.hello(2, at: 0))
        var t = 0.0
        var demotions: [String] = []
        var shares: [[Int]] = []  // per step: micro-batches handed to worker 1, worker 2 (in their items)
        while !m.isFinished && m.unit < 80 {
            let step = m.unit
            shares.append([1, 2].map { n in (handOut[[n]] ?? []).flatMap { Self.microBatches(of: $0, step: step) }.count })
            // Worker 1 answers its own share quickly; worker 2 (slow) only heartbeats.
            for g in handOut[[1]] ?? [] { _ = m.result(1, Self.result(g, step: step), at: t + 0.01) }
            var applied = m.unit > step
            var next: [Action] = []
            if (handOut[[2]] ?? []).isEmpty {
                next = m.unitApplied(now: t + 0.25)
                applied = true
            }
            if !applied {
                _ = m.heartbeat(2, at: t + 0.125)
                let tick = m.tick(now: t + 0.125)
                let backups = Self.assigned(tick)
                #expect(backups == [[1]: handOut[[2]] ?? []], "step \(step): \(Self.summary(tick))")
                var last: [Action] = []
                for g in backups[[1]] ?? [] { last = m.result(1, Self.result(g, step: step), at: t + 0.15) }
                demotions += Self.summary(last).filter { $0.hasPrefix("demoted") }
                next = m.unitApplied(now: t + 0.25)
            }
            _ = m.heartbeat(2, at: t + 0.15)
            handOut = Self.assigned(next)
            t += 0.25
        }
        #expect(m.isFinished)
        // Beaten in steps 0, 1, 2: demoted for 32 steps (3…34), beaten again in 35, 36, 37:
        // demoted for 64 steps, past the end.
        #expect(demotions == ["demoted 2 w2 after 3 until 35", "demoted 2 w2 after 3 until 102"], "\(demotions)")
        #expect(shares[3] == [8, 0] && shares[34] == [8, 0], "\(shares[3]) \(shares[34])")
        #expect(shares[35][1] > 0, "worker 2 gets a share again at step 35: \(shares[35])")
        #expect(shares[38...].allSatisfy { $0 == [8, 0] })
        #expect(m.liveWorkerIDs == [1, 2], "the slow worker stays a member")
    }

    @Test func aWorkerBeatenOnlyNowAndThenIsNotDemoted() throws {
        var m = try Self.machine(steps: 12, minimumWorkers: 2)
        _ = m.hello(1, at: 0)
        var handOut = Self.assigned(m.hello(2, at: 0))
        var t = 0.0
        var log: [String] = []
        while !m.isFinished {
            let step = m.unit
            for g in handOut[[1]] ?? [] { _ = m.result(1, Self.result(g, step: step), at: t + 0.01) }
            var next: [Action]
            if step % 3 == 2 {
                // Every third step worker 2 is slow and its share is backed up.
                _ = m.heartbeat(2, at: t + 0.125)
                let backups = Self.assigned(m.tick(now: t + 0.125))
                var last: [Action] = []
                for g in backups[[1]] ?? [] { last = m.result(1, Self.result(g, step: step), at: t + 0.15) }
                log += Self.summary(last)
            } else {
                var last: [Action] = []
                for g in handOut[[2]] ?? [] { last = m.result(2, Self.result(g, step: step), at: t + 0.02) }
                log += Self.summary(last)
            }
            next = m.unitApplied(now: t + 0.25)
            handOut = Self.assigned(next)
            t += 0.25
        }
        #expect(!log.contains { $0.hasPrefix("demoted") }, "\(log)")
        #expect(m.demotedUntil.isEmpty)
    }
}
