import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `tributary train`: fit a flow in one process, or on a local cluster of worker processes.
struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a RealNVP flow on a built-in dataset or a CSV/NPY file.",
        discussion: """
            Each step's batch is cut into micro-batches of --micro-batch rows drawn from a seeded, \
            sharded plan; their summed gradients are added in order and divided by the batch size, \
            then Adam is applied once. The model file is a deterministic function of the options: \
            the same with --workers N for any N as in one process. With --checkpoint-dir the full \
            training state is written atomically every --checkpoint-every steps; rerun the same \
            command with --resume to continue after an interruption, with the same bits as an \
            uninterrupted run.
            """
    )

    @OptionGroup var training: TrainingOptionGroup

    @OptionGroup(title: "Checkpoints")
    var checkpoints: CheckpointOptions

    @Option(help: "Micro-batches computed at once per process (one thread and one BLAS thread each); the result does not depend on it.")
    var threads: Int = 1

    @Option(help: "Train on a local cluster: a coordinator in this process and N worker processes over IPC.")
    var workers: Int?

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if training.sync == .parameters && workers == nil {
            throw ValidationError("--sync parameters averages the parameters of several workers: use it with --workers N (or tributary coordinator)")
        }
    }

    func run() throws {
        BLASThreads.set(1)
        switch training.shape.dtype {
        case .float32: try train(Float.self)
        case .float64: try train(Double.self)
        }
    }

    private func train<S: FlowScalar>(_: S.Type) throws {
        try checkpoints.adding(to: training.outputPlan).check()
        training.warnAboutModelName()
        try checkpoints.refuseStaleCheckpoint()
        let (data, model) = try training.prepare(S.self, lanes: threads, workerProcesses: workers ?? 0)
        let (policy, checkpoint) = try checkpoints.load(training, data: data, model: model)
        if let workers {
            try LocalClusterRun.train(
                training, checkpoints: checkpoints, data: data, model: model, workers: workers, threads: threads,
                policy: policy, resume: checkpoint)
            return
        }
        let stop = StopSignals()
        let trainer = try LocalTrainer(
            model: model, trainRows: data.trainRows, validationRows: data.validationRows,
            options: training.trainingOptions, threads: threads, checkpoint: policy, resume: checkpoint)
        StandardErrorLog.write(training.banner(data, model, where: "in one process"))
        let report = try training.reporter(workers: { 0 }, resumedAt: checkpoint?.step)
        var lastValidation = trainer.validationNLL()
        try checkpoints.exitingOnInterruption({
            try trainer.run(progress: { p in
                if let v = p.validationNLL { lastValidation = v }
                report(p)
            }, watch: { try stop.check() })
        }, position: { (trainer.step, trainer.lastCheckpointStep) })
        try training.finish(trainer.model, steps: trainer.step, validationNLL: lastValidation, monitor: trainer.monitor)
    }
}
