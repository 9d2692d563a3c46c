import FlowData
import FlowWire
import Testing
@testable import FlowCluster

/// The coordinator's decisions without sockets: every event in every phase.
struct CoordinatorStateMachineTests {
    static let spec = WireMessage.JobSpec(
        jobID: 42, dtype: .float32,
        architecture: .init(dimension: 2, couplings: 2, hidden: 4, depth: 1),
        standardization: nil,
        mode: .training(.init(seed: 1, rowCount: 100, shardCount: 4, microBatchSize: 10, batchSize: 40, sync: .gradients)))

    static func machine(steps: Int = 3, minimumWorkers: Int = 1, checkpointEvery: Int? = nil) throws -> CoordinatorStateMachine {
        let plan = try BatchPlan(seed: 1, rowCount: 100, microBatchSize: 10, batchSize: 40, shardCount: 4)
        return CoordinatorStateMachine(job: .init(
            spec: spec, plan: plan, steps: steps, checkpointEvery: checkpointEvery, minimumWorkers: minimumWorkers,
            heartbeatInterval: 0.1, heartbeatLiveness: 4, instance: 7))
    }

    static func hello(_ instance: UInt64) -> [UInt8] {
        WireMessage.hello(.init(
            minimumVersion: 1, maximumVersion: 1, instance: instance, processID: 1, name: "w\(instance)", host: "h",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "k", maxMicroBatchRows: 1000))).encoded()
    }

    static func assignments(_ actions: [CoordinatorStateMachine.Action]) -> [[UInt8]: [UInt64]] {
        var result: [[UInt8]: [UInt64]] = [:]
        for case .send(let identity, .assignment(let a)) in actions { result[identity, default: []] += a.microBatches }
        return result
    }

    @Test func aWorkerIsWelcomedGivenTheJobRowsParametersAndWork() throws {
        var m = try Self.machine()
        let actions = m.messageReceived(from: [1], bytes: Self.hello(11), now: 0)
        var kinds: [String] = []
        for action in actions {
            switch action {
            case .send(_, let message): kinds.append("\(message.kind)")
            case .sendShard: kinds.append("shard")
            case .sendParameters: kinds.append("parameters")
            case .log: kinds.append("log")
            default: kinds.append("\(action)")
            }
        }
        #expect(kinds.prefix(2) == ["welcome", "jobSpec"], "\(kinds)")
        #expect(kinds.filter { $0 == "shard" }.count == 4, "\(kinds)")
        #expect(kinds.contains("parameters"))
        #expect(Self.assignments(actions)[[1]]?.count == 4)
    }
}
