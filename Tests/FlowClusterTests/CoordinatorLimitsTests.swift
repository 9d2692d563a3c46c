import FlowData
import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// `ClusterLimits` in the coordinator's state machine: the worker cap, the hello rate limit and
/// the bounded per-peer counters. Same job as `CoordinatorStateMachineTests`.
struct CoordinatorLimitsTests {
    typealias T = CoordinatorStateMachineTests

    static func machine(_ limits: ClusterLimits) throws -> CoordinatorStateMachine {
        let base = try T.machine()
        var job = base.job
        job.limits = limits
        return CoordinatorStateMachine(job: job)
    }

    static func hello(_ identity: [UInt8], _ n: Int) -> [UInt8] {
        WireMessage.hello(.init(
            instance: 1000 + UInt64(n), processID: 1, name: "p\(n)", host: "h",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))).encoded()
    }

    @Test func helloBeyondTheWorkerCapIsRefusedWithCapacity() throws {
        var m = try Self.machine(ClusterLimits(maxWorkers: 2))
        _ = m.messageReceived(from: [1], bytes: Self.hello([1], 1), now: 0)
        _ = m.messageReceived(from: [2], bytes: Self.hello([2], 2), now: 0)
        let third = m.messageReceived(from: [3], bytes: Self.hello([3], 3), now: 0)
        #expect(m.liveWorkerIDs == [1, 2])
        #expect(T.summary(third) == ["error [3] capacity", "hello refused [3] #1"], "\(T.summary(third))")
        #expect(m.refusedHellos == 1)
        // A registered worker saying hello again is not a new worker: it is started over.
        let again = m.messageReceived(from: [2], bytes: Self.hello([2], 2), now: 0.01)
        #expect(T.summary(again).contains("welcome [2]"))
        #expect(m.liveWorkerIDs.count == 2)
        // Once one leaves, the next hello gets in.
        _ = m.messageReceived(from: [1], bytes: WireMessage.goodbye(.init(reason: "")).encoded(), now: 0.02)
        _ = m.messageReceived(from: [3], bytes: Self.hello([3], 3), now: 0.03)
        #expect(m.liveWorkerIDs.count == 2)
        #expect(m.refusedHellos == 1)
    }

    @Test func aHelloFloodIsCutToTheRateAndLoggedLogarithmically() throws {
        var m = try Self.machine(ClusterLimits(hellosPerSecond: 10, helloBurst: 4))
        var logs = 0, welcomes = 0
        // 1000 hellos from one peer within 0.2 s: 4 (the burst) + 1 (refilled at 0.1 s) get through.
        for i in 0..<1000 {
            let actions = m.messageReceived(from: [9], bytes: Self.hello([9], i), now: Double(i) * 0.0002)
            for case .log(.helloRefused) in actions { logs += 1 }
            for case .send(_, .welcome) in actions { welcomes += 1 }
        }
        #expect(welcomes == 5, "welcomes \(welcomes)")
        #expect(m.refusedHellos == 995)
        #expect(logs == 10, "log lines for 995 refusals: \(logs)")  // 1, 2, 4, …, 512
        // A refused hello sends nothing back (no amplification).
        let refused = m.messageReceived(from: [9], bytes: Self.hello([9], 0), now: 0.2)
        #expect(!refused.contains { if case .send = $0 { return true } else { return false } })
        // The bucket refills with time.
        let later = m.messageReceived(from: [8], bytes: Self.hello([8], 8), now: 2)
        #expect(T.summary(later).contains("welcome [8]"))
    }

    @Test func invalidMessageCountersAreBoundedWhateverTheNumberOfPeers() throws {
        var m = try Self.machine(ClusterLimits(maxTrackedPeers: 16))
        var logLines = 0
        for peer in 0..<10_000 {
            let identity = withUnsafeBytes(of: UInt32(peer).littleEndian, Array.init)
            let actions = m.messageReceived(from: identity, bytes: [1, 2, 3], now: 0)
            logLines += actions.count
        }
        #expect(m.invalidMessages.count == 16)
        #expect(m.invalidMessagesFromUntrackedPeers == 10_000 - 16)
        #expect(logLines == 17)  // one per tracked peer, one for all the others
        // A tracked peer is still counted one by one.
        _ = m.messageReceived(from: withUnsafeBytes(of: UInt32(3).littleEndian, Array.init), bytes: [9], now: 0)
        #expect(m.invalidMessages[withUnsafeBytes(of: UInt32(3).littleEndian, Array.init)] == 2)
    }

    @Test func acceptedResultsForgetDepartedWorkers() throws {
        var m = try Self.machine(ClusterLimits())
        _ = m.messageReceived(from: [1], bytes: Self.hello([1], 1), now: 0)
        _ = m.messageReceived(from: [1], bytes: WireMessage.gradientResult(T.result(T.root(), step: 0)).encoded(), now: 0.1)
        #expect(m.acceptedResults[1] == 1)
        _ = m.unitApplied(now: 0.2)
        _ = m.messageReceived(from: [1], bytes: WireMessage.goodbye(.init(reason: "")).encoded(), now: 0.3)
        #expect(m.acceptedResults.isEmpty)
    }

    @Test func theLargestWorkerMessageBoundsAGradientResult() throws {
        for (P, dtype) in [(36, WireDType.float32), (2_499_072, .float32), (4744, .float64)] {
            let bound = ClusterLimits.largestWorkerMessage(parameterCount: P, dtype: dtype)
            let result = WireMessage.gradientResult(.init(
                jobID: 1, step: 1, version: 1, node: 1, rowCount: 1, lossSum: 0,
                gradient: dtype == .float32 ? .float32([Float](repeating: 0, count: P)) : .float64([Double](repeating: 0, count: P))))
            #expect(Int64(result.encodedByteCount) <= bound)
            #expect(bound <= Int64(result.encodedByteCount) + 4096 + ClusterLimits.transportOverhead)
        }
        let longHello = WireMessage.hello(.init(
            instance: 1, processID: 1, name: String(repeating: "n", count: 1024), host: String(repeating: "h", count: 1024),
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: String(repeating: "k", count: 1024), maxMicroBatchRows: 1)))
        #expect(Int64(longHello.encodedByteCount) <= ClusterLimits.largestWorkerMessage(parameterCount: 1, dtype: .float32))
    }
}
