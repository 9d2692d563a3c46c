import FlowWire
import Testing
@testable import FlowCluster

/// The worker's state machine in a scoring job: it keeps the job and the parameters and scores
/// the chunks of its job, asking for parameters it lacks.
struct WorkerScoringStateTests {
    static let jobID: UInt64 = 5
    static let hello = WorkerStateMachineTests.hello
    static let welcome = WorkerStateMachineTests.welcome
    static let spec = WireMessage.JobSpec(
        jobID: jobID, dtype: .float32, architecture: .init(dimension: 2, couplings: 2, hidden: 4, depth: 1), standardization: nil,
        mode: .scoring(.init(chunkRows: 4, wantLatent: false)))
    static let chunk = WireMessage.ScoreChunk(
        jobID: jobID, chunk: 3, firstRow: 12, rowCount: 1, dimension: 2, values: .float32([0.5, .nan]))

    static func joined() -> WorkerStateMachine {
        var m = WorkerStateMachine(hello: hello)
        _ = m.start(now: 0)
        _ = m.messageReceived(WireMessage.welcome(welcome).encoded(), now: 0)
        return m
    }

    @Test func aScoringJobIsKeptAndChunksAreScoredOnceParametersArrived() {
        var m = Self.joined()
        #expect(m.messageReceived(WireMessage.jobSpec(Self.spec).encoded(), now: 0) == [.storeJob(Self.spec)])
        let parameters = WireMessage.Parameters(jobID: Self.jobID, version: 0, values: .float32(Array(repeating: 0, count: 36)))
        #expect(m.messageReceived(WireMessage.parameters(parameters).encoded(), now: 0) == [.storeParameters(parameters)])
        #expect(m.messageReceived(WireMessage.scoreChunk(Self.chunk).encoded(), now: 0.1) == [.score(Self.chunk)])
    }

    @Test func aChunkBeforeTheParametersIsAnsweredWithMissingParameters() {
        var m = Self.joined()
        _ = m.messageReceived(WireMessage.jobSpec(Self.spec).encoded(), now: 0)
        let actions = m.messageReceived(WireMessage.scoreChunk(Self.chunk).encoded(), now: 0.1)
        guard actions.count == 1, case .send(.error(let report)) = actions[0] else {
            Issue.record("expected an error, got \(actions)")
            return
        }
        #expect(report.code == .missingParameters && report.item == 3 && report.jobID == Self.jobID)
    }

    @Test func chunksOfAnotherJobOrWithoutAJobAreIgnored() {
        var m = Self.joined()
        #expect(m.messageReceived(WireMessage.scoreChunk(Self.chunk).encoded(), now: 0).isEmpty)
        _ = m.messageReceived(WireMessage.jobSpec(Self.spec).encoded(), now: 0)
        var other = Self.chunk
        other.jobID = 99
        #expect(m.messageReceived(WireMessage.scoreChunk(other).encoded(), now: 0).isEmpty)
        // A training job's worker does not score.
        var t = Self.joined()
        _ = t.messageReceived(WireMessage.jobSpec(WorkerStateMachineTests.spec()).encoded(), now: 0)
        var trainingChunk = Self.chunk
        trainingChunk.jobID = WorkerStateMachineTests.jobID
        #expect(t.messageReceived(WireMessage.scoreChunk(trainingChunk).encoded(), now: 0).isEmpty)
    }

    @Test func heartbeatsDuringALongChunkDoNotJudgeTheCoordinatorsSilence() {
        var m = Self.joined()
        // Long after the coordinator was last heard: a heartbeat, never a reconnect.
        let actions = m.heartbeatIfDue(now: 30)
        #expect(actions.count == 1)
        if case .send(.heartbeat)? = actions.first {} else { Issue.record("expected a heartbeat, got \(actions)") }
        #expect(m.heartbeatIfDue(now: 30.1).isEmpty, "not due again yet")
    }
}
