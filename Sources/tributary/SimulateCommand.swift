import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `tributary simulate`: projected step time and speed-up for many workers from a micro-batch's
/// measured compute time, the coordinator's measured update cost, and a link's bandwidth and
/// latency (`ClusterSimulation`).
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Project training step time for many workers from measured compute time, bandwidth and latency.",
        discussion: """
            The compute time of one micro-batch and the coordinator's cost to add a result and \
            apply Adam are measured here, on one thread, for the benchmark configuration \
            (override them with --micro-batch-ms, --add-ms, --apply-ms). Each step is then \
            replayed on a star network: the coordinator's link carries every parameter and \
            gradient message, the parameters to all workers at once (docs/operations.md, \
            "Scaling"); --link-efficiency is the share of the link's rate left for messages \
            after framing. It projects dedicated hosts; it \
            does not model stragglers or hosts shared by several processes.
            """)

    @Option(help: "toy2d, tab16 or wide64 (the model's shape and batch).")
    var config: BenchCommand.Config = .tab16

    @Option(help: "Rows per step (default: the configuration's).")
    var batch: Int?

    @Option(name: .customLong("micro-batch"), help: "Rows per micro-batch.")
    var microBatch: Int = 256

    @Option(help: "Worker counts to project, comma-separated.")
    var workers: String = "1,2,4,8,16,32,64"

    @Option(name: .customLong("bandwidth-gbit"), help: "The coordinator's link, Gbit/s in each direction.")
    var bandwidthGbit: Double = 10

    @Option(name: .customLong("latency-us"), help: "One-way message latency, microseconds.")
    var latencyMicroseconds: Double = 50

    @Option(name: .customLong("link-efficiency"), help: "Share of the link's rate that carries message bytes (TCP over Ethernet, MTU 1500: 0.94).")
    var linkEfficiency: Double = 1448.0 / 1538.0

    @Option(name: .customLong("micro-batch-ms"), help: "Compute time of one micro-batch (default: measured here).")
    var microBatchMilliseconds: Double?

    @Option(name: .customLong("add-ms"), help: "Coordinator time to add one result (default: measured here).")
    var addMilliseconds: Double?

    @Option(name: .customLong("apply-ms"), help: "Time of one Adam update (default: measured here).")
    var applyMilliseconds: Double?

    @Option(help: "gradients (exact, the default) or parameters (local SGD).")
    var sync: SyncMode = .gradients

    @Option(name: .customLong("local-steps"), help: "With --sync parameters: local steps per round.")
    var localSteps: Int = 8

    @Option(help: "star (the cluster as built, the default: one pre-reduced partial per worker through the coordinator), micro-batch-star (before 0.4.0: a gradient per micro-batch), sharded (reduce-scatter to segment owners, all-gather; planned), ring (a ring all-reduce, for reference), or all.")
    var exchange: ExchangeChoice?

    /// `--exchange`, or the cluster as built: `star` (`sync=parameters` has its own round model).
    var chosenExchange: ExchangeChoice { exchange ?? (sync == .parameters ? .microBatchStar : .star) }

    @Option(help: "With --exchange sharded: segments the parameters are cut into.")
    var segments: Int = 64

    @Flag(help: "One JSON object per worker count instead of a table.")
    var json = false

    var workerCounts: [Int] {
        get throws {
            let counts = workers.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard !counts.isEmpty, counts.allSatisfy({ ($0 ?? 0) >= 1 }) else {
                throw ValidationError("--workers must be a comma-separated list of positive counts, found \(workers)")
            }
            return counts.map { $0! }
        }
    }

    func validate() throws {
        _ = try workerCounts
        let B = batch ?? config.shape.batch
        guard microBatch >= 1, B >= microBatch, B % microBatch == 0 else {
            throw ValidationError("--batch \(B) must be a positive multiple of --micro-batch \(microBatch)")
        }
        guard bandwidthGbit > 0, bandwidthGbit.isFinite else { throw ValidationError("--bandwidth-gbit must be positive") }
        guard linkEfficiency > 0, linkEfficiency <= 1 else {
            throw ValidationError("--link-efficiency must be in (0, 1], found \(linkEfficiency)")
        }
        guard latencyMicroseconds >= 0, latencyMicroseconds.isFinite else { throw ValidationError("--latency-us must be at least 0") }
        for (name, value) in [("--micro-batch-ms", microBatchMilliseconds), ("--add-ms", addMilliseconds), ("--apply-ms", applyMilliseconds)] {
            if let value, !(value >= 0 && value.isFinite) { throw ValidationError("\(name) must be at least 0") }
        }
        guard localSteps >= 1 else { throw ValidationError("--local-steps must be at least 1") }
        guard segments >= 1 else { throw ValidationError("--segments must be at least 1, found \(segments)") }
        if sync == .parameters, let exchange, exchange != .microBatchStar {
            throw ValidationError("--exchange \(exchange.rawValue) models sync=gradients; --sync parameters has its own exchange")
        }
    }

    /// `--exchange`: one of the simulated exchanges, or all of them.
    enum ExchangeChoice: String, ExpressibleByArgument, CaseIterable {
        case microBatchStar = "micro-batch-star", star, sharded, ring, all

        var exchanges: [ClusterSimulation.Exchange] {
            self == .all ? ClusterSimulation.Exchange.allCases : [ClusterSimulation.Exchange(rawValue: rawValue)!]
        }
    }

    func run() throws {
        let shape = config.shape
        let B = batch ?? shape.batch
        let flowConfig = FlowConfiguration(dimension: shape.dimension, couplings: shape.couplings, hidden: shape.hidden)
        let P = flowConfig.parameterCount
        var costs = (microBatch: microBatchMilliseconds.map { $0 / 1000 }, add: addMilliseconds.map { $0 / 1000 },
                     apply: applyMilliseconds.map { $0 / 1000 })
        if costs.microBatch == nil || costs.add == nil || costs.apply == nil {
            let measured = try Self.measure(flowConfig, data: shape.data, microBatch: microBatch)
            costs.microBatch = costs.microBatch ?? measured.microBatch
            costs.add = costs.add ?? measured.add
            costs.apply = costs.apply ?? measured.apply
        }
        let model = ClusterSimulation(
            microBatchSeconds: costs.microBatch!, microBatchesPerStep: B / microBatch, messageBytes: Double(4 * P),
            bandwidth: bandwidthGbit * 1e9 / 8, latency: latencyMicroseconds * 1e-6, addSeconds: costs.add!,
            applySeconds: costs.apply!, localSteps: sync == .parameters ? localSteps : nil, linkEfficiency: linkEfficiency)
        let counts = try workerCounts
        let syncText = sync == .parameters ? "sync=parameters, H = \(localSteps)" : "sync=gradients"
        if !json {
            print("\(config.rawValue): P = \(P), batch \(B) = \(B / microBatch) × \(microBatch), \(syncText)")
            print(String(format: "micro-batch %.2f ms, add %.3f ms, Adam %.3f ms; link %.3g Gbit/s (%.0f %% payload), latency %.0f µs; message %.2f MB",
                         costs.microBatch! * 1000, costs.add! * 1000, costs.apply! * 1000, bandwidthGbit, linkEfficiency * 100, latencyMicroseconds,
                         Double(4 * P) / 1e6))
        }
        // One process: every micro-batch, the adds and one update, no messages.
        let oneProcess = Double(B / microBatch) * costs.microBatch! + Double(B / microBatch - 1) * costs.add! + costs.apply!
        for exchange in chosenExchange.exchanges {
            let projections = counts.map { model.project(workers: $0, exchange: exchange, segments: segments) }
            let base = projections.first!.stepSeconds
            if json {
                for p in projections {
                    let fields: [(String, String)] = [
                        ("config", "\"\(config.rawValue)\""), ("exchange", "\"\(exchange.rawValue)\""), ("workers", "\(p.workers)"),
                        ("busy_workers", "\(p.busyWorkers)"), ("step_seconds", "\(p.stepSeconds)"),
                        ("train_samples_per_s", "\(Double(B) / p.stepSeconds)"), ("speedup_vs_first", "\(base / p.stepSeconds)"),
                        ("speedup_vs_one_process", "\(oneProcess / p.stepSeconds)"), ("comm_fraction", "\(p.communicationShare)"),
                        ("link_utilisation", "\(p.linkUtilisation)"),
                    ]
                    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
                }
                continue
            }
            print("")
            if sync == .gradients { print("exchange \(exchange.rawValue)") }
            print("workers  step ms  samples/s  speed-up  vs 1 process  comm share  link busy")
            for p in projections {
                print(String(format: "%7d  %7.2f  %9.0f  %7.2f×  %11.2f×  %9.0f%%  %8.0f%%%@", p.workers, p.stepSeconds * 1000, Double(B) / p.stepSeconds,
                             base / p.stepSeconds, oneProcess / p.stepSeconds, p.communicationShare * 100, p.linkUtilisation * 100,
                             p.busyWorkers < p.workers ? "  (only \(p.busyWorkers) have work: B/m = \(B / microBatch))" : ""))
            }
        }
    }

    /// Median single-thread costs on this machine: one micro-batch gradient, adding a result to
    /// the running sum, and one Adam update.
    static func measure(_ configuration: FlowConfiguration, data: String, microBatch: Int) throws -> (microBatch: Double, add: Double, apply: Double) {
        BLASThreads.set(1)
        let table = try BuiltinDataset(name: data).generate(rows: max(4 * microBatch, 4096), seed: 0)
        let training = try TrainingData<Float>(table: table, validationFraction: 0, seed: 0)
        let model = try RealNVP<Float>(configuration: configuration, seed: 0)
        let options = TrainingOptions(steps: 1, batch: microBatch, microBatch: microBatch)
        let perMicroBatch = try ClusterBench.microBatchSeconds(model: model, data: training, options: options)
        let P = configuration.parameterCount
        let gradient = [Float](repeating: 1e-3, count: P)
        var sum = GradientSum<Float>(parameterCount: P)
        var optimizer = AdamOptimizer<Float>(parameterCount: P)
        var parameters = model.parameters
        func median(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<9 {
                let start = Date()
                try body()
                times.append(Date().timeIntervalSince(start))
            }
            return times.sorted()[times.count / 2]
        }
        sum.add(microBatchOf: 0, gradient: gradient, lossSum: 1, rows: microBatch)
        let add = median { sum.add(microBatchOf: 0, gradient: gradient, lossSum: 1, rows: microBatch) }
        let apply = try median {
            sum.reset()
            sum.add(microBatchOf: 0, gradient: gradient, lossSum: 1, rows: microBatch)
            _ = try optimizer.apply(&sum, to: &parameters, clipNorm: nil, step: 0)
        }
        return (perMicroBatch, add, apply)
    }
}
