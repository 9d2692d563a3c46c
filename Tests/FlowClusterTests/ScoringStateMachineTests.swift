import FlowWire
import Testing
@testable import FlowCluster

/// The scoring coordinator's decisions without sockets: joins, results, duplicates, deaths,
/// stalls, worker errors, invalid messages and a resumed journal.
///
/// The job, unless a test says otherwise: 95 rows of D = 2 in chunks of 10 (chunks 0…9, the last
/// one 5 rows), float32, two chunks in flight per worker, heartbeats every 0.25 s with liveness 4
/// (a worker silent for more than 1 s is dead), stall timeout 5 s. Worker n talks from ROUTER
/// identity [n], says hello with instance 10 + n and name "wn", and gets id n when workers join
/// in order 1, 2, ….
struct ScoringStateMachineTests {
    typealias Action = ScoringStateMachine.Action
    typealias Machine = ScoringStateMachine

    static let jobID: UInt64 = 9
    static let rows = 95, chunkRows = 10

    static func spec(wantLatent: Bool = false) -> WireMessage.JobSpec {
        .init(
            jobID: jobID, dtype: .float32, architecture: .init(dimension: 2, couplings: 2, hidden: 4, depth: 1), standardization: nil,
            mode: .scoring(.init(chunkRows: UInt32(chunkRows), wantLatent: wantLatent)))
    }

    static func machine(done: Set<Int> = [], wantLatent: Bool = false, inFlight: Int = 2, verify: Double = 0) -> Machine {
        Machine(
            job: .init(
                spec: spec(wantLatent: wantLatent), rowCount: rows, chunkRows: chunkRows, inFlightPerWorker: inFlight,
                heartbeatInterval: 0.25, heartbeatLiveness: 4, stallTimeout: 5, maximumChunkFailures: 3, instance: 7,
                verifyFraction: verify),
            alreadyDone: done)
    }

    static func hello(_ n: UInt8, dtypes: WireDTypeSet = .all) -> [UInt8] {
        WireMessage.hello(.init(
            instance: 10 + UInt64(n), processID: 1, name: "w\(n)", host: "h",
            capabilities: .init(dtypes: dtypes, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))).encoded()
    }

    /// A valid result for chunk `k` (log-probs tagged with `tag`).
    static func result(_ k: Int, job: UInt64 = jobID, rows: Int? = nil, latent: Bool = false, tag: Float = 0) -> WireMessage.ScoreResult {
        let n = rows ?? min(chunkRows, Self.rows - k * chunkRows)
        return .init(
            jobID: job, chunk: UInt64(k), firstRow: UInt64(k * chunkRows), rowCount: UInt32(n),
            statuses: Array(repeating: .ok, count: n), logProbs: .float32(Array(repeating: -1 - tag, count: n)),
            latent: latent ? .init(dimension: 2, values: .float32(Array(repeating: 0, count: 2 * n))) : nil)
    }

    static func bytes(_ r: WireMessage.ScoreResult) -> [UInt8] { WireMessage.scoreResult(r).encoded() }

    /// Chunks sent to worker `n` by `actions`, in order.
    static func chunks(_ actions: [Action], to n: UInt8) -> [Int] {
        actions.compactMap { if case .sendChunk([n], let k) = $0 { return k } else { return nil } }
    }

    static func stored(_ actions: [Action]) -> [Int] {
        actions.compactMap { if case .storeResult(let r, _) = $0 { return Int(r.chunk) } else { return nil } }
    }

    static func messages(_ actions: [Action], to n: UInt8) -> [WireMessage] {
        actions.compactMap { if case .send([n], let m) = $0 { return m } else { return nil } }
    }

    // MARK: Joining

    @Test func aJoiningWorkerGetsWelcomeJobParametersAndTwoChunksInThatOrder() throws {
        var m = Self.machine()
        let actions = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        var kinds: [String] = []
        for action in actions {
            switch action {
            case .send([1], let message): kinds.append("\(message.kind)")
            case .sendParameters([1]): kinds.append("parameters")
            case .sendChunk([1], let k): kinds.append("chunk \(k)")
            case .log: continue
            default: Issue.record("unexpected \(action)")
            }
        }
        #expect(kinds == ["welcome", "jobSpec", "parameters", "chunk 0", "chunk 1"])
        #expect(m.liveWorkerIDs == [1])
        // A second worker takes the next two chunks; nobody gets the parameters twice.
        let second = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0.1)
        #expect(Self.chunks(second, to: 2) == [2, 3])
        #expect(second.filter { if case .sendParameters = $0 { return true } else { return false } }.count == 1)
    }

    @Test func aHelloWithoutTheJobsDTypeOrProtocolIsRefused() throws {
        var m = Self.machine()
        let actions = m.messageReceived(from: [1], bytes: Self.hello(1, dtypes: .float64), now: 0)
        guard case .error(let report)? = Self.messages(actions, to: 1).first else {
            Issue.record("no error: \(actions)")
            return
        }
        #expect(report.code == .unsupportedDType)
        #expect(m.liveWorkerIDs.isEmpty)
        var wrong = Self.hello(1)
        wrong[4] = 7  // header version 7
        let versioned = m.messageReceived(from: [1], bytes: wrong, now: 0)
        #expect(Self.messages(versioned, to: 1).contains { if case .error(let e) = $0 { return e.code == .unsupportedVersion } else { return false } })
    }

    @Test func aSecondHelloFromTheSameIdentityStartsTheWorkerOverAndRequeuesItsChunks() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let again = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0.5)
        // Its chunks 0 and 1 went back to the queue and come straight back, to the new registration.
        #expect(Self.chunks(again, to: 1) == [0, 1])
        #expect(m.liveWorkerIDs == [2])
    }

    // MARK: Results

    @Test func anAcceptedResultIsStoredAndTheWorkerGetsTheNextChunk() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let actions = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)
        #expect(Self.stored(actions) == [0])
        #expect(Self.chunks(actions, to: 1) == [2])
        #expect(m.doneCount == 1 && m.isDone(0) && m.rowsDone == 10)
        #expect(m.acceptedRows[1] == 10)
    }

    @Test func resultsOutOfOrderAreAllAcceptedAndTheLastOneFinishesTheJob() {
        var m = Self.machine(inFlight: 10)
        let join = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        #expect(Self.chunks(join, to: 1) == Array(0..<10))
        var storedOrder: [Int] = []
        var last: [Action] = []
        for k in [3, 9, 0, 1, 2, 8, 7, 4, 6, 5] {
            last = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(k)), now: 1)
            storedOrder += Self.stored(last)
        }
        #expect(storedOrder == [3, 9, 0, 1, 2, 8, 7, 4, 6, 5])
        #expect(m.isFinished && m.rowsDone == Self.rows)
        // Stored before the goodbye and the end.
        #expect(Self.stored(Array(last.prefix(1))) == [5])
        #expect(Self.messages(last, to: 1).contains { if case .goodbye = $0 { return true } else { return false } })
        #expect(last.last == .finished)
    }

    @Test func aDuplicateResultIsDroppedAndNotStoredTwice() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        _ = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)) == [0])
        // The same chunk again (from the same worker, or from another one): dropped.
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0, tag: 1)), now: 1.1)).isEmpty)
        #expect(Self.stored(m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0, tag: 2)), now: 1.2)).isEmpty)
        #expect(m.droppedMessages == 2)
        #expect(m.doneCount == 1)
    }

    @Test func aResultThatDoesNotMatchItsChunkIsInvalidAndNotStored() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        // Wrong row count, chunk beyond the job, latent nobody asked for.
        let wrongRows = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0, rows: 9)), now: 1)
        #expect(Self.stored(wrongRows).isEmpty)
        #expect(wrongRows.contains { if case .log(.invalidMessage) = $0 { return true } else { return false } })
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(12, rows: 10)), now: 1)).isEmpty)
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(1, latent: true)), now: 1)).isEmpty)
        #expect(m.invalidMessages[[1]] == 3)
        #expect(m.doneCount == 0)
        // Another job's result is ignored, not invalid.
        let other = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0, job: 1)), now: 1)
        #expect(Self.stored(other).isEmpty && m.droppedMessages == 1)
    }

    @Test func latentsAreRequiredWhenTheJobAsksForThem() {
        var m = Self.machine(wantLatent: true)
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)).isEmpty)
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0, latent: true)), now: 1)) == [0])
    }

    @Test func garbageIsCountedLoggedOnceAndDropped() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let first = m.messageReceived(from: [1], bytes: [1, 2, 3], now: 0.1)
        let second = m.messageReceived(from: [1], bytes: [], now: 0.2)
        #expect(first.count == 1 && second.isEmpty)
        // A coordinator-only message from a worker is invalid too.
        let chunk = WireMessage.scoreChunk(.init(jobID: Self.jobID, chunk: 0, firstRow: 0, rowCount: 1, dimension: 2, values: .float32([1, 2])))
        _ = m.messageReceived(from: [1], bytes: chunk.encoded(), now: 0.3)
        #expect(m.invalidMessages[[1]] == 3)
        #expect(m.liveWorkerIDs == [1] && m.doneCount == 0)
    }

    @Test func messagesFromUnknownPeersGetNotRegistered() {
        var m = Self.machine()
        for bytes in [WireMessage.heartbeat(.init(sequence: 1)).encoded(), Self.bytes(Self.result(0))] {
            let actions = m.messageReceived(from: [5], bytes: bytes, now: 0)
            #expect(Self.messages(actions, to: 5).contains { if case .error(let e) = $0 { return e.code == .notRegistered } else { return false } })
        }
        #expect(m.doneCount == 0 && m.droppedMessages == 2)
    }

    // MARK: Deaths, departures and stalls

    @Test func aSilentWorkerIsDeadAndItsChunksGoToTheOthersLowestFirst() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)  // chunks 0, 1
        _ = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)  // chunks 2, 3
        _ = m.messageReceived(from: [2], bytes: WireMessage.heartbeat(.init(sequence: 1)).encoded(), now: 0.9)
        #expect(m.tick(now: 1.0).allSatisfy { if case .sendChunk = $0 { return false } else { return true } }, "nobody is dead yet")
        let death = m.tick(now: 1.5)
        #expect(death.contains(.log(.workerLost(id: 1, name: "w1", reassigned: 2))))
        #expect(m.liveWorkerIDs == [2])
        // Worker 2 is full; as it returns results it gets 0 and 1 before any fresh chunk.
        let a = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(2)), now: 1.6)
        let b = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(3)), now: 1.7)
        #expect(Self.chunks(a, to: 2) == [0] && Self.chunks(b, to: 2) == [1])
        // The dead worker's late result is not accepted from an identity the machine forgot.
        let late = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1.8)
        #expect(Self.stored(late).isEmpty)
    }

    @Test func whenEveryWorkerIsDeadChunksWaitForTheNextOne() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        _ = m.tick(now: 2)
        #expect(m.liveWorkerIDs.isEmpty && !m.isFinished)
        let join = m.messageReceived(from: [3], bytes: Self.hello(3), now: 3)
        #expect(Self.chunks(join, to: 3) == [0, 1])
    }

    @Test func aGoodbyeRequeuesTheWorkersChunksAtOnce() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        _ = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(2)), now: 0.1)  // 2 now holds 3, 4
        let bye = m.messageReceived(from: [1], bytes: WireMessage.goodbye(.init(reason: "bye")).encoded(), now: 0.2)
        #expect(bye.contains(.log(.workerLeft(id: 1, name: "w1", reassigned: 2))))
        #expect(m.liveWorkerIDs == [2])
        let next = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(3)), now: 0.3)
        #expect(Self.chunks(next, to: 2) == [0])
    }

    @Test func aStalledChunkIsAlsoGivenToAnotherWorkerAndTheFirstResultWins() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)  // 0, 1
        _ = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)  // 2, 3
        // Both keep heartbeating; worker 2 finishes its chunks, worker 1 sits on chunk 0.
        var t = 0.0
        while t < 5 {
            t += 0.5
            _ = m.messageReceived(from: [1], bytes: WireMessage.heartbeat(.init(sequence: 1)).encoded(), now: t)
            _ = m.messageReceived(from: [2], bytes: WireMessage.heartbeat(.init(sequence: 1)).encoded(), now: t)
        }
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(1)), now: 5)  // 1 now holds 0 and 4
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(2)), now: 5)  // 2 holds 3, 5
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(3)), now: 5)  // 2 holds 5, 6
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(5)), now: 5.1)  // 2 holds 6, 7
        _ = m.messageReceived(from: [2], bytes: WireMessage.heartbeat(.init(sequence: 2)).encoded(), now: 5.2)
        _ = m.messageReceived(from: [1], bytes: WireMessage.heartbeat(.init(sequence: 2)).encoded(), now: 5.2)
        let stall = m.tick(now: 5.25)
        #expect(stall.contains(.log(.chunkStalled(chunk: 0, worker: 1))))
        // Chunk 0 waits for a free slot: worker 2's next result brings it.
        let next = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(6)), now: 5.3)
        #expect(Self.chunks(next, to: 2) == [0])
        // The stalled worker answers first: its result counts, the copy is dropped.
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 5.4)) == [0])
        #expect(Self.stored(m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0, tag: 1)), now: 5.5)).isEmpty)
        #expect(m.droppedMessages == 1)
        // It is never speculated twice.
        #expect(!m.tick(now: 20).contains(.log(.chunkStalled(chunk: 0, worker: 1))))
    }

    @Test func quietWorkersGetHeartbeats() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        #expect(Self.messages(m.tick(now: 0.1), to: 1).isEmpty)
        let beat = m.tick(now: 0.3)
        #expect(Self.messages(beat, to: 1).contains { if case .heartbeat = $0 { return true } else { return false } })
    }

    // MARK: Worker errors

    @Test func missingParametersAreSentAgainWithTheChunk() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let report = WireMessage.error(.init(code: .missingParameters, jobID: Self.jobID, item: 0, message: "no parameters")).encoded()
        let actions = m.messageReceived(from: [1], bytes: report, now: 0.1)
        #expect(actions.contains(.sendParameters(identity: [1])))
        #expect(Self.chunks(actions, to: 1) == [0])
        if let p = actions.firstIndex(of: .sendParameters(identity: [1])), let c = actions.firstIndex(of: .sendChunk(identity: [1], chunk: 0)) {
            #expect(p < c, "parameters before the chunk")
        }
    }

    @Test func aChunkThatKeepsFailingFailsTheJob() {
        var m = Self.machine()
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let report = WireMessage.error(.init(code: .computeFailed, jobID: Self.jobID, item: 0, message: "boom")).encoded()
        var last: [Action] = []
        for i in 0..<3 { last = m.messageReceived(from: [1], bytes: report, now: 0.1 + Double(i) * 0.1) }
        #expect(last.contains { if case .failed = $0 { return true } else { return false } })
        #expect(m.isFinished)
        // An error about a chunk the worker does not hold changes nothing.
        var n = Self.machine()
        _ = n.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        let stray = WireMessage.error(.init(code: .computeFailed, jobID: Self.jobID, item: 7, message: "?")).encoded()
        #expect(Self.chunks(n.messageReceived(from: [1], bytes: stray, now: 0.1), to: 1).isEmpty)
        #expect(n.droppedMessages == 1)
    }

    // MARK: Resume

    @Test func journaledChunksAreNeverHandedOut() {
        var m = Self.machine(done: [0, 1, 2, 5])
        #expect(m.doneCount == 4 && m.rowsDone == 40)
        let join = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        #expect(Self.chunks(join, to: 1) == [3, 4])
        var handed: [Int] = [3, 4]
        var k = 0
        while !m.isFinished, k < 20 {
            let next = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(handed[k])), now: 1)
            handed += Self.chunks(next, to: 1)
            k += 1
        }
        #expect(handed == [3, 4, 6, 7, 8, 9])
        #expect(m.isFinished && m.acceptedChunks == 6 && m.rowsDone == Self.rows)
    }

    @Test func aFullyJournaledJobFinishesAtOnceAndSaysGoodbyeToLateWorkers() {
        var m = Self.machine(done: Set(0..<10))
        #expect(m.isFinished && m.start() == [.finished])
        let join = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        #expect(Self.messages(join, to: 1).contains { if case .goodbye = $0 { return true } else { return false } })
        #expect(Self.chunks(join, to: 1).isEmpty)
        #expect(m.tick(now: 5).isEmpty)
    }

    // MARK: Verification (--verify-fraction)

    @Test func whichChunksAreVerifiedIsAFixedFunctionOfTheIndexAndTheFraction() {
        let quarter = Self.machine(verify: 0.25).job
        let picked = (0..<10_000).filter { quarter.isVerified($0) }
        #expect(picked.count > 2_200 && picked.count < 2_800, "\(picked.count) of 10 000")
        #expect(picked == (0..<10_000).filter { Self.machine(verify: 0.25).job.isVerified($0) })
        #expect((0..<1000).allSatisfy { Self.machine(verify: 1).job.isVerified($0) })
        #expect(!(0..<1000).contains { Self.machine(verify: 0).job.isVerified($0) })
    }

    @Test func aVerifiedChunkGoesToTwoWorkersAndTwoEqualResultsDecideIt() {
        var m = Self.machine(verify: 1)
        let one = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)
        // Alone, worker 1 gets fresh chunks: a second copy must come from another worker.
        #expect(Self.chunks(one, to: 1) == [0, 1])
        let two = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)
        #expect(Self.chunks(two, to: 2) == [0, 1], "the second copies come first")
        #expect(Self.stored(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)).isEmpty, "one copy decides nothing")
        let decided = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0)), now: 1.1)
        #expect(Self.stored(decided) == [0])
        #expect(m.verifiedChunks == 1 && m.mismatches == 0 && m.isDone(0))
        // The same worker's copy twice is not a verification.
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(1)), now: 1.2)
        #expect(m.doneCount == 1)
    }

    @Test func aDisagreementIsSettledByAThirdWorkerAndTheOddOneIsQuarantined() {
        var m = Self.machine(verify: 1)
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)  // 0, 1
        _ = m.messageReceived(from: [3], bytes: Self.hello(3), now: 0)  // id 2: second copies of 0, 1
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)
        let differ = m.messageReceived(from: [3], bytes: Self.bytes(Self.result(0, tag: 1)), now: 1.1)
        #expect(differ.contains(.log(.verificationMismatch(chunk: 0, workers: [1, 2]))))
        #expect(Self.stored(differ).isEmpty && m.mismatches == 1)
        // A third worker joins and is given chunk 0 first.
        let third = m.messageReceived(from: [2], bytes: Self.hello(2), now: 1.2)
        #expect(Self.chunks(third, to: 2).first == 0)
        let settled = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0)), now: 1.3)
        #expect(Self.stored(settled) == [0])
        #expect(settled.contains(.log(.workerQuarantined(id: 2, name: "w3", chunk: 0))))
        #expect(Self.messages(settled, to: 3).contains { if case .goodbye = $0 { return true } else { return false } })
        #expect(m.liveWorkerIDs == [1, 3] && m.quarantined == [13])
        // The quarantined worker's hello (same instance, any identity) is turned away.
        let back = m.messageReceived(from: [9], bytes: Self.hello(3), now: 2)
        #expect(Self.chunks(back, to: 9).isEmpty && m.liveWorkerIDs == [1, 3])
        #expect(Self.messages(back, to: 9).contains { if case .goodbye = $0 { return true } else { return false } })
    }

    @Test func threeDifferentResultsFailTheJob() {
        var m = Self.machine(verify: 1)
        for n: UInt8 in 1...3 { _ = m.messageReceived(from: [n], bytes: Self.hello(n), now: 0) }
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0, tag: 1)), now: 1)
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0, tag: 2)), now: 1)
        let last = m.messageReceived(from: [3], bytes: Self.bytes(Self.result(0, tag: 3)), now: 1)
        #expect(last.contains { if case .failed = $0 { return true } else { return false } }, "\(last)")
        #expect(m.isFinished && m.doneCount == 0)
    }

    @Test func aWholeVerifiedJobFinishesWithEveryChunkComputedTwice() {
        var m = Self.machine(verify: 1)
        var outbox: [(UInt8, Int)] = []
        func take(_ actions: [Action]) {
            for case .sendChunk(let identity, let k) in actions { outbox.append((identity[0], k)) }
        }
        take(m.messageReceived(from: [1], bytes: Self.hello(1), now: 0))
        take(m.messageReceived(from: [2], bytes: Self.hello(2), now: 0))
        var computed: [Int: [UInt8]] = [:]
        var stored: [Int] = []
        while !outbox.isEmpty && !m.isFinished {
            let (n, k) = outbox.removeFirst()
            computed[k, default: []].append(n)
            let actions = m.messageReceived(from: [n], bytes: Self.bytes(Self.result(k)), now: 1)
            stored += Self.stored(actions)
            take(actions)
        }
        #expect(m.isFinished && stored.sorted() == Array(0..<10) && m.verifiedChunks == 10)
        #expect(computed.values.allSatisfy { Set($0) == [1, 2] }, "\(computed)")
    }

    /// The bad worker took part in two disagreements: once it is outvoted on one chunk and
    /// quarantined, the other chunk needs two agreeing copies again, not a third worker.
    @Test func aQuarantineResolvesTheOtherDisagreementsTheWorkerTookPartIn() {
        var m = Self.machine(verify: 1)
        _ = m.messageReceived(from: [1], bytes: Self.hello(1), now: 0)  // id 1: 0, 1
        _ = m.messageReceived(from: [2], bytes: Self.hello(2), now: 0)  // id 2 (bad): second copies of 0, 1
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(0)), now: 1)  // w1 now holds 1, 2
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(0, tag: 9)), now: 1)
        _ = m.messageReceived(from: [2], bytes: Self.bytes(Self.result(1, tag: 9)), now: 1)
        #expect(m.mismatches == 1, "chunk 1 has one copy so far")
        _ = m.messageReceived(from: [1], bytes: Self.bytes(Self.result(1)), now: 1.1)
        #expect(m.mismatches == 2)
        // Worker 3 settles chunk 0: worker 2 is quarantined; chunk 1 then waits for one more
        // agreeing copy (worker 3 already has it in flight), not for a fourth worker.
        let join = m.messageReceived(from: [3], bytes: Self.hello(3), now: 1.2)
        #expect(Self.chunks(join, to: 3) == [0, 1])
        let settled = m.messageReceived(from: [3], bytes: Self.bytes(Self.result(0)), now: 1.3)
        #expect(Self.stored(settled) == [0] && m.quarantined == [12])
        let second = m.messageReceived(from: [3], bytes: Self.bytes(Self.result(1)), now: 1.4)
        #expect(Self.stored(second) == [1], "\(second)")
        #expect(m.liveWorkerIDs == [1, 3] && !m.isFinished)
    }

    /// A lone worker cannot verify anything: it runs ahead only as far as the bound on undecided
    /// chunks (8 × in-flight), so their copies do not pile up in the coordinator's memory.
    @Test func aLoneWorkerRunsAheadOnlySoFarOnVerifiedChunks() {
        let job = ScoringStateMachine.Job(
            spec: Self.spec(), rowCount: 1000, chunkRows: 10, inFlightPerWorker: 2, heartbeatInterval: 0.25,
            heartbeatLiveness: 4, instance: 7, verifyFraction: 1)
        var m = ScoringStateMachine(job: job)
        var outbox = Self.chunks(m.messageReceived(from: [1], bytes: Self.hello(1), now: 0), to: 1)
        var handed = outbox
        while let k = outbox.first {
            outbox.removeFirst()
            let next = Self.chunks(m.messageReceived(from: [1], bytes: Self.bytes(Self.result(k, rows: 10)), now: 1), to: 1)
            handed += next
            outbox += next
        }
        #expect(handed == Array(0..<16), "\(handed)")
        #expect(m.doneCount == 0)
        // A second worker unblocks it: second copies first, then fresh chunks again.
        let two = Self.chunks(m.messageReceived(from: [2], bytes: Self.hello(2), now: 2), to: 2)
        #expect(two == [0, 1])
    }
}
