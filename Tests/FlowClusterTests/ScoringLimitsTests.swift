import FlowWire
import Testing
@testable import FlowCluster

/// What the scoring machine gained from the shared `MembershipTable`: the hello rate limit, the
/// worker cap, a bounded table of invalid senders, and CURVE key revocation on quarantine. Same
/// job as `ScoringStateMachineTests`.
struct ScoringLimitsTests {
    typealias T = ScoringStateMachineTests

    static func machine(_ limits: ClusterLimits, verify: Double = 0) -> ScoringStateMachine {
        var job = T.machine(verify: verify).job
        job.limits = limits
        return ScoringStateMachine(job: job)
    }

    static func welcomes(_ actions: [ScoringStateMachine.Action]) -> Int {
        actions.filter { if case .send(_, .welcome) = $0 { return true } else { return false } }.count
    }

    @Test func aHelloBeyondTheWorkerCapIsRefusedWithCapacity() {
        var m = Self.machine(ClusterLimits(maxWorkers: 2))
        _ = m.messageReceived(from: [1], bytes: T.hello(1), now: 0)
        _ = m.messageReceived(from: [2], bytes: T.hello(2), now: 0)
        let third = m.messageReceived(from: [3], bytes: T.hello(3), now: 0)
        #expect(m.liveWorkerIDs == [1, 2] && m.refusedHellos == 1)
        #expect(T.messages(third, to: 3).map(\.kind) == [.error] && T.chunks(third, to: 3).isEmpty)
        #expect(third.contains { if case .log(.helloRefused(peer: [3], _, total: 1)) = $0 { return true } else { return false } })
    }

    @Test func aHelloFloodIsCutToTheRate() {
        var m = Self.machine(ClusterLimits(hellosPerSecond: 10, helloBurst: 4))
        var welcomes = 0, logs = 0
        for i in 0..<1000 {
            let actions = m.messageReceived(from: [9], bytes: T.hello(9), now: Double(i) * 0.0002)
            welcomes += Self.welcomes(actions)
            for case .log(.helloRefused) in actions { logs += 1 }
        }
        #expect(welcomes == 5 && m.refusedHellos == 995 && logs == 10, "\(welcomes) welcomes, \(logs) log lines")
        #expect(Self.welcomes(m.messageReceived(from: [8], bytes: T.hello(8), now: 2)) == 1, "the bucket refills")
    }

    @Test func invalidSendersAreTrackedUpToTheLimit() {
        var m = Self.machine(ClusterLimits(maxTrackedPeers: 16))
        var logLines = 0
        for peer in 0..<5000 {
            logLines += m.messageReceived(from: [UInt8(peer & 0xFF), UInt8(peer >> 8)], bytes: [1, 2, 3], now: 0).count
        }
        #expect(m.invalidMessages.count == 16 && m.membership.invalidMessagesFromUntrackedPeers == 5000 - 16)
        #expect(logLines == 17 && m.membership.invalidMessageCount == 5000)
    }

    /// With CURVE the driver passes each message's ZAP user id: the worker quarantined for a
    /// disagreeing copy has its key revoked, and a new process with that key is turned away.
    @Test func quarantineRevokesTheWorkersCurveKey() {
        var m = Self.machine(ClusterLimits(), verify: 1)
        func receive(_ n: UInt8, _ bytes: [UInt8], at now: Double) -> [ScoringStateMachine.Action] {
            m.messageReceived(from: [n], bytes: bytes, userID: "key-\(n)", now: now)
        }
        _ = receive(1, T.hello(1), at: 0)
        _ = receive(3, T.hello(3), at: 0)
        _ = receive(1, T.bytes(T.result(0)), at: 1)
        _ = receive(3, T.bytes(T.result(0, tag: 1)), at: 1.1)
        _ = receive(2, T.hello(2), at: 1.2)
        let settled = receive(2, T.bytes(T.result(0)), at: 1.3)
        #expect(settled.contains(.revokeKey("key-3")), "\(settled)")
        #expect(m.quarantinedKeys == ["key-3"] && m.quarantined == [13])
        // A new instance over a connection with the same key: refused.
        let back = WireMessage.hello(.init(
            instance: 99, processID: 1, name: "w3", host: "h",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))).encoded()
        let refused = receive(3, back, at: 2)
        #expect(Self.welcomes(refused) == 0 && T.messages(refused, to: 3).map(\.kind) == [.goodbye])
    }
}
