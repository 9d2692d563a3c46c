import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `tributary train`: fit a flow to a dataset in one process.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a RealNVP flow on a built-in dataset or a CSV/NPY file.",
        discussion: """
            Each step's batch is cut into micro-batches of --micro-batch rows drawn from a seeded, \
            sharded plan; their summed gradients are added in order and divided by the batch size, \
            then Adam is applied once. The model file is a deterministic function of the options.
            """
    )

    @Option(help: "A built-in dataset (moons, 8gaussians, checkerboard, rings, mixture:D) or a .csv/.tsv/.npy file.")
    var data: String

    @Option(help: "Rows to generate for a built-in dataset.")
    var rows: Int = 65536

    @Option(help: "Optimiser steps.")
    var steps: Int = 1000

    @Option(help: "Rows per step (global batch).")
    var batch: Int = 512

    @Option(name: .customLong("micro-batch"), help: "Rows per micro-batch (default: 256 when it divides --batch, else --batch).")
    var microBatch: Int?

    @OptionGroup(title: "Model")
    var shape: ModelShapeOptions

    @Option(help: "Adam learning rate.")
    var lr: Double = 1e-3

    @Option(name: .customLong("clip-norm"), help: "Clip the gradient norm to this value.")
    var clipNorm: Double?

    @Option(help: "Seed of the initialisation, the split and the batch plan.")
    var seed: UInt64 = 0

    @Option(name: .customLong("data-seed"), help: "Seed of a built-in dataset's generator (default: --seed).")
    var dataSeed: UInt64?

    @Option(help: "Fraction of the rows held out for validation.")
    var validation: Double = 0.1

    @Option(help: "Number of data shards of the batch plan (independent of the worker count).")
    var shards: Int = 64

    @Option(name: .customLong("eval-every"), help: "Evaluate the validation NLL every N steps.")
    var evalEvery: Int = 100

    @Option(help: "Micro-batches computed at once (one thread and one BLAS thread each); the result does not depend on it.")
    var threads: Int = 1

    @Option(help: "Where to write the model (safetensors).")
    var out: String

    @Option(help: "Write one JSON object per step to this file.")
    var metrics: String?

    func validate() throws {
        guard validation >= 0, validation < 1 else { throw ValidationError("--validation must be in [0, 1), found \(validation)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        let m = microBatch ?? (batch % 256 == 0 ? 256 : batch)
        guard batch >= 1, m >= 1, batch % m == 0 else {
            throw ValidationError("--batch \(batch) must be a positive multiple of --micro-batch \(m)")
        }
    }

    func run() throws {
        BLASThreads.set(1)
        switch shape.dtype {
        case .float32: try train(Float.self)
        case .float64: try train(Double.self)
        }
    }

    private func train<S: FlowScalar>(_: S.Type) throws {
        let table = try DataSource.load(data, rows: rows, seed: dataSeed ?? seed)
        let prepared: TrainingData<S>
        do {
            prepared = try TrainingData<S>(table: table, validationFraction: validation, seed: seed)
        } catch let error as TrainingError {
            throw CLIError("\(data): \(error)")
        }
        let config = FlowConfiguration(
            dimension: prepared.dimension, couplings: shape.couplings, hidden: shape.hidden, depth: shape.depth,
            standardize: shape.standardize)
        try config.validate()
        let model = try RealNVP<S>(
            configuration: config, seed: seed, standardization: shape.standardize ? try prepared.fittedStandardization() : nil)
        let options = TrainingOptions(
            steps: steps, batch: batch, microBatch: microBatch ?? (batch % 256 == 0 ? 256 : batch),
            learningRate: lr, clipNorm: clipNorm, seed: seed, shardCount: shards, evaluateEvery: evalEvery)
        let trainer = try LocalTrainer(model: model, trainRows: prepared.trainRows, validationRows: prepared.validationRows, options: options, threads: threads)

        FileHandle.standardError.write(Data((
            "training \(config.couplings) couplings × \(config.depth)×\(config.hidden) on \(data) "
            + "(\(prepared.trainCount) train / \(prepared.validationCount) validation rows, D=\(config.dimension), "
            + "\(config.parameterCount) parameters, \(S.dtypeName), batch \(options.batch) = "
            + "\(options.batch / options.microBatch)×\(options.microBatch))\n").utf8))
        let metricsLog = try metrics.map { try MetricsLog(path: $0) }
        let display = ProgressDisplay(total: steps, label: "step")
        var lastValidation: Double? = trainer.validationNLL()
        do {
            try trainer.run { p in
                if let v = p.validationNLL { lastValidation = v }
                var fields = [String(format: "loss %.4f", p.loss)]
                if let v = lastValidation { fields.append(String(format: "val %.4f", v)) }
                display.update(done: p.step, rate: p.rowsPerSecond / Double(options.batch), rateUnit: "steps/s",
                               fields: fields + ["\(ProgressDisplay.format(p.rowsPerSecond)) samples/s"],
                               important: p.validationNLL != nil && p.step % (options.evaluateEvery * 5) == 0)
                metricsLog?.write([
                    "step": Double(p.step), "loss": p.loss, "val_nll": p.validationNLL,
                    "samples_per_s": p.rowsPerSecond, "elapsed_s": p.elapsedSeconds,
                    "grad_norm": p.gradientNorm, "workers": 1,
                ])
            }
        } catch {
            display.finish()
            throw error
        }
        try ModelFile.write(trainer.model, to: out, info: ModelFileInfo(step: trainer.step, seed: seed))
        if let v = lastValidation {
            print(String(format: "validation NLL %.4f nats after %d steps; model written to %@", v, trainer.step, out))
        } else {
            print("trained \(trainer.step) steps; model written to \(out)")
        }
    }
}
