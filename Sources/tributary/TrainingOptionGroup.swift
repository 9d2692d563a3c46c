import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// The options that define a training run, shared by `train` and `coordinator`: the same
/// options give the same model file whichever command runs them.
struct TrainingOptionGroup: ParsableArguments {
    @Option(help: "A built-in dataset (moons, 8gaussians, checkerboard, rings, mixture:D) or a .csv/.tsv/.npy file.")
    var data: String

    @Option(parsing: .unconditional, help: "Rows to generate for a built-in dataset.")
    var rows: Int = 65536

    @Option(parsing: .unconditional, help: "Optimiser steps.")
    var steps: Int = 1000

    @Option(parsing: .unconditional, help: "Rows per step (global batch).")
    var batch: Int = 512

    @Option(name: .customLong("micro-batch"), parsing: .unconditional, help: "Rows per micro-batch, the unit of work (default: 256 when it divides --batch, else --batch).")
    var microBatch: Int?

    @OptionGroup(title: "Model")
    var shape: ModelShapeOptions

    @Option(parsing: .unconditional, help: "Adam learning rate.")
    var lr: Double = 1e-3

    @Option(name: .customLong("clip-norm"), parsing: .unconditional, help: "Clip the gradient norm to this value.")
    var clipNorm: Double?

    @Option(name: .customLong("lr-schedule"), help: "The learning rate after the warm-up: constant, or cosine (half a cosine from --lr down to --min-lr at --steps).")
    var lrSchedule: LearningRateSchedule.Kind = .constant

    @Option(parsing: .unconditional, help: "Linear warm-up steps: step t < W gets --lr × (t+1)/W.")
    var warmup: Int = 0

    @Option(name: .customLong("min-lr"), parsing: .unconditional, help: "The floor of --lr-schedule cosine.")
    var minLR: Double = 0

    @Option(name: .customLong("weight-decay"), parsing: .unconditional, help: "AdamW's decoupled weight decay λ (torch.optim.AdamW's rule: θ ← θ(1 − lr·λ) before the Adam step; 0: Adam).")
    var weightDecay: Double = 0

    @Flag(name: .customLong("keep-best"), help: "Write the parameters with the best validation NLL (checked every --eval-every steps) instead of the last; the model file records that step.")
    var keepBest = false

    @Option(name: .customLong("early-stop"), parsing: .unconditional, help: "Stop after N validation evaluations in a row without a better NLL.")
    var earlyStop: Int?

    @Option(help: "Seed of the initialisation, the split and the batch plan.")
    var seed: UInt64 = 0

    @Option(name: .customLong("data-seed"), help: "Seed of a built-in dataset's generator (default: --seed).")
    var dataSeed: UInt64?

    @Option(help: "Fraction of the rows held out for validation.")
    var validation: Double = 0.1

    @Option(parsing: .unconditional, help: "Number of data shards of the batch plan (independent of the worker count).")
    var shards: Int = 64

    @Option(name: .customLong("eval-every"), parsing: .unconditional, help: "Evaluate the validation NLL every N steps.")
    var evalEvery: Int = 100

    @Option(help: "How a cluster combines the workers' work: gradients (exact: the same bits as one process) or parameters (local SGD: --local-steps local Adam steps per round, then a row-weighted average of the workers' parameters; cheaper, different numbers).")
    var sync: SyncMode = .gradients

    @Option(help: "With --sync gradients, who combines the workers' partial gradients: sharded (workers send each parameter segment to its owner, owners fold and send the step's gradient to every worker; the coordinator carries only control messages) or star (the coordinator folds them, applies Adam and sends the parameters back). Both give the bits of one process. Default: sharded, except star with --sync parameters (sharded does not apply), --verify-fraction (star checks everything a worker contributes; sharded compares checked leaves by digest and does not check owners' folds) or CURVE (--key; star measured faster) (docs/operations.md, \"Choosing the exchange\").")
    var exchange: Exchange?

    @Option(name: .customLong("local-steps"), help: "With --sync parameters: local Adam steps per averaging round (H, default 8).")
    var localSteps: Int?

    @Option(help: "Where to write the model (safetensors).")
    var out: String

    @Option(help: "Write one JSON object per step to this file.")
    var metrics: String?

    @OptionGroup(title: "Monitoring")
    var monitoring: MonitoringOptions

    var effectiveMicroBatch: Int { microBatch ?? (batch % 256 == 0 ? 256 : batch) }

    func validate() throws {
        guard rows >= 2 else { throw ValidationError("--rows must be at least 2, found \(rows)") }
        guard validation >= 0, validation < 1 else { throw ValidationError("--validation must be in [0, 1), found \(validation)") }
        let m = effectiveMicroBatch
        guard batch >= 1, m >= 1, batch % m == 0 else {
            throw ValidationError("--batch \(batch) must be a positive multiple of --micro-batch \(m)")
        }
        do {
            try trainingOptions.validate()
        } catch {
            throw ValidationError(error.description)
        }
        try Self.checkModelName(out)
        if (keepBest || earlyStop != nil) && validation == 0 {
            throw ValidationError("\(keepBest ? "--keep-best" : "--early-stop") compares the validation NLL: it needs --validation above 0 (e.g. --validation 0.1)")
        }
        if exchange == .sharded, sync == .parameters {
            throw ValidationError("--exchange sharded combines gradients: it needs --sync gradients")
        }
        if let localSteps {
            guard sync == .parameters else { throw ValidationError("--local-steps applies to --sync parameters only") }
            guard (1...1_000_000).contains(localSteps) else { throw ValidationError("--local-steps must be in 1...1000000, found \(localSteps)") }
        }
    }

    var trainingOptions: TrainingOptions {
        TrainingOptions(
            steps: steps, batch: batch, microBatch: effectiveMicroBatch, learningRate: lr, clipNorm: clipNorm,
            seed: seed, shardCount: shards, evaluateEvery: evalEvery,
            localSteps: sync == .parameters ? (localSteps ?? 8) : nil, scheduleKind: lrSchedule, warmupSteps: warmup,
            minimumLearningRate: minLR, weightDecay: weightDecay, keepBest: keepBest, earlyStop: earlyStop)
    }

    /// `--out` is always safetensors: a data-file extension would mislead whoever reads it, so
    /// it is refused; another extension only gets a warning.
    static func checkModelName(_ out: String) throws {
        let ext = (out as NSString).pathExtension.lowercased()
        if ["npy", "npz", "csv", "tsv", "pt", "pth"].contains(ext) {
            throw ValidationError("--out \(out): the model is written as safetensors, not .\(ext); name it .safetensors")
        }
    }

    /// Warns on standard error when `--out` does not end in `.safetensors`.
    func warnAboutModelName() {
        if (out as NSString).pathExtension.lowercased() != "safetensors" {
            StandardErrorLog.write("warning: --out \(out): the model is written in safetensors format whatever the name; .safetensors is the usual extension")
        }
    }

    /// The files a run reads and writes: the data file (when `--data` is one), `--out` and
    /// `--metrics`; a command adds its own (`--checkpoint-dir`) before checking.
    var outputPlan: OutputPlan {
        OutputPlan()
            .reading("--data", FileManager.default.fileExists(atPath: data) ? data : nil)
            .writing("--out", out)
            .writing("--metrics", metrics)
            .writing("--tensorboard", monitoring.tensorboard, kind: .directory)
            .writing("--prometheus-textfile", monitoring.prometheusTextfile)
    }

    /// The identity of the prepared data, as checkpoints record it.
    func dataIdentity<S: FlowScalar>(_ prepared: TrainingData<S>) -> TrainingDataIdentity {
        let builtin = !FileManager.default.fileExists(atPath: data)
        return TrainingDataIdentity(
            prepared, source: data, rows: builtin ? rows : nil, dataSeed: builtin ? (dataSeed ?? seed) : nil,
            validationFraction: validation, standardize: shape.standardize)
    }

    /// Loads and splits the data and builds the initial model, after checking that the run fits
    /// in memory (`lanes` micro-batches at once in each of 1 + `workerProcesses` processes).
    func prepare<S: FlowScalar>(_: S.Type, lanes: Int = 1, workerProcesses: Int = 0) throws -> (data: TrainingData<S>, model: RealNVP<S>) {
        let table = try DataSource.load(data, rows: rows, seed: dataSeed ?? seed)
        let prepared: TrainingData<S>
        do {
            prepared = try TrainingData<S>(table: table, validationFraction: validation, seed: seed)
        } catch let error as TrainingError {
            throw CLIError("\(data): \(error)")
        }
        do {
            try trainingOptions.validate(validationRows: prepared.validationCount)
        } catch {
            throw ValidationError("\(data): \(error.description)")
        }
        let config = FlowConfiguration(
            dimension: prepared.dimension, couplings: shape.couplings, hidden: shape.hidden, depth: shape.depth,
            standardize: shape.standardize)
        do {
            try config.validate()
        } catch {
            throw ValidationError(error.description)
        }
        try MemoryBudget(
            configuration: config, scalarBytes: MemoryLayout<S>.size, microBatch: effectiveMicroBatch,
            lanes: min(lanes, batch / effectiveMicroBatch), workerProcesses: workerProcesses,
            dataValues: table.rows * table.columns, keepBest: keepBest
        ).check()
        var standardization: Standardization<S>?
        if shape.standardize {
            let fitted = try prepared.fittedStandardizationReportingConstantColumns()
            standardization = fitted.standardization
            for column in fitted.constantColumns {
                let name = table.columnNames.map { " (\"\($0[column])\")" } ?? ""
                StandardErrorLog.write(
                    "warning: --standardize: column \(column + 1)\(name) of \(data) is constant over the training rows; "
                        + "it keeps σ = 1, and the flow can shrink that axis without bound (the NLL then falls without limit): drop the column")
            }
        }
        let model = try RealNVP<S>(configuration: config, seed: seed, standardization: standardization)
        return (prepared, model)
    }

    /// The banner printed before training.
    func banner<S: FlowScalar>(_ data: TrainingData<S>, _ model: RealNVP<S>, where place: String) -> String {
        let c = model.configuration
        let o = trainingOptions
        let sync = o.localSteps.map { ", sync=parameters with \($0) local steps per round" } ?? ""
        var controls: [String] = []
        if !o.schedule.isConstant {
            controls.append("lr \(o.learningRate) \(o.scheduleKind.rawValue)" + (o.warmupSteps > 0 ? " after \(o.warmupSteps) warm-up steps" : "")
                + (o.minimumLearningRate > 0 ? " to \(o.minimumLearningRate)" : ""))
        }
        if o.weightDecay > 0 { controls.append("AdamW λ \(o.weightDecay)") }
        if o.keepBest { controls.append("keep-best") }
        if let n = o.earlyStop { controls.append("early stop after \(n) evaluations without improvement") }
        let extra = controls.isEmpty ? "" : "; " + controls.joined(separator: ", ")
        return "training \(c.couplings) couplings × \(c.depth)×\(c.hidden) on \(self.data) "
            + "(\(data.trainCount) train / \(data.validationCount) validation rows, D=\(c.dimension), "
            + "\(c.parameterCount) parameters, \(S.dtypeName), batch \(o.batch) = \(o.batch / o.microBatch)×\(o.microBatch)\(sync)\(extra)) \(place)\n"
    }

    /// A progress reporter for the display and the metrics file.
    ///
    /// - Parameter perWorker: micro-batches each live worker has computed so far (cluster runs),
    ///   shown as per-worker samples/s.
    /// - Parameter resumedAt: the step a resumed run starts from: the metrics file keeps its lines
    ///   up to that step and the new ones are appended (a fresh run truncates it).
    func reporter(
        workers: @escaping () -> Int, perWorker: @escaping () -> [WorkerFigures.Figure] = { [] }, resumedAt: Int? = nil,
        counters: @escaping () -> ClusterCounters? = { nil }
    ) throws -> (TrainingProgress) -> Void {
        let metricsLog = try metrics.map { try MetricsLog(path: $0, keepingStepsThrough: resumedAt) }
        let exporters = try RunExporters(tensorboard: monitoring.tensorboard, prometheus: monitoring.prometheusTextfile, resumedAt: resumedAt)
        var previous: (step: Int, elapsed: Double)? = nil
        var lastReport: (step: Int, elapsed: Double)? = nil
        var exchange = (seconds: 0.0, steps: 0)
        let display = ProgressDisplay(total: steps, label: "step")
        let o = trainingOptions
        var lastValidation: Double? = nil
        return { p in
            if let v = p.validationNLL { lastValidation = v }
            var fields = [String(format: "loss %.4f", p.loss)]
            if let v = lastValidation { fields.append(String(format: "val %.4f", v)) }
            let w = workers()
            if w > 0 { fields.append("\(w) workers") }
            let figures = perWorker()
            // The part of this step not spent computing on its busiest worker (cluster runs).
            if let busiest = figures.map(\.busySeconds).max(), let last = lastReport, p.step > last.step {
                exchange.seconds += max(0, p.elapsedSeconds - last.elapsed - busiest)
                exchange.steps += p.step - last.step
            }
            lastReport = (p.step, p.elapsedSeconds)
            if !figures.isEmpty {
                fields.append(figures.map(Self.describe).joined(separator: " "))
            }
            display.update(done: p.step, rate: p.rowsPerSecond / Double(o.batch), rateUnit: "steps/s",
                           fields: fields + ["\(ProgressDisplay.format(p.rowsPerSecond)) samples/s"],
                           important: p.validationNLL != nil && p.step % (o.evaluateEvery * 5) == 0)
            var line: [(String, Double?)] = [
                ("step", Double(p.step)), ("loss", p.loss), ("val_nll", p.validationNLL),
                ("samples_per_s", p.rowsPerSecond), ("elapsed_s", p.elapsedSeconds),
                ("grad_norm", p.gradientNorm > 0 ? p.gradientNorm : nil), ("workers", Double(max(w, 1))),
                ("lr", o.schedule.isConstant ? nil : p.learningRate),
            ]
            for f in figures {
                line += [("w\(f.id)_rows_per_s", f.rowsPerSecond), ("w\(f.id)_share", f.share), ("w\(f.id)_straggler", f.straggler ? 1 : 0)]
            }
            metricsLog?.write(line)
            let lr = p.learningRate
            var scalars: [(tag: String, value: Double)] = [("loss", p.loss), ("learning_rate", lr), ("samples_per_s", p.rowsPerSecond), ("workers", Double(max(w, 1)))]
            for f in figures {
                if let r = f.rowsPerSecond { scalars.append(("workers/\(f.name)/rows_per_s", r)) }
                scalars.append(("workers/\(f.name)/share", f.share))
            }
            if let v = p.validationNLL { scalars.append(("validation_nll", v)) }
            if p.gradientNorm > 0 { scalars.append(("grad_norm", p.gradientNorm)) }
            exporters.tensorboard(step: p.step, scalars)
            let final = p.step >= o.steps || p.stoppedEarly
            if exporters.prometheusDue(now: p.elapsedSeconds, final: final) {
                var file = PrometheusTextFile()
                file.add("tributary_step", .gauge, help: "Optimiser steps completed.", value: Double(p.step))
                file.add("tributary_steps", .gauge, help: "Optimiser steps the run will take.", value: Double(o.steps))
                let stepsPerSecond = previous.map { Double(p.step - $0.step) / max(p.elapsedSeconds - $0.elapsed, 1e-9) } ?? p.rowsPerSecond / Double(o.batch)
                file.add("tributary_steps_per_second", .gauge, help: "Steps per second since the previous report.", value: stepsPerSecond)
                file.add("tributary_samples_per_second", .gauge, help: "Training rows per second since the run started.", value: p.rowsPerSecond)
                file.add("tributary_loss", .gauge, help: "Mean NLL of the last step's batch (nats per row).", value: p.loss)
                if let v = lastValidation { file.add("tributary_validation_nll", .gauge, help: "Mean NLL of the validation rows at the last evaluation.", value: v) }
                file.add("tributary_learning_rate", .gauge, help: "The learning rate of the last step.", value: lr)
                file.add("tributary_finished", .gauge, help: "1 once the run has taken its last step.", value: final ? 1 : 0)
                for f in figures {
                    let labels = [("worker", f.name), ("id", String(f.id))]
                    if let r = f.rowsPerSecond {
                        file.add("tributary_worker_rows_per_second", .gauge, help: "Rows each worker computes per busy second (its own compute rate).", value: r, labels: labels)
                    }
                    file.add("tributary_worker_share", .gauge, help: "Each worker's part of the rows since the previous report.", value: f.share, labels: labels)
                    file.add("tributary_worker_straggler", .gauge, help: "1 for a worker below half the median rate, or demoted.", value: f.straggler ? 1 : 0, labels: labels)
                }
                if exchange.steps > 0 {
                    file.add("tributary_exchange_seconds", .gauge, help: "Seconds per step, since the previous write, not spent computing on the step's busiest worker (the exchange, the update, any waiting).",
                             value: exchange.seconds / Double(exchange.steps))
                    exchange = (0, 0)
                }
                if let c = counters() { file.add(c) } else {
                    file.add("tributary_live_workers", .gauge, help: "Workers registered with the coordinator.", value: Double(w))
                }
                exporters.prometheus(file, now: p.elapsedSeconds)
                previous = (p.step, p.elapsedSeconds)
            }
            if p.stoppedEarly, let n = o.earlyStop {
                StandardErrorLog.write("early stop at step \(p.step) of \(o.steps): the validation NLL has not improved for \(n) evaluation\(n == 1 ? "" : "s") in a row")
            }
        }
    }

    /// A worker in the progress line: `w1 48,210/s 52%`, with `straggler` when it is one.
    static func describe(_ f: WorkerFigures.Figure) -> String {
        let rate = f.rowsPerSecond.map { ProgressDisplay.format($0) + "/s" } ?? "–"
        return "\(f.name) \(rate) \(Int((f.share * 100).rounded()))%" + (f.straggler ? " straggler" : "")
    }

    /// Writes the model and prints the closing line. With `--keep-best` the model holds the best
    /// parameters the monitor kept; its `step` is that step and its metadata records
    /// `best_step`, `best_validation_nll` and `trained_steps` (the steps actually run).
    func finish<S: FlowScalar>(_ model: RealNVP<S>, steps done: Int, validationNLL: Double?, monitor: ValidationMonitor<S>) throws {
        var metadata: [String: String] = [:]
        if let stopped = monitor.state.stoppedAt { metadata["early_stop_step"] = String(stopped) }
        if monitor.keepBest, let best = monitor.bestParameters, let step = monitor.state.bestStep, let nll = monitor.state.bestNLL {
            var kept = model
            kept.parameters = best
            metadata["best_step"] = String(step)
            metadata["best_validation_nll"] = "\(nll)"
            metadata["trained_steps"] = String(done)
            try ModelFile.write(kept, to: out, info: ModelFileInfo(step: step, seed: seed, metadata: metadata))
            StandardErrorLog.write(String(format: "keep-best: writing the parameters of step %d (validation NLL %.4f), the best of the run's evaluations", step, nll))
            print(String(format: "best validation NLL %.4f nats at step %d of %d trained; model written to %@", nll, step, done, out))
            return
        }
        if monitor.keepBest {
            StandardErrorLog.write("warning: --keep-best: no evaluation gave a finite validation NLL; writing the last parameters")
        }
        try ModelFile.write(model, to: out, info: ModelFileInfo(step: done, seed: seed, metadata: metadata))
        if let v = validationNLL {
            print(String(format: "validation NLL %.4f nats after %d steps; model written to %@", v, done, out))
        } else {
            print("trained \(done) steps; model written to \(out)")
        }
    }
}

/// How a cluster combines its workers' work (`--sync`).
enum SyncMode: String, ExpressibleByArgument, CaseIterable {
    /// Per-micro-batch gradients summed in order: bit-identical to one process.
    case gradients
    /// Local SGD: workers take local steps, the coordinator averages parameters.
    case parameters
}

extension LearningRateSchedule.Kind: ExpressibleByArgument {}

extension Exchange: ExpressibleByArgument {}

extension TrainingOptionGroup {
    /// The exchange a cluster run uses: `--exchange` when given, else the rule of
    /// docs/operations.md ("Choosing the exchange"): `sharded`, except `star` with `--sync
    /// parameters` (it exchanges parameters), `--verify-fraction` (under star the check covers
    /// everything a worker contributes; under sharded an owner's fold is not checked) or CURVE
    /// (`curve`; on the 2-core test machine star was faster under CURVE).
    func resolvedExchange(curve: Bool, verifyFraction: Double) -> Exchange {
        if let exchange { return exchange }
        return sync == .parameters || verifyFraction > 0 || curve ? .star : .sharded
    }
}
