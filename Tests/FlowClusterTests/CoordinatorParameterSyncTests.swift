import FlowData
import FlowWire
import Testing
@testable import FlowCluster

/// `sync=parameters` (local SGD) in the coordinator's state machine, without sockets.
///
/// The job of `CoordinatorStateMachineTests` (8 micro-batches of 10 rows per step over 6 shards)
/// with H = 2 local steps per round and 3 steps in all: round 0 is steps 0–1 (g 0…15), round 1 is
/// the shorter last round, step 2 alone (g 16…23).
struct CoordinatorParameterSyncTests {
    typealias Base = CoordinatorStateMachineTests
    typealias Machine = CoordinatorStateMachine
    typealias Action = CoordinatorStateMachine.Action

    static let localSteps = 2

    static func machine(steps: Int = 3, minimumWorkers: Int = 1, checkpointEvery: Int? = nil, startRound: Int = 0) throws -> Machine {
        var spec = Base.spec()
        spec.mode = .training(.init(
            seed: 1, rowCount: UInt64(Base.rowCount), shardCount: UInt32(Base.shardCount),
            microBatchSize: UInt32(Base.microBatchSize), batchSize: UInt32(Base.batchSize),
            sync: .parameters(.init(localSteps: UInt32(localSteps)))))
        let plan = try BatchPlan(
            seed: 1, rowCount: Base.rowCount, microBatchSize: Base.microBatchSize, batchSize: Base.batchSize,
            shardCount: Base.shardCount)
        return Machine(
            job: .init(
                spec: spec, plan: plan, steps: steps, checkpointEvery: checkpointEvery, minimumWorkers: minimumWorkers,
                heartbeatInterval: Base.interval, heartbeatLiveness: Base.liveness, instance: 7, localSteps: localSteps),
            startUnit: startRound)
    }

    /// A local result for a unit of `rows` rows whose parameters are all `value`.
    static func local(round: Int, rows: Int, value: Float, job: UInt64 = Base.jobID, count: Int = Base.P) -> WireMessage {
        .localResult(.init(
            jobID: job, round: UInt64(round), baseVersion: UInt64(round), rowCount: UInt64(rows), lossSum: Double(rows),
            parameters: .float32(Array(repeating: value, count: count))))
    }

    /// The units (assignments) handed out in `actions`, per identity, in order.
    static func units(_ actions: [Action]) -> [[UInt8]: [[Int]]] {
        var result: [[UInt8]: [[Int]]] = [:]
        for case .send(let identity, .assignment(let a)) in actions { result[identity, default: []].append(a.items.map { Int($0) }) }
        return result
    }

    static func averaged(_ actions: [Action]) -> (round: Int, rows: [UInt64])? {
        for case .averageRound(let round, let results) in actions { return (round, results.map(\.rowCount)) }
        return nil
    }

    @Test func theJobCountsRoundsAndTheLastRoundIsShorter() throws {
        let m = try Self.machine()
        #expect(m.job.units == 2)
        #expect(m.job.microBatches(unit: 0) == 0..<16)
        #expect(m.job.microBatches(unit: 1) == 16..<24)
        #expect(try Self.machine(steps: 4).job.units == 2)
    }

    @Test func aRoundGivesEachOwnerOneUnitOfAllItsMicroBatchesAfterRowsAndParameters() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.receive(1, Base.helloMessage(1), at: 0)
        let before = m
        let actions = m.receive(2, Base.helloMessage(2), at: 0)
        Base.checkHandOut(actions.filter(Base.isHandOut), before: before, after: m, step: 0, expected: Array(0..<16))
        let units = Self.units(actions)
        #expect(units[[1]]?.count == 1 && units[[2]]?.count == 1, "one assignment per worker: \(units)")
        #expect(Set(units.values.flatMap { $0.flatMap { $0 } }) == Set(0..<16))
    }

    @Test func theRoundIsAveragedWhenEveryUnitIsBackThenTheNextRoundStartsAndTheLastEndsTheJob() throws {
        var m = try Self.machine(minimumWorkers: 2, checkpointEvery: 1)
        _ = m.receive(1, Base.helloMessage(1), at: 0)
        let units = Self.units(m.receive(2, Base.helloMessage(2), at: 0))
        let rows1 = units[[1]]![0].count * Base.microBatchSize, rows2 = units[[2]]![0].count * Base.microBatchSize
        #expect(Self.averaged(m.receive(1, Self.local(round: 0, rows: rows1, value: 1), at: 0.1)) == nil)
        let done = m.receive(2, Self.local(round: 0, rows: rows2, value: 2), at: 0.1)
        let average = try #require(Self.averaged(done))
        #expect(average.round == 0)
        // Ordered by the units' first micro-batch: worker 1's unit starts at g 0 or worker 2's does.
        let first1 = units[[1]]![0][0], first2 = units[[2]]![0][0]
        #expect(average.rows == (first1 < first2 ? [rows1, rows2] : [rows2, rows1]).map { UInt64($0) })
        let next = m.unitApplied(now: 0.2)
        #expect(Base.summary(next).contains("checkpoint 1"))
        let round1 = Self.units(next)
        #expect(Set(round1.values.flatMap { $0.flatMap { $0 } }) == Set(16..<24))
        for (identity, list) in round1 {
            _ = m.receive(identity[0], Self.local(round: 1, rows: list[0].count * Base.microBatchSize, value: 3), at: 0.3)
        }
        let end = m.unitApplied(now: 0.4)
        #expect(Base.summary(end).contains("checkpoint 2"))
        #expect(Base.summary(end).filter { $0.hasPrefix("goodbye") }.count == 2)
        #expect(Base.summary(end).last == "finished")
        #expect(m.isFinished)
        #expect(m.acceptedResults.values.reduce(0, +) == 24, "accepted results count micro-batches")
    }

    @Test func aLostWorkersUnitIsRegroupedForTheSurvivorWhoseResultsArriveInOrder() throws {
        var m = try Self.machine(minimumWorkers: 2)
        _ = m.receive(1, Base.helloMessage(1), at: 0)
        let units = Self.units(m.receive(2, Base.helloMessage(2), at: 0))
        let own = units[[1]]![0], lost = units[[2]]![0]
        // Worker 1 keeps talking; worker 2 falls silent past the deadline.
        _ = m.receive(1, .heartbeat(.init(sequence: 1)), at: 1.0)
        let tick = m.tick(now: 1.25)
        #expect(Base.summary(tick).contains("lost 2 w2 \(lost.count) reassigned"))
        let again = Self.units(tick)
        #expect(again[[1]] == [lost], "the lost unit goes to the survivor as one unit: \(again)")
        // The survivor returns its own unit first, then the taken-over one.
        #expect(Self.averaged(m.receive(1, Self.local(round: 0, rows: own.count * Base.microBatchSize, value: 1), at: 1.3)) == nil)
        // A late result of the dead worker is dropped (it is not registered any more).
        _ = m.receive(2, Self.local(round: 0, rows: lost.count * Base.microBatchSize, value: 9), at: 1.3)
        let done = m.receive(1, Self.local(round: 0, rows: lost.count * Base.microBatchSize, value: 2), at: 1.4)
        let average = try #require(Self.averaged(done))
        #expect(average.rows.map { Int($0) }.sorted() == [own.count, lost.count].map { $0 * Base.microBatchSize }.sorted())
    }

    @Test func wrongSizesAndGradientResultsAreInvalidAndLateRoundsAreDropped() throws {
        var m = try Self.machine()
        let units = Self.units(m.receive(1, Base.helloMessage(1), at: 0))
        let rows = units[[1]]![0].count * Base.microBatchSize
        #expect(rows == 160)
        _ = m.receive(1, Self.local(round: 0, rows: rows - 10, value: 1), at: 0.1)
        _ = m.receive(1, Self.local(round: 0, rows: rows, value: 1, count: Base.P - 1), at: 0.1)
        _ = m.receive(1, .gradientResult(Base.result(0, step: 0)), at: 0.1)
        #expect(m.invalidMessages[[1]] == 3)
        let dropped = m.droppedMessages
        _ = m.receive(1, Self.local(round: 1, rows: rows, value: 1), at: 0.1)  // not this round
        _ = m.receive(1, Self.local(round: 0, rows: rows, value: 1, job: 99), at: 0.1)  // another job
        #expect(m.droppedMessages == dropped + 2)
        #expect(Self.averaged(m.receive(1, Self.local(round: 0, rows: rows, value: 1), at: 0.2))?.rows == [160])
        // After the round, a duplicate is late.
        _ = m.unitApplied(now: 0.3)
        _ = m.receive(1, Self.local(round: 0, rows: rows, value: 1), at: 0.4)
        #expect(m.droppedMessages == dropped + 3)
    }

    @Test func aLocalResultInAGradientJobIsInvalid() throws {
        var m = try Base.machine()
        _ = m.receive(1, Base.helloMessage(1), at: 0)
        _ = m.receive(1, Self.local(round: 0, rows: 80, value: 1), at: 0.1)
        #expect(m.invalidMessages[[1]] == 1)
    }

    @Test func aUnitWhoseRowsWereMissingIsResentWholeAndANonFiniteOneFailsTheJob() throws {
        var m = try Self.machine()
        let unit = Self.units(m.receive(1, Base.helloMessage(1), at: 0))[[1]]![0]
        let report = WireMessage.error(.init(code: .missingRows, jobID: Base.jobID, step: 0, item: UInt64(unit[0]), message: "no rows"))
        let redo = m.receive(1, report, at: 0.1)
        let summary = Base.summary(redo)
        #expect(summary.contains("parameters [1] v0"))
        #expect(summary.filter { $0.hasPrefix("rows [1]") }.count == Base.shardCount)
        #expect(Self.units(redo)[[1]] == [unit])
        // Only one unit is outstanding: its result completes the round.
        #expect(Self.averaged(m.receive(1, Self.local(round: 0, rows: unit.count * Base.microBatchSize, value: 1), at: 0.2)) != nil)

        var n = try Self.machine()
        let first = Self.units(n.receive(1, Base.helloMessage(1), at: 0))[[1]]![0][0]
        let bad = n.receive(1, .error(.init(code: .nonFinite, jobID: Base.jobID, step: 0, item: UInt64(first), message: "NaN")), at: 0.1)
        #expect(Base.summary(bad).contains { $0.hasPrefix("failed") })
    }

    @Test func aResumedMachineStartsAtItsRound() throws {
        var m = try Self.machine(startRound: 1)
        let units = Self.units(m.receive(1, Base.helloMessage(1), at: 0))
        #expect(units[[1]] == [Array(16..<24)])
        #expect(try Self.machine(startRound: 2).isFinished)
    }
}

private extension CoordinatorStateMachine {
    mutating func receive(_ n: UInt8, _ message: WireMessage, at now: Double) -> [Action] {
        messageReceived(from: [n], bytes: message.encoded(), now: now)
    }
}
