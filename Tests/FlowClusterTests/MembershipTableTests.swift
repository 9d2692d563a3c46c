import FlowWire
import Testing
@testable import FlowCluster

/// The membership both coordinator machines share, without sockets and without a job: the
/// hello gate (rate, quarantine by instance and key, cap, version, dtype), identities ↔ ids,
/// liveness, and the bounded invalid-sender table.
struct MembershipTableTests {
    struct Role: Sendable, Equatable { var note = 0 }
    typealias Table = MembershipTable<Role>

    static func table(_ limits: ClusterLimits = ClusterLimits()) -> Table {
        Table(limits: limits, dtype: .float32, heartbeatInterval: 0.25, heartbeatLiveness: 4, quarantineReply: "quarantined")
    }

    static func hello(_ n: Int, dtypes: WireDTypeSet = .all, versions: ClosedRange<UInt16>? = nil) -> WireMessage.Hello {
        var h = WireMessage.Hello(
            instance: 100 + UInt64(n), processID: 1, name: "w\(n)", host: "h",
            capabilities: .init(dtypes: dtypes, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))
        if let versions {
            h.minimumVersion = versions.lowerBound
            h.maximumVersion = versions.upperBound
        }
        return h
    }

    @Test func admittedHellosGetIncreasingIdsAndIdentitiesMapBothWays() {
        var t = Self.table()
        for n in 1...3 {
            #expect(t.judge(Self.hello(n), from: [UInt8(n)], key: nil, now: 0) == nil)
            #expect(t.add(Self.hello(n), from: [UInt8(n)], key: "k\(n)", role: Role(), now: 0) == UInt32(n))
        }
        #expect(t.liveIDs == [1, 2, 3] && t.id(of: [2]) == 2 && t.members[2]?.key == "k2")
        t.members[2]?.note = 5  // a role field reads as the member's own
        #expect(t.members[2]?.role.note == 5)
        #expect(t.remove(2)?.name == "w2")
        #expect(t.id(of: [2]) == nil && t.liveIDs == [1, 3])
        // A new registration of the same identity gets a new id.
        #expect(t.add(Self.hello(2), from: [2], key: nil, role: Role(), now: 0) == 4)
    }

    @Test func theRateLimitTheCapAndQuarantinesAreCountedAndLoggedLogarithmically() {
        var t = Self.table(ClusterLimits(maxWorkers: 1, hellosPerSecond: 10, helloBurst: 2))
        #expect(t.judge(Self.hello(1), from: [1], key: "a", now: 0) == nil)
        _ = t.add(Self.hello(1), from: [1], key: "a", role: Role(), now: 0)
        let full = t.judge(Self.hello(2), from: [2], key: nil, now: 0)
        #expect(full?.reply?.kind == .error && full?.log?.total == 1)
        let flood = t.judge(Self.hello(3), from: [3], key: nil, now: 0)
        #expect(flood?.reply == nil && flood?.log?.total == 2, "over the rate: no reply")
        #expect(t.judge(Self.hello(3), from: [3], key: nil, now: 0)?.log == nil, "the third refusal is not logged")
        #expect(t.refusedHellos == 3)
        // Quarantine by instance and by key; the key is revoked once.
        _ = t.remove(1)
        #expect(t.quarantine(instance: 101, key: "a") == "a")
        #expect(t.quarantine(instance: 101, key: "a") == nil)
        #expect(t.judge(Self.hello(1), from: [9], key: nil, now: 10)?.reply == .goodbye(.init(reason: "quarantined")))
        #expect(t.judge(Self.hello(7), from: [9], key: "a", now: 11)?.reply == .goodbye(.init(reason: "quarantined")))
        #expect(t.judge(Self.hello(7), from: [9], key: "b", now: 12) == nil)
    }

    @Test func versionAndDTypeRefusalsAnswerButAreNotCountedAsLimits() {
        var t = Self.table()
        let version = t.judge(Self.hello(1, versions: 90...91), from: [1], key: nil, now: 0)
        #expect(version?.reply?.kind == .error && version?.log == nil)
        let dtype = t.judge(Self.hello(1, dtypes: [.float64]), from: [1], key: nil, now: 0)
        #expect(dtype?.reply == .error(.init(code: .unsupportedDType, message: "the job needs float32")))
        #expect(t.refusedHellos == 0)
    }

    @Test func deathsAndHeartbeatsFollowWhatWasHeardAndSent() {
        var t = Self.table()
        _ = t.add(Self.hello(1), from: [1], key: nil, role: Role(), now: 0)
        _ = t.add(Self.hello(2), from: [2], key: nil, role: Role(), now: 0)
        t.heard(from: [2], now: 0.9)
        _ = t.send(2, now: 0.9)
        #expect(t.heartbeatDue(now: 1) == [1])
        #expect(t.dead(now: 1.01) == [1], "silent for more than 4 × 0.25 s")
        #expect(t.dead(now: 1.95) == [1, 2])
    }

    @Test func theInvalidSenderTableIsBounded() {
        var t = Self.table(ClusterLimits(maxTrackedPeers: 4))
        var logged = 0
        for peer in 0..<1000 where t.invalid(from: [UInt8(peer & 0xFF), UInt8(peer >> 8)], reason: "x") != nil { logged += 1 }
        #expect(t.invalidMessages.count == 4 && t.invalidMessagesFromUntrackedPeers == 996)
        #expect(logged == 5 && t.invalidMessageCount == 1000)
    }

    @Test func triageSeparatesHellosMembersStrangersAndWhatNobodyMaySend() {
        var t = Self.table()
        _ = t.add(Self.hello(1), from: [1], key: nil, role: Role(), now: 0)
        let result = WireMessage.gradientResult(.init(
            jobID: 1, step: 0, version: 0, node: 0, rowCount: 1, lossSum: 0, gradient: .float32([0])))
        let heartbeat = WireMessage.heartbeat(.init(sequence: 1))
        let goodbye = WireMessage.goodbye(.init(reason: "done"))
        func triage(_ m: WireMessage, from peer: UInt8, now: Double = 1) -> Table.Triage {
            t.triage(.message(m), from: [peer], results: [.gradientResult], now: now)
        }
        #expect(triage(.hello(Self.hello(2)), from: 2) == .hello(Self.hello(2)))
        #expect(triage(result, from: 1) == .fromMember(1, result))
        #expect(triage(result, from: 9) == .notRegistered)
        // A member's heartbeat is consumed and keeps it alive; a stranger's is not registered.
        #expect(triage(heartbeat, from: 1, now: 3) == .handled && t.members[1]?.lastHeard == 3)
        #expect(triage(heartbeat, from: 9) == .notRegistered)
        #expect(triage(goodbye, from: 1) == .fromMember(1, goodbye))
        #expect(triage(goodbye, from: 9) == .handled)
        // Results of a kind the job does not take, and coordinator-only kinds, are invalid from anyone.
        let scored = WireMessage.scoreResult(.init(
            jobID: 1, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.ok], logProbs: .float64([0]), latent: nil))
        #expect(triage(scored, from: 1) == .invalid(reason: "this job takes no scoreResult", reply: nil))
        #expect(triage(.assignment(.init(jobID: 1, step: 0, version: 0, items: [0])), from: 1)
            == .invalid(reason: "a worker may not send assignment", reply: nil))
        // Undecodable bytes are invalid, with the reply the edge decided on.
        let garbage = InboundMessage(decoding: [1, 2, 3])
        guard case .undecodable(let reason, nil) = garbage else { Issue.record("\(garbage)"); return }
        #expect(t.triage(garbage, from: [9], results: [], now: 1) == .invalid(reason: reason, reply: nil))
    }

    @Test func aHelloInAnotherProtocolVersionIsToldWhichOneTheCoordinatorSpeaks() {
        var bytes = WireMessage.hello(Self.hello(1)).encoded()
        bytes[4] = 0x63  // version 99
        guard case .undecodable(_, let reply?) = InboundMessage(decoding: bytes), case .error(let report) = reply else {
            Issue.record("no reply to a hello in version 99")
            return
        }
        #expect(report.code == .unsupportedVersion && report.message.contains("99"))
        bytes = WireMessage.heartbeat(.init(sequence: 1)).encoded()
        bytes[4] = 0x63
        guard case .undecodable(_, nil) = InboundMessage(decoding: bytes) else {
            Issue.record("a heartbeat in another version must get no reply")
            return
        }
    }
}
