import FlowCluster
import FlowData
import Flows
import Foundation

/// `bench --score`: rows/s of a whole scoring job on a local cluster — an in-process
/// coordinator reading an NPY file, W worker processes over IPC (one thread each), the journal
/// with its fsyncs, and the assembled output — for each worker count.
enum ScoreBench {
    struct Result {
        var workers: Int
        var rowsPerSecond: Double
        var runs: [Double]
    }

    /// Scores `rows` rows of the config's data (written once to a temporary NPY file) `repeats`
    /// times per worker count; the rate of a run is its rows over the time from the first
    /// worker's join to the finished output (worker start-up excluded).
    static func run(config: BenchCommand.Config, workerCounts: [Int], rows: Int, chunk: Int, repeats: Int) throws -> [Result] {
        let shape = config.shape
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-score-bench-\(getpid())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        SignalCleanup.install(removing: nil)

        let input = directory + "/x.npy"
        let block = try BuiltinDataset(name: shape.data).generate(rows: min(rows, 65536), seed: 0)
        let writer = try NPYWriter(path: input, columns: shape.dimension, dtype: .float32)
        var written = 0
        while written < rows {
            let n = min(block.rows, rows - written)
            try writer.append(values: block.values[0..<(n * shape.dimension)], rows: n)
            written += n
        }
        try writer.finish()
        let flowConfig = FlowConfiguration(dimension: shape.dimension, couplings: shape.couplings, hidden: shape.hidden)
        var model = try RealNVP<Float>(configuration: flowConfig, seed: 0)
        // Non-zero last layers, so that the flow is not the identity (the arithmetic is the same either way).
        for i in model.parameters.indices where model.parameters[i] == 0 { model.parameters[i] = 1e-3 }

        var results: [Result] = []
        for workers in workerCounts {
            var rates: [Double] = []
            for repeat_ in 0..<repeats {
                let source = try ScoringInput(path: input, chunkRows: chunk)
                let output = directory + "/lp-\(workers)-\(repeat_).npy"
                let journal = try ScoreJournal(
                    directory: output + ".journal", identity: .init(fields: [("bench", "\(workers)-\(repeat_)")]), resume: false)
                let outputWriter = try ScoreOutputWriter(
                    output: output, latent: nil, report: output + ".unscored.csv", dimension: shape.dimension, dtype: .float32)
                let job = ScoringStateMachine.Job(model: model, jobID: 1, rowCount: source.rowCount, chunkRows: chunk, wantLatent: false)
                let launcher = WorkerLauncher(executable: WorkerLauncher.currentExecutable)
                defer { launcher.terminateAll() }
                let clock = ContinuousClock()
                var firstJoin: ContinuousClock.Instant?
                let coordinator = ScoringCoordinator(
                    job: job, model: model, input: source, journal: journal, output: outputWriter,
                    bind: "ipc://\(directory)/coordinator-\(workers)-\(repeat_)",
                    log: { line in if firstJoin == nil && line.contains("joined") { firstJoin = clock.now } })
                var startError: Error?
                _ = try coordinator.run(ready: { endpoint in
                    do {
                        for i in 0..<workers {
                            try launcher.start(arguments: ["worker", "--connect", endpoint, "--name", "bench-\(i + 1)", "--parent-pid", String(getpid())])
                        }
                    } catch { startError = error }
                }, watch: {
                    if let startError { throw startError }
                    if launcher.running() == 0 { throw CLIError("the benchmark's workers exited") }
                })
                let end = clock.now
                try? FileManager.default.removeItem(atPath: output)
                guard let firstJoin else { continue }
                let c = (end - firstJoin).components
                rates.append(Double(rows) / (Double(c.seconds) + Double(c.attoseconds) * 1e-18))
            }
            guard !rates.isEmpty else { continue }
            let sorted = rates.sorted()
            results.append(Result(workers: workers, rowsPerSecond: sorted[sorted.count / 2], runs: rates))
        }
        return results
    }
}
