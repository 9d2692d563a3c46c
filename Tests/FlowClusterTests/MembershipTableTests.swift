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
}
