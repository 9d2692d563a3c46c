import FlowData
import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// The worker's decisions without sockets: every event in every state (before welcome, welcomed
/// without a job, with a job, computing, finished).
///
/// The job is the coordinator tests': N = 120 rows of D = 2 in S = 6 shards of 20 rows (shard k
/// holds positions 20k ..< 20k + 20), m = 10, B = 80: steps 0 and 1 draw from every shard, so the
/// leaf of shard k (`TreeNode(leaf: k)`) is a node of either step that reads shard k alone.
/// Assignments here name leaves by their shard (`assignment(step:_:)`, `computes`).
/// The welcome sets heartbeats every 0.25 s and liveness 4: a coordinator silent for more than
/// 1 s is gone. Times are binary fractions, so deadlines compare exactly.
struct WorkerStateMachineTests {
    typealias Action = WorkerStateMachine.Action

    static let jobID: UInt64 = 42
    static let P = 36
    static let hello = WireMessage.Hello(
        instance: 11, processID: 1, name: "w", host: "h",
        capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))
    static let welcome = WireMessage.Welcome(
        workerID: 3, workerInstance: 11, coordinatorInstance: 7, heartbeatIntervalMilliseconds: 250, heartbeatLiveness: 4)

    static func spec(
        job: UInt64 = jobID, dtype: WireDType = .float32, rowCount: UInt64 = 120, shardCount: UInt32 = 6,
        sync: WireMessage.JobSpec.Sync = .gradients
    ) -> WireMessage.JobSpec {
        .init(
            jobID: job, dtype: dtype, architecture: .init(dimension: 2, couplings: 2, hidden: 4, depth: 1), standardization: nil,
            mode: .training(.init(seed: 1, rowCount: rowCount, shardCount: shardCount, microBatchSize: 10, batchSize: 80, sync: sync)))
    }

    /// The rows of shard `k` as the plan defines them, or altered by the arguments.
    static func rows(
        _ k: Int, job: UInt64 = jobID, first: UInt64? = nil, count: UInt32 = 20, dimension: UInt32 = 2, dtype: WireDType = .float32
    ) -> WireMessage.ShardRows {
        let n = Int(count * dimension)
        return .init(
            jobID: job, shard: UInt32(k), firstPosition: first ?? UInt64(20 * k), rowCount: count, dimension: dimension,
            values: dtype == .float32 ? .float32((0..<n).map { Float($0) }) : .float64((0..<n).map { Double($0) }))
    }

    static func parameters(_ version: UInt64, job: UInt64 = jobID, dtype: WireDType = .float32) -> WireMessage.Parameters {
        .init(jobID: job, version: version,
              values: dtype == .float32 ? .float32(Array(repeating: 0.5, count: P)) : .float64(Array(repeating: 0.5, count: P)))
    }

    /// An assignment of the leaves of `shards`.
    static func assignment(step: UInt64, version: UInt64? = nil, _ shards: [UInt64], job: UInt64 = jobID) -> WireMessage.Assignment {
        .init(jobID: job, step: step, version: version ?? step, items: leaves(shards))
    }

    /// The keys of the leaves of `shards`.
    static func leaves(_ shards: [UInt64]) -> [UInt64] { shards.map { TreeNode(leaf: Int($0)).key } }

    /// A worker that started at 0, was welcomed and holds the job.
    static func joined() -> WorkerStateMachine {
        var m = WorkerStateMachine(hello: hello)
        _ = m.start(now: 0)
        _ = m.receive(.welcome(welcome), at: 0)
        _ = m.receive(.jobSpec(spec()), at: 0)
        return m
    }

    /// A joined worker holding every shard and parameter version 0.
    static func ready() -> WorkerStateMachine {
        var m = joined()
        for k in 0..<6 { _ = m.receive(.shardRows(rows(k)), at: 0) }
        _ = m.receive(.parameters(parameters(0)), at: 0)
        return m
    }

    static func isLog(_ actions: [Action]) -> Bool {
        actions.count == 1 && { if case .log = actions[0] { return true }; return false }()
    }

    /// The shards of the leaves each `compute` in `actions` names.
    static func computes(_ actions: [Action]) -> [[UInt64]] {
        actions.compactMap { if case .compute(_, _, let items) = $0 { return items.map { UInt64(TreeNode(key: $0)!.index) } }; return nil }
    }

    // MARK: Joining

    @Test func startSaysHello() {
        var m = WorkerStateMachine(hello: Self.hello)
        #expect(m.start(now: 0) == [.send(.hello(Self.hello))])
        #expect(m.workerID == nil)
        #expect(m.heartbeatInterval == 0.5 && m.heartbeatLiveness == 8, "the defaults until a welcome says otherwise")
    }

    @Test func aWelcomeForAnotherInstanceIsIgnored() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        var other = Self.welcome
        other.workerInstance = 12
        #expect(Self.isLog(m.receive(.welcome(other), at: 0)))
        #expect(m.workerID == nil && m.heartbeatInterval == 0.5)
        #expect(m.receive(.jobSpec(Self.spec()), at: 0).isEmpty, "still not welcomed")
    }

    @Test func aJobSpecBeforeTheWelcomeIsIgnored() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        #expect(m.receive(.jobSpec(Self.spec()), at: 0).isEmpty)
        #expect(Self.isLog(m.receive(.welcome(Self.welcome), at: 0)))
        #expect(m.workerID == 3)
        // Welcomed but without a job: rows, parameters and assignments have nothing to belong to.
        #expect(m.receive(.shardRows(Self.rows(0)), at: 0).isEmpty)
        #expect(m.receive(.parameters(Self.parameters(0)), at: 0).isEmpty)
        #expect(m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0).isEmpty)
        #expect(m.invalidMessages == 0)
        // The job arrives: it starts from nothing.
        #expect(m.receive(.jobSpec(Self.spec()), at: 0) == [.storeJob(Self.spec())])
        #expect(m.receive(.parameters(Self.parameters(0)), at: 0) == [.storeParameters(Self.parameters(0))])
        #expect(m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0).isEmpty, "the rows of shard 0 never came")
    }

    @Test(arguments: [(250, 4, 0.25, 4), (1, 1, 0.01, 2), (3_600_000, 1000, 3600, 1000)] as [(UInt32, UInt32, Double, Int)])
    func aWelcomeSetsTheIDAndTheHeartbeatContract(milliseconds: UInt32, liveness: UInt32, interval: Double, expectedLiveness: Int) {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        var welcome = Self.welcome
        welcome.heartbeatIntervalMilliseconds = milliseconds
        welcome.heartbeatLiveness = liveness
        #expect(Self.isLog(m.receive(.welcome(welcome), at: 0)))
        #expect(m.workerID == 3)
        #expect(m.heartbeatInterval == interval, "clamped to at least 10 ms")
        #expect(m.heartbeatLiveness == expectedLiveness, "clamped to at least 2")
    }

    // MARK: The job

    @Test func aGradientsTrainingJobIsStored() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        _ = m.receive(.welcome(Self.welcome), at: 0)
        #expect(m.receive(.jobSpec(Self.spec()), at: 0) == [.storeJob(Self.spec())])
    }

    // Scoring jobs are kept too: `WorkerScoringStateTests`.

    @Test func aParameterSyncJobIsKeptAndItsRoundComputedOnceRowsAndParametersAreHere() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        _ = m.receive(.welcome(Self.welcome), at: 0)
        let spec = Self.spec(sync: .parameters(.init(localSteps: 4)))
        #expect(m.receive(.jobSpec(spec), at: 0) == [.storeJob(spec)])
        // With sync=parameters the items are global micro-batches: micro-batch 0 reads shard 0.
        #expect(m.receive(.assignment(.init(jobID: Self.jobID, step: 0, version: 0, items: [0])), at: 0).isEmpty)
        _ = m.receive(.shardRows(Self.rows(0)), at: 0)
        let actions = m.receive(.parameters(Self.parameters(0)), at: 0)
        #expect(actions.last == .compute(step: 0, version: 0, items: [0]))
    }

    @Test func shardRowsMatchingThePlanAreStored() {
        var m = Self.joined()
        for k in 0..<6 {
            #expect(m.receive(.shardRows(Self.rows(k)), at: 0) == [.storeShard(Self.rows(k))])
        }
        #expect(m.invalidMessages == 0)
        // Rows of another job are not this job's business.
        #expect(m.receive(.shardRows(Self.rows(0, job: 43)), at: 0).isEmpty)
    }

    enum RowsMismatch: String, CaseIterable, Sendable { case firstPosition, rowCount, dimension, dtype }

    @Test(arguments: RowsMismatch.allCases)
    func shardRowsNotMatchingThePlanAreDroppedAndCounted(_ mismatch: RowsMismatch) {
        var m = Self.joined()
        _ = m.receive(.parameters(Self.parameters(0)), at: 0)
        let bad: WireMessage.ShardRows
        switch mismatch {
        case .firstPosition: bad = Self.rows(1, first: 21)
        case .rowCount: bad = Self.rows(1, count: 19)
        case .dimension: bad = Self.rows(1, dimension: 3)
        case .dtype: bad = Self.rows(1, dtype: .float64)
        }
        #expect(throws: Never.self, "the message itself is well formed") { try WireMessage.shardRows(bad).validate() }
        #expect(Self.isLog(m.receive(.shardRows(bad), at: 0)))
        #expect(m.invalidMessages == 1)
        // The shard is still missing: an assignment on it waits for proper rows.
        #expect(m.receive(.assignment(Self.assignment(step: 0, [1])), at: 0).isEmpty)
        #expect(Self.computes(m.receive(.shardRows(Self.rows(1)), at: 0)) == [[1]])
    }

    @Test func shardRowsForAShardOutsideThePlanAreDroppedAndCounted() {
        var m = Self.joined()
        let actions = m.receive(.shardRows(Self.rows(6, first: 120)), at: 0)
        #expect(!actions.contains { if case .storeShard = $0 { return true }; return false })
        #expect(m.invalidMessages == 1)
    }

    @Test func parametersOfTheJobAreStored() {
        var m = Self.joined()
        #expect(m.receive(.parameters(Self.parameters(0)), at: 0) == [.storeParameters(Self.parameters(0))])
        #expect(m.receive(.parameters(Self.parameters(1)), at: 0) == [.storeParameters(Self.parameters(1))])
        // Another job's, or in another dtype: dropped.
        #expect(m.receive(.parameters(Self.parameters(2, job: 43)), at: 0).isEmpty)
        #expect(m.receive(.parameters(Self.parameters(2, dtype: .float64)), at: 0).isEmpty)
    }

    // MARK: Assignments

    enum Prerequisite: String, CaseIterable, Sendable { case rowsOfShard0, rowsOfShard1, parameters }

    static let orders: [[Prerequisite]] = {
        let all = Prerequisite.allCases
        return all.flatMap { a in all.filter { $0 != a }.flatMap { b in all.filter { $0 != a && $0 != b }.map { c in [a, b, c] } } }
    }()

    @Test(arguments: orders)
    func anAssignmentWaitsForTheRowsOfEveryShardAndTheParameters(order: [Prerequisite]) {
        var m = Self.joined()
        // The leaves of shards 0 and 1.
        #expect(m.receive(.assignment(Self.assignment(step: 0, [0, 1])), at: 0).isEmpty)
        for (i, prerequisite) in order.enumerated() {
            let message: WireMessage
            let stored: Action
            switch prerequisite {
            case .rowsOfShard0: message = .shardRows(Self.rows(0)); stored = .storeShard(Self.rows(0))
            case .rowsOfShard1: message = .shardRows(Self.rows(1)); stored = .storeShard(Self.rows(1))
            case .parameters: message = .parameters(Self.parameters(0)); stored = .storeParameters(Self.parameters(0))
            }
            let actions = m.receive(message, at: 0)
            if i < 2 {
                #expect(actions == [stored], "after \(order.prefix(i + 1))")
            } else {
                #expect(actions == [stored, .compute(step: 0, version: 0, items: Self.leaves([0, 1]))], "after \(order)")
            }
        }
    }

    @Test func anAssignmentWhoseRowsAndParametersAreHereStartsAtOnce() {
        var m = Self.ready()
        #expect(m.receive(.assignment(Self.assignment(step: 0, [3, 4, 5])), at: 0) == [.compute(step: 0, version: 0, items: Self.leaves([3, 4, 5]))])
    }

    @Test func anAssignmentWaitsForTheParameterVersionItNames() {
        var m = Self.ready()
        #expect(m.receive(.assignment(Self.assignment(step: 1, [2, 3])), at: 0).isEmpty, "holds v0, needs v1")
        #expect(m.receive(.parameters(Self.parameters(1)), at: 0)
                == [.storeParameters(Self.parameters(1)), .compute(step: 1, version: 1, items: Self.leaves([2, 3]))])
    }

    @Test func exactlyOneComputeRunsAtATime() {
        var m = Self.ready()
        #expect(Self.computes(m.receive(.assignment(Self.assignment(step: 0, [0, 1])), at: 0)) == [[0, 1]])
        #expect(m.receive(.assignment(Self.assignment(step: 0, [2])), at: 0).isEmpty, "busy")
        #expect(m.receive(.assignment(Self.assignment(step: 0, [3])), at: 0).isEmpty, "busy")
        // Rows arriving while busy do not start anything either.
        #expect(m.receive(.shardRows(Self.rows(0)), at: 0) == [.storeShard(Self.rows(0))])
        #expect(m.computeFinished(now: 0.125) == [.compute(step: 0, version: 0, items: Self.leaves([2]))])
        #expect(m.computeFinished(now: 0.25) == [.compute(step: 0, version: 0, items: Self.leaves([3]))])
        #expect(m.computeFinished(now: 0.375).isEmpty)
        #expect(m.computeFinished(now: 0.5).isEmpty, "a stray computeFinished is harmless")
    }

    @Test func aReadyAssignmentOvertakesOneStillWaitingForRows() {
        var m = Self.joined()
        _ = m.receive(.parameters(Self.parameters(0)), at: 0)
        _ = m.receive(.shardRows(Self.rows(2)), at: 0)
        #expect(m.receive(.assignment(Self.assignment(step: 0, [1])), at: 0).isEmpty)
        #expect(Self.computes(m.receive(.assignment(Self.assignment(step: 0, [2])), at: 0)) == [[2]])
        #expect(m.computeFinished(now: 0).isEmpty)
        #expect(Self.computes(m.receive(.shardRows(Self.rows(1)), at: 0)) == [[1]])
    }

    @Test func assignmentsForOlderVersionsAreDropped() {
        var m = Self.joined()
        for k in 0..<6 where k != 5 { _ = m.receive(.shardRows(Self.rows(k)), at: 0) }
        _ = m.receive(.parameters(Self.parameters(0)), at: 0)
        // A v0 assignment waits for the rows of shard 5; then the coordinator moves on to v1.
        #expect(m.receive(.assignment(Self.assignment(step: 0, [5])), at: 0).isEmpty)
        #expect(m.receive(.parameters(Self.parameters(1)), at: 0) == [.storeParameters(Self.parameters(1))])
        #expect(m.receive(.shardRows(Self.rows(5)), at: 0) == [.storeShard(Self.rows(5))], "the v0 assignment is gone")
        // An assignment that arrives for an older version is dropped at once.
        #expect(m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0).isEmpty)
        // Older ones queued behind a running compute are dropped when it finishes.
        #expect(Self.computes(m.receive(.assignment(Self.assignment(step: 1, [2])), at: 0)) == [[2]])
        #expect(m.receive(.assignment(Self.assignment(step: 1, [3])), at: 0).isEmpty)
        _ = m.receive(.parameters(Self.parameters(2)), at: 0)
        #expect(m.computeFinished(now: 0).isEmpty)
        #expect(Self.computes(m.receive(.assignment(Self.assignment(step: 2, [4])), at: 0)) == [[4]])
        // Dropped means gone, not parked: the heartbeat counts no queued work.
        #expect(m.tick(now: 0.25) == [.send(.heartbeat(.init(sequence: 1, pendingWork: 0, currentStep: 2)))])
    }

    @Test func anAssignmentForAnotherJobIsIgnored() {
        var m = Self.ready()
        #expect(m.receive(.assignment(Self.assignment(step: 0, [0], job: 43)), at: 0).isEmpty)
        #expect(m.invalidMessages == 0)
    }

    // MARK: Time

    @Test func aHeartbeatGoesOutAfterOneQuietInterval() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        // Before the welcome: the default interval, 0.5 s.
        #expect(m.tick(now: 0.25).isEmpty)
        #expect(m.tick(now: 0.5) == [.send(.heartbeat(.init(sequence: 1, pendingWork: 0, currentStep: nil)))])
        _ = m.receive(.welcome(Self.welcome), at: 0.5)
        _ = m.receive(.jobSpec(Self.spec()), at: 0.5)
        #expect(m.tick(now: 0.625).isEmpty)
        #expect(m.tick(now: 0.75) == [.send(.heartbeat(.init(sequence: 2, pendingWork: 0, currentStep: nil)))])
        // Anything the driver sends postpones the next heartbeat.
        m.sent(now: 0.875)
        #expect(m.tick(now: 1.0).isEmpty)
        _ = m.receive(.heartbeat(.init(sequence: 1)), at: 1.0)
        #expect(m.tick(now: 1.125) == [.send(.heartbeat(.init(sequence: 3, pendingWork: 0, currentStep: nil)))])
    }

    @Test func heartbeatsReportTheStepAndTheQueuedWork() {
        var m = Self.ready()
        _ = m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0)
        _ = m.receive(.assignment(Self.assignment(step: 0, [1])), at: 0)
        _ = m.receive(.assignment(Self.assignment(step: 1, [2])), at: 0)
        #expect(m.tick(now: 0.25) == [.send(.heartbeat(.init(sequence: 1, pendingWork: 2, currentStep: 0)))])
        // Finishing a compute counts as sending (its results went out).
        _ = m.computeFinished(now: 0.375)
        #expect(m.tick(now: 0.5).isEmpty)
        #expect(m.tick(now: 0.625) == [.send(.heartbeat(.init(sequence: 2, pendingWork: 1, currentStep: 0)))])
    }

    @Test func aSilentCoordinatorCausesAReconnectThatForgetsEverything() {
        var m = Self.ready()
        _ = m.receive(.assignment(Self.assignment(step: 1, [2])), at: 0)  // waits for v1
        // Liveness 4 × 0.25 s: silent for exactly 1 s is still alive; any message resets the clock.
        #expect(!m.tick(now: 1.0).contains { if case .reconnect = $0 { return true }; return false })
        _ = m.receive(.heartbeat(.init(sequence: 1)), at: 1.0)
        #expect(!m.tick(now: 2.0).contains { if case .reconnect = $0 { return true }; return false })
        let actions = m.tick(now: 2.125)
        guard actions.count == 1, case .reconnect = actions[0] else { Issue.record("\(actions)"); return }
        // The driver opens a new connection and calls start: a fresh hello, nothing kept.
        #expect(m.start(now: 2.125) == [.send(.hello(Self.hello))])
        #expect(m.workerID == nil)
        #expect(m.receive(.parameters(Self.parameters(1)), at: 2.125).isEmpty, "no job any more")
        _ = m.receive(.welcome(Self.welcome), at: 2.25)
        _ = m.receive(.jobSpec(Self.spec()), at: 2.25)
        _ = m.receive(.parameters(Self.parameters(1)), at: 2.25)
        #expect(m.receive(.assignment(Self.assignment(step: 1, [2])), at: 2.25).isEmpty, "the rows went with the connection")
        #expect(Self.computes(m.receive(.shardRows(Self.rows(2)), at: 2.25)) == [[2]])
    }

    @Test func beforeTheWelcomeTheDefaultLivenessApplies() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        #expect(!m.tick(now: 4.0).contains { if case .reconnect = $0 { return true }; return false }, "8 × 0.5 s")
        #expect(m.tick(now: 4.25).contains { if case .reconnect = $0 { return true }; return false })
    }

    // MARK: Errors, goodbye and garbage

    @Test func notRegisteredCausesAReconnect() {
        var m = Self.ready()
        let actions = m.receive(.error(.init(code: .notRegistered, message: "not registered: send hello")), at: 0.125)
        guard actions.count == 1, case .reconnect = actions[0] else { Issue.record("\(actions)"); return }
    }

    @Test(arguments: [WireErrorCode.badMessage, .unsupportedVersion, .unsupportedDType, .unknownJob, .init(rawValue: 999)])
    func otherErrorReportsAreLogged(code: WireErrorCode) {
        var m = Self.ready()
        #expect(Self.isLog(m.receive(.error(.init(code: code, message: "x")), at: 0.125)))
        #expect(m.invalidMessages == 0)
    }

    @Test func goodbyeFinishesTheWorker() {
        var m = Self.ready()
        _ = m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0)
        #expect(m.receive(.goodbye(.init(reason: "job finished after 3 steps")), at: 0.125) == [.finish(reason: "job finished after 3 steps")])
        #expect(m.tick(now: 100).isEmpty, "finished: no heartbeats, no reconnects")
        // A goodbye before the welcome ends the worker too.
        var early = WorkerStateMachine(hello: Self.hello)
        _ = early.start(now: 0)
        #expect(early.receive(.goodbye(.init(reason: "job finished")), at: 0) == [.finish(reason: "job finished")])
    }

    static let garbage: [[UInt8]] = {
        let heartbeat = WireMessage.heartbeat(.init(sequence: 1)).encoded()
        var badMagic = heartbeat; badMagic[0] = 0x58
        var badVersion = heartbeat; badVersion[4] = 7
        var unknownKind = heartbeat; unknownKind[6] = 0x7F
        return [[], [0x54], badMagic, badVersion, unknownKind, Array(heartbeat.dropLast()), heartbeat + [0]]
    }()

    static let workerOnly: [WireMessage] = [
        .hello(hello),
        .gradientResult(.init(jobID: jobID, step: 0, version: 0, node: 0, rowCount: 10, lossSum: 0, gradient: .float32([0]))),
        .localResult(.init(jobID: jobID, round: 0, baseVersion: 0, rowCount: 1, lossSum: 0, parameters: .float32([0]))),
        .scoreResult(.init(jobID: jobID, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.ok], logProbs: .float64([0]), latent: nil)),
    ]

    @Test func garbageAndKindsACoordinatorMayNotSendAreCountedAndLoggedOnce() {
        var m = Self.ready()
        let inputs = Self.garbage + Self.workerOnly.map { $0.encoded() }
        for (i, bytes) in inputs.enumerated() {
            let actions = m.messageReceived(bytes, now: 0.125)
            if i == 0 {
                #expect(Self.isLog(actions))
            } else {
                #expect(actions.isEmpty, "input \(i): \(actions)")
            }
        }
        #expect(m.invalidMessages == inputs.count)
        // Nothing else changed.
        #expect(Self.computes(m.receive(.assignment(Self.assignment(step: 0, [0])), at: 0.25)) == [[0]])
    }

    // MARK: Hostile input

    enum Hostile: String, CaseIterable, Codable, Sendable {
        /// A jobSpec whose N does not fit an Int (once trapped in `Int(training.rowCount)`).
        case rowCountBeyondInt
        /// A jobSpec whose N × S would overflow `BatchPlan.shardRange` (now refused by the plan).
        case rowCountTimesShardsOverflows
        /// shardRows whose firstPosition does not fit an Int (once trapped in `Int(rows.firstPosition)`).
        case firstPositionBeyondInt
    }

    @Test(arguments: Hostile.allCases)
    func wellFormedButHostileMessagesDoNotTrapTheWorker(_ hostile: Hostile) async {
        await #expect(processExitsWith: .success) { [hostile = hostile as Hostile] in
            var m = WorkerStateMachine(hello: WorkerStateMachineTests.hello)
            _ = m.start(now: 0)
            _ = m.receive(.welcome(WorkerStateMachineTests.welcome), at: 0)
            switch hostile {
            case .rowCountBeyondInt:
                _ = m.receive(.jobSpec(WorkerStateMachineTests.spec(rowCount: .max)), at: 0)
            case .rowCountTimesShardsOverflows:
                _ = m.receive(.jobSpec(WorkerStateMachineTests.spec(rowCount: 1 << 62, shardCount: UInt32(Int32.max))), at: 0)
                _ = m.receive(.shardRows(WorkerStateMachineTests.rows(Int(Int32.max) - 1, first: 0, count: 1)), at: 0)
            case .firstPositionBeyondInt:
                _ = m.receive(.jobSpec(WorkerStateMachineTests.spec()), at: 0)
                _ = m.receive(.shardRows(WorkerStateMachineTests.rows(0, first: .max - 20)), at: 0)
            }
        }
    }

    // MARK: With a coordinator

    @Test func workersAndTheCoordinatorTrainAJobThroughTheirMachines() throws {
        // The two machines wired back to back, no sockets: every 0.125 s each side receives what
        // was sent to it and ticks. A compute returns one result per micro-batch at once. Worker
        // [2] dies (stops receiving, sending and ticking) when step 2 starts.
        let plan = try BatchPlan(seed: 1, rowCount: 120, microBatchSize: 10, batchSize: 80, shardCount: 6)
        var coordinator = CoordinatorStateMachine(job: .init(
            spec: Self.spec(), plan: plan, steps: 4, checkpointEvery: nil, minimumWorkers: 2,
            heartbeatInterval: 0.25, heartbeatLiveness: 4, instance: 7))
        var workers: [[UInt8]: WorkerStateMachine] = [:]
        for n: UInt8 in [1, 2] {
            var hello = Self.hello
            hello.instance = 10 + UInt64(n)
            hello.name = "w\(n)"
            workers[[n]] = WorkerStateMachine(hello: hello)
        }
        var toWorkers: [([UInt8], [UInt8])] = []
        var toCoordinator: [([UInt8], [UInt8])] = []
        var applied: [Int] = []
        var computed: [UInt64: Int] = [:]
        var finished: Set<[UInt8]> = []
        var dead: Set<[UInt8]> = []
        var t = 0.0

        func coordinatorDoes(_ actions: [CoordinatorStateMachine.Action]) {
            for action in actions {
                switch action {
                case .send(let identity, let message):
                    toWorkers.append((identity, message.encoded()))
                case .sendShard(let identity, let shard):
                    let range = plan.shardRange(shard)
                    toWorkers.append((identity, WireMessage.shardRows(Self.rows(shard, first: UInt64(range.lowerBound), count: UInt32(range.count))).encoded()))
                case .sendParameters(let identity, let version):
                    toWorkers.append((identity, WireMessage.parameters(Self.parameters(version)).encoded()))
                case .applyStep(let step, let results):
                    #expect(CoordinatorStateMachineTests.covered(results, step: step) == CoordinatorStateMachineTests.treeOrder(step))
                    applied.append(step)
                    if step == 1 { dead.insert([2]) }
                    coordinatorDoes(coordinator.unitApplied(now: t))
                case .averageRound:
                    Issue.record("a sync=gradients job averaged a round")
                case .computeLocally:
                    Issue.record("a job without verification asked the coordinator to compute")
                case .revokeKey:
                    Issue.record("a job without verification revoked a key")
                case .sendState, .stepReduced:
                    Issue.record("a sync=gradients job used the sharded exchange")
                case .checkpoint, .finished, .failed, .log:
                    break
                }
            }
        }
        func workerDoes(_ identity: [UInt8], _ actions: [WorkerStateMachine.Action]) {
            for action in actions {
                switch action {
                case .send(let message):
                    toCoordinator.append((identity, message.encoded()))
                case .compute(let step, let version, let gs):
                    for g in gs {
                        let microBatches = CoordinatorStateMachineTests.microBatches(of: Int(g), step: Int(step))
                        for b in microBatches { computed[UInt64(b), default: 0] += 1 }
                        toCoordinator.append((identity, WireMessage.gradientResult(.init(
                            jobID: Self.jobID, step: step, version: version, node: g, rowCount: UInt64(10 * microBatches.count), lossSum: Double(g),
                            gradient: .float32(Array(repeating: Float(g), count: Self.P)))).encoded()))
                    }
                    workers[identity]!.sent(now: t)
                    workerDoes(identity, workers[identity]!.computeFinished(now: t))
                case .reconnect(let reason):
                    Issue.record("worker \(identity) reconnects: \(reason)")
                case .finish:
                    finished.insert(identity)
                case .storeJob, .storeShard, .storeParameters, .score, .log:
                    break
                case .exchange(let message):
                    Issue.record("a sync=gradients worker was handed \(message.kind)")
                }
            }
        }

        for identity in workers.keys.sorted(by: { $0[0] < $1[0] }) { workerDoes(identity, workers[identity]!.start(now: t)) }
        while !(coordinator.isFinished && finished.count == 1) && t < 30 {
            t += 0.125
            let inbox = toCoordinator
            toCoordinator = []
            for (identity, bytes) in inbox where !dead.contains(identity) {
                coordinatorDoes(coordinator.messageReceived(from: identity, bytes: bytes, now: t))
            }
            let outbox = toWorkers
            toWorkers = []
            for (identity, bytes) in outbox where !dead.contains(identity) && !finished.contains(identity) {
                workerDoes(identity, workers[identity]!.messageReceived(bytes, now: t))
            }
            coordinatorDoes(coordinator.tick(now: t))
            for identity in workers.keys.sorted(by: { $0[0] < $1[0] }) where !dead.contains(identity) && !finished.contains(identity) {
                workerDoes(identity, workers[identity]!.tick(now: t))
            }
        }
        #expect(coordinator.isFinished, "stuck at step \(coordinator.unit)")
        #expect(applied == [0, 1, 2, 3])
        #expect(finished == [[1]])
        #expect(coordinator.liveWorkerIDs == [1], "worker 2 was declared dead")
        // Worker 2 died between steps, holding no results: every micro-batch was computed, and
        // twice only when it was also sent to a backup worker while the other was slow.
        #expect(Set(computed.keys) == Set((0..<32).map(UInt64.init)))
        let extra = computed.values.reduce(0, +) - 32
        #expect(extra <= 8 * coordinator.backupsSent, "\(computed.filter { $0.value != 1 }), \(coordinator.backupsSent) backups")
        #expect(coordinator.invalidMessages.isEmpty && workers.values.allSatisfy { $0.invalidMessages == 0 })
    }
}

private extension WorkerStateMachine {
    mutating func receive(_ message: WireMessage, at now: Double) -> [Action] {
        messageReceived(message.encoded(), now: now)
    }
}

extension WorkerStateMachineTests {
    @Test func aRefusalAtTheDoorEndsTheWorkerInsteadOfRetryingForever() {
        var m = WorkerStateMachine(hello: Self.hello)
        _ = m.start(now: 0)
        let actions = m.receive(.error(.init(code: .unsupportedDType, message: "the job needs float64")), at: 0.1)
        #expect(actions.contains { if case .finish = $0 { return true }; return false }, "\(actions)")
        #expect(m.tick(now: 100).isEmpty)
    }
}
