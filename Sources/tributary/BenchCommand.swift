import ArgumentParser
import FlowCluster
import FlowData
import FlowRandom
import Flows
import Foundation
import ZeroMQ

/// `tributary bench`: the single-process figures of DESIGN §8.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure training, log-prob and sampling throughput for a benchmark configuration.",
        discussion: """
            Configurations (DESIGN §8): toy2d (D=2, 8 couplings, H=64, batch 512, two moons), \
            tab16 (D=16, 10 couplings, H=128, batch 1024, 8-component mixture), \
            wide64 (D=64, 8 couplings, H=512, batch 1024, 8-component mixture). Each rate is the \
            median of timed windows after a warm-up, as in the PyTorch peer harness.
            """
    )

    enum Config: String, ExpressibleByArgument, CaseIterable {
        case toy2d, tab16, wide64

        var shape: (data: String, dimension: Int, couplings: Int, hidden: Int, batch: Int) {
            switch self {
            case .toy2d: return ("moons", 2, 8, 64, 512)
            case .tab16: return ("mixture:16", 16, 10, 128, 1024)
            case .wide64: return ("mixture:64", 64, 8, 512, 1024)
            }
        }
    }

    @Option(help: "toy2d, tab16 or wide64.")
    var config: Config

    @Option(help: "Threads: micro-batches (training) or row chunks (log-prob, sampling) computed at once, one BLAS thread each.")
    var threads: Int = 1

    @Option(name: .customLong("micro-batch"), help: "Rows per micro-batch (default: 256, as `train`).")
    var microBatch: Int = 256

    @Option(name: .customLong("window-seconds"), help: "Length of one timed window.")
    var windowSeconds: Double = 0.6

    @Option(help: "Number of timed windows (the median is reported).")
    var windows: Int = 7

    @Flag(help: "Print one JSON object instead of a table (one per worker count with --cluster).")
    var json = false

    @Flag(help: "Measure a local cluster instead: a coordinator in this process and worker processes over IPC.")
    var cluster = false

    @Flag(help: "With --cluster: secure every connection with CURVE (encryption and a ZAP key check), to measure its cost.")
    var curve = false

    @Option(help: "With --cluster: the exchange to measure, star or sharded (default: as train and coordinator choose it — sharded, star with --curve; docs/operations.md).")
    var exchange: Exchange?

    @Flag(help: "Measure scoring instead: whole `score` jobs (an NPY file, the journal, the output) on a local cluster.")
    var score = false

    @Option(help: "Worker counts for --cluster (default 1,2,4) or --score (default 1,2), comma-separated.")
    var workers: String?

    @Option(name: .customLong("score-rows"), help: "Rows of the input scored by --score.")
    var scoreRows: Int = 1 << 20

    @Option(name: .customLong("score-chunk"), help: "Rows per chunk for --score.")
    var scoreChunk: Int = 65536

    @Option(name: .customLong("score-repeats"), help: "Jobs per worker count for --score (the median is reported).")
    var scoreRepeats: Int = 3

    @Option(help: "Steps timed per worker count with --cluster (after 5 warm-up steps).")
    var steps: Int = 30

    func run() throws {
        BLASThreads.set(1)
        if cluster {
            try runCluster()
            return
        }
        if score {
            try runScore()
            return
        }
        let shape = config.shape
        let evalBatch = 8192
        let table = try BuiltinDataset(name: shape.data).generate(rows: 65536, seed: 0)
        let data = table.values.map { Float($0) }
        let flowConfig = FlowConfiguration(dimension: shape.dimension, couplings: shape.couplings, hidden: shape.hidden)
        let model = try RealNVP<Float>(configuration: flowConfig, seed: 0)
        let options = TrainingOptions(
            steps: Int.max, batch: shape.batch, microBatch: min(microBatch, shape.batch), seed: 0)
        let trainer = try LocalTrainer(model: model, trainRows: data, validationRows: [], options: options, threads: threads)

        let train = Self.measure(items: shape.batch, windowSeconds: windowSeconds, windows: windows) {
            _ = try? trainer.trainStep()
        }
        let trained = trainer.model
        let workspaces = (0..<max(1, threads)).map { _ in InferenceWorkspace<Float>(configuration: flowConfig, capacity: 1024) }
        let x = Array(data[0..<(evalBatch * shape.dimension)])
        var out = [Float](repeating: 0, count: evalBatch)
        var samples = [Float](repeating: 0, count: evalBatch * shape.dimension)
        let logProb = Self.measure(items: evalBatch, windowSeconds: windowSeconds, windows: windows) {
            trained.logProbability(x, rows: evalBatch, into: &out, latent: nil, workspaces: workspaces)
        }
        var generator = SeededGenerator(seed: 0)
        let sample = Self.measure(items: evalBatch, windowSeconds: windowSeconds, windows: windows) {
            trained.sample(rows: evalBatch, generator: &generator, into: &samples, logProbability: &out, workspaces: workspaces)
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Int(usage.ru_maxrss) * 1024
        let macs = flowConfig.couplings * flowConfig.linearShapes.reduce(0) { $0 + $1.input * $1.output }

        if json {
            let fields: [(String, String)] = [
                ("config", "\"\(config.rawValue)\""), ("threads", "\(threads)"),
                ("train_samples_per_s", "\(train.median)"), ("logprob_rows_per_s", "\(logProb.median)"),
                ("sample_rows_per_s", "\(sample.median)"), ("peak_rss_bytes", "\(peak)"),
                ("train_min", "\(train.min)"), ("train_max", "\(train.max)"),
                ("logprob_min", "\(logProb.min)"), ("logprob_max", "\(logProb.max)"),
                ("sample_min", "\(sample.min)"), ("sample_max", "\(sample.max)"),
                ("batch", "\(shape.batch)"), ("micro_batch", "\(options.microBatch)"), ("eval_batch", "\(evalBatch)"),
                ("parameters", "\(flowConfig.parameterCount)"), ("dtype", "\"float32\""),
                ("train_gflops", "\(train.median * Double(6 * macs) / 1e9)"),
                ("blas", "\"\(BLASThreads.configuration.trimmingCharacters(in: .whitespaces))\""),
                ("blas_core", "\"\(BLASThreads.coreName)\""),
            ]
            print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
        } else {
            print("\(config.rawValue), \(threads) thread(s), float32, \(flowConfig.parameterCount) parameters, BLAS \(BLASThreads.coreName)")
            print("  train     \(ProgressDisplay.format(train.median)) samples/s  (batch \(shape.batch) = \(shape.batch / options.microBatch)×\(options.microBatch); windows \(ProgressDisplay.format(train.min))–\(ProgressDisplay.format(train.max)))")
            print("  log-prob  \(ProgressDisplay.format(logProb.median)) rows/s  (batch \(evalBatch))")
            print("  sample    \(ProgressDisplay.format(sample.median)) rows/s  (batch \(evalBatch))")
            print("  peak RSS  \(String(format: "%.1f", Double(peak) / 1_048_576)) MiB")
        }
    }

    private func runScore() throws {
        let counts = (workers ?? "1,2").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw CLIError("--workers must list positive worker counts, e.g. 1,2") }
        guard scoreRows >= 1, scoreChunk >= 1, scoreRepeats >= 1 else { throw CLIError("--score-rows, --score-chunk and --score-repeats must be positive") }
        let results = try ScoreBench.run(config: config, workerCounts: counts, rows: scoreRows, chunk: scoreChunk, repeats: scoreRepeats)
        let base = results.first?.rowsPerSecond ?? 0
        for r in results {
            if json {
                print("{\"config\": \"\(config.rawValue)\", \"workers\": \(r.workers), \"score_rows_per_s\": \(r.rowsPerSecond), "
                      + "\"runs\": [\(r.runs.map { "\($0)" }.joined(separator: ", "))], \"rows\": \(scoreRows), \"chunk\": \(scoreChunk), "
                      + "\"speedup_vs_first\": \(base > 0 ? r.rowsPerSecond / base : 0)}")
            } else {
                print(String(format: "%@ score, %d worker(s): %@ rows/s (%.2f× of %d worker(s)); %d rows in chunks of %d, median of %d jobs",
                             config.rawValue, r.workers, ProgressDisplay.format(r.rowsPerSecond), base > 0 ? r.rowsPerSecond / base : 0,
                             results.first?.workers ?? 1, scoreRows, scoreChunk, r.runs.count))
            }
        }
    }

    private func runCluster() throws {
        let exchange = self.exchange ?? (curve ? .star : .sharded)
        let counts = (workers ?? "1,2,4").split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw CLIError("--workers must list positive worker counts, e.g. 1,2,4") }
        guard steps >= 2 else { throw CLIError("--steps must be at least 2") }
        if curve && !ZeroMQ.has("curve") { throw CLIError("--curve: this libzmq was built without CURVE support") }
        let results = try ClusterBench.run(
            config: config, workerCounts: counts, steps: steps, warmup: 5, microBatch: microBatch, curve: curve, exchange: exchange)
        let base = results.first?.samplesPerSecond ?? 0
        for r in results {
            if json {
                print("{\"config\": \"\(config.rawValue)\", \"workers\": \(r.workers), \"train_samples_per_s\": \(r.samplesPerSecond), "
                      + "\"comm_fraction\": \(r.commFraction), \"step_seconds\": \(r.stepSeconds), \"compute_seconds_per_step\": \(r.computeSeconds), "
                      + "\"micro_batch\": \(microBatch), \"curve\": \(curve), \"exchange\": \"\(exchange.rawValue)\", \"speedup_vs_first\": \(base > 0 ? r.samplesPerSecond / base : 0), "
                      + "\"coordinator_bytes_sent_per_step\": \(r.bytesSentPerStep), \"coordinator_bytes_received_per_step\": \(r.bytesReceivedPerStep), "
                      + "\"bytes_sent_per_worker_per_step\": \((r.bytesReceivedPerStep - r.stateCopyBytesPerStep + r.peerBytesPerStep) / Double(r.workers)), "
                      + "\"state_copy_bytes_per_step\": \(r.stateCopyBytesPerStep), "
                      + "\"parameter_count\": \(r.parameterCount), "
                      + "\"per_worker\": [" + r.perWorker.map { f in
                          "{\"name\": \"\(f.name)\", \"rows_per_busy_s\": \(f.rowsPerSecond.map { "\($0)" } ?? "null"), \"share\": \(f.share), \"straggler\": \(f.straggler)}"
                      }.joined(separator: ", ") + "]}")
            } else {
                print(String(format: "%@%@%@ %d worker(s): %@ samples/s (%.2f× of %d), step %.2f ms, compute %.2f ms, communication/coordination %.0f%%",
                             config.rawValue, exchange == .sharded ? " sharded" : "", curve ? " (CURVE)" : "", r.workers, ProgressDisplay.format(r.samplesPerSecond), base > 0 ? r.samplesPerSecond / base : 0,
                             results.first?.workers ?? 1, r.stepSeconds * 1000, r.computeSeconds * 1000, r.commFraction * 100))
                if !r.perWorker.isEmpty { print("  " + r.perWorker.map(TrainingOptionGroup.describe).joined(separator: "  ")) }
            }
        }
    }

    /// Median, min and max of per-window rates after a warm-up of at least 1.5 s and 3 calls
    /// (the peer harness's `measure_rate`).
    static func measure(items: Int, windowSeconds: Double, windows: Int, _ body: () -> Void) -> (median: Double, min: Double, max: Double) {
        let clock = ContinuousClock()
        let start = clock.now
        var calls = 0
        var recent: [Double] = []
        while calls < 3 || (clock.now - start) < .milliseconds(1500) {
            let t = clock.now
            body()
            recent.append(Self.seconds(clock.now - t))
            calls += 1
            if clock.now - start > .seconds(30) { break }
        }
        let tail = recent.suffix(max(3, recent.count / 2)).sorted()
        let perCall = tail[tail.count / 2]
        let callsPerWindow = max(1, Int((windowSeconds / max(perCall, 1e-9)).rounded()))
        var rates: [Double] = []
        for _ in 0..<max(1, windows) {
            let t = clock.now
            for _ in 0..<callsPerWindow { body() }
            rates.append(Double(callsPerWindow * items) / Self.seconds(clock.now - t))
        }
        rates.sort()
        return (rates[rates.count / 2], rates.first!, rates.last!)
    }

    private static func seconds(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
