import FlowCluster
import FlowData
import Flows
import Foundation
import ZeroMQ

/// `bench --cluster`: training throughput of a local cluster (an in-process coordinator and W
/// worker processes over IPC, one thread each) and the share of a step not spent computing.
enum ClusterBench {
    struct Result {
        var workers: Int
        var samplesPerSecond: Double
        var stepSeconds: Double
        var computeSeconds: Double
        var commFraction: Double
        /// Each worker's own compute rate (rows per busy second), share and straggler mark over
        /// the measured steps.
        var perWorker: [WorkerFigures.Figure]
        /// Message bytes through the coordinator's socket per measured step, each way.
        var bytesSentPerStep: Double
        var bytesReceivedPerStep: Double
        /// `--exchange sharded`: message bytes the workers sent each other per measured step, in all.
        var peerBytesPerStep: Double
        /// `--exchange sharded`: bytes of the training-state copies the coordinator fetched, per
        /// measured step (included in `bytesReceivedPerStep`).
        var stateCopyBytesPerStep: Double
        /// P, the model's parameter count.
        var parameterCount: Int
    }

    /// Runs `steps` measured steps (after `warmup` steps that also move the shards) for each
    /// worker count; with `curve`, every connection is CURVE-encrypted and authenticated (fresh
    /// key pairs, the coordinator's ZAP handler checking the workers' key), as a secured
    /// cluster runs.
    static func run(
        config: BenchCommand.Config, workerCounts: [Int], steps: Int, warmup: Int, microBatch: Int, curve: Bool = false,
        exchange: Exchange = .star
    ) throws -> [Result] {
        let shape = config.shape
        let table = try BuiltinDataset(name: shape.data).generate(rows: 65536, seed: 0)
        let data = try TrainingData<Float>(table: table, validationFraction: 0, seed: 0)
        let flowConfig = FlowConfiguration(dimension: shape.dimension, couplings: shape.couplings, hidden: shape.hidden)
        let model = try RealNVP<Float>(configuration: flowConfig, seed: 0)
        let options = TrainingOptions(
            steps: warmup + steps, batch: shape.batch, microBatch: min(microBatch, shape.batch), seed: 0, evaluateEvery: Int.max)
        let perMicroBatch = try microBatchSeconds(model: model, data: data, options: options)
        let microBatches = options.batch / options.microBatch

        SignalCleanup.install()
        var results: [Result] = []
        for workers in workerCounts {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-bench-\(getpid())-\(workers)").path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let launcher = WorkerLauncher(executable: WorkerLauncher.currentExecutable)
            defer { launcher.terminateAll() }
            var security: ClusterSecurity.Server?
            var workerArguments: [String] = []
            if curve {
                let server = try CurveKeyPair.generate(), client = try CurveKeyPair.generate()
                try CurveKeyFile.write(server, directory: directory, name: "coordinator")
                try CurveKeyFile.write(client, directory: directory, name: "worker")
                security = ClusterSecurity.Server(
                    keyPair: server, authorizedKeys: AuthorizedKeyList(keys: [client.publicKey: "bench"]), log: { _ in })
                workerArguments = [
                    "--key", CurveKeyFile.secretPath(directory: directory, name: "worker"),
                    "--server-key", CurveKeyFile.publicPath(directory: directory, name: "coordinator"),
                ]
            }
            let coordinator = try Coordinator(
                model: model, data: data, options: options, bind: "ipc://\(directory)/coordinator", minimumWorkers: workers,
                security: security, exchange: exchange)
            var marks: [Double] = []
            var figures: [WorkerFigures.Figure] = []
            var traffic: (start: ClusterCounters, end: ClusterCounters)?
            var peerBytes: (start: UInt64, end: UInt64) = (0, 0)
            var copies = (start: 0, end: 0)
            var startError: Error?
            try coordinator.run(ready: { endpoint in
                do {
                    for i in 0..<workers {
                        try launcher.start(arguments: [
                            "worker", "--connect", endpoint, "--name", "bench-\(i + 1)", "--parent-pid", String(getpid()),
                            "--peer-endpoint", "ipc://\(directory)/peer-\(i + 1)",
                        ] + workerArguments)
                    }
                } catch { startError = error }
            }, progress: { p, _ in
                if p.step >= warmup { marks.append(p.elapsedSeconds) }
                // The figures and bytes of the measured steps: from the end of the warm-up to the last step.
                if p.step == warmup {
                    _ = coordinator.workerFigures()
                    traffic = (coordinator.counters, coordinator.counters)
                    peerBytes = (coordinator.machine.totalPeerBytesSent, coordinator.machine.totalPeerBytesSent)
                    copies = (coordinator.stateBytesFetched, coordinator.stateBytesFetched)
                }
                if p.step == warmup + steps {
                    figures = coordinator.workerFigures()
                    traffic?.end = coordinator.counters
                    peerBytes.end = coordinator.machine.totalPeerBytesSent
                    copies.end = coordinator.stateBytesFetched
                }
            })
            if let startError { throw startError }
            guard marks.count >= 2 else { continue }
            let stepSeconds = (marks.last! - marks.first!) / Double(marks.count - 1)
            let compute = Double((microBatches + workers - 1) / workers) * perMicroBatch
            results.append(Result(
                workers: workers, samplesPerSecond: Double(options.batch) / stepSeconds, stepSeconds: stepSeconds,
                computeSeconds: compute, commFraction: max(0, 1 - compute / stepSeconds), perWorker: figures,
                bytesSentPerStep: traffic.map { Double($0.end.bytesSent - $0.start.bytesSent) / Double(steps) } ?? 0,
                bytesReceivedPerStep: traffic.map { Double($0.end.bytesReceived - $0.start.bytesReceived) / Double(steps) } ?? 0,
                peerBytesPerStep: Double(peerBytes.end &- peerBytes.start) / Double(steps),
                stateCopyBytesPerStep: Double(copies.end - copies.start) / Double(steps), parameterCount: model.parameters.count))
        }
        return results
    }

    /// Median time of one micro-batch gradient on one thread in this process.
    static func microBatchSeconds(model: RealNVP<Float>, data: TrainingData<Float>, options: TrainingOptions) throws -> Double {
        BLASThreads.set(1)
        let lanes = GradientLanes<Float>(configuration: model.configuration, capacity: options.microBatch, lanes: 1)
        let positions = Array(0..<options.microBatch)
        var times: [Double] = []
        for _ in 0..<12 {
            let start = Date()
            lanes.compute(model: model, batches: [(data.trainRows, positions)])
            times.append(Date().timeIntervalSince(start))
        }
        return times.sorted()[times.count / 2]
    }
}
