import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `tributary coordinator`: run a training job for workers that connect to it.
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Coordinate a training job: bind an endpoint, shard the data over the workers that join, combine their gradients.",
        discussion: """
            Start workers with `tributary worker --connect ENDPOINT` on any host that can reach the \
            endpoint. With the default --sync gradients the final model is the same bits as `tributary train` with the same options, \
            whatever the number of workers and whoever computed what. With --checkpoint-dir the full \
            training state is written atomically every --checkpoint-every steps (rounds with \
            --sync parameters); rerun the same command with --resume to continue after a crash.
            """)

    @OptionGroup var training: TrainingOptionGroup

    @Option(help: "Endpoint to bind, e.g. tcp://127.0.0.1:5570, tcp://*:5570 (with --insecure) or ipc:///tmp/tributary.ipc.")
    var bind: String

    @Option(name: .customLong("min-workers"), help: "Workers to wait for before the first step.")
    var minWorkers: Int = 1

    @Option(name: .customLong("checkpoint-dir"), help: "Directory for the training checkpoint.")
    var checkpointDir: String?

    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every N steps (rounds with --sync parameters; with --checkpoint-dir).")
    var checkpointEvery: Int = 100

    @Flag(help: "Continue from the checkpoint in --checkpoint-dir (written by a run with the same options; --steps may be larger).")
    var resume = false

    @Flag(name: .customLong("overwrite-checkpoints"), help: "Start from step 0 even when --checkpoint-dir holds a checkpoint, replacing it at the first checkpoint.")
    var overwriteCheckpoints = false

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in milliseconds; a peer silent for 8 intervals is dead.")
    var heartbeatMilliseconds: Int = 250

    @OptionGroup var security: CoordinatorSecurityOptions

    @Option(name: .customLong("max-workers"), help: "The most workers registered at once; further hellos are refused.")
    var maxWorkers: Int = 1024

    @Option(name: .customLong("verify-fraction"), help: "Compute this fraction of micro-batches twice, on two workers (or here), and quarantine a worker whose bits disagree (0...1).")
    var verifyFraction: Double = 0

    @Option(name: .customLong("hello-rate"), help: "Hellos accepted per second over all peers (bursts of up to 64).")
    var helloRate: Double = 20

    func validate() throws {
        guard minWorkers >= 1 else { throw ValidationError("--min-workers must be at least 1") }
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        if resume && checkpointDir == nil { throw ValidationError("--resume needs --checkpoint-dir") }
        if overwriteCheckpoints && (resume || checkpointDir == nil) {
            throw ValidationError("--overwrite-checkpoints goes with --checkpoint-dir and without --resume")
        }
        guard maxWorkers >= 1 else { throw ValidationError("--max-workers must be at least 1") }
        guard helloRate > 0, helloRate.isFinite else { throw ValidationError("--hello-rate must be positive") }
        guard (0...1).contains(verifyFraction) else { throw ValidationError("--verify-fraction must be in [0, 1], found \(verifyFraction)") }
    }

    func run() throws {
        BLASThreads.set(1)
        switch training.shape.dtype {
        case .float32: try coordinate(Float.self)
        case .float64: try coordinate(Double.self)
        }
    }

    private func coordinate<S: FlowScalar>(_: S.Type) throws {
        try training.outputPlan.writing("--checkpoint-dir", checkpointDir, kind: .directory).check()
        training.warnAboutModelName()
        if let checkpointDir, !resume, !overwriteCheckpoints {
            let path = TrainingCheckpoint<S>.path(in: checkpointDir)
            if FileManager.default.fileExists(atPath: path) {
                throw CLIError("--checkpoint-dir \(checkpointDir) holds a checkpoint (\(path)): pass --resume to continue that run, --overwrite-checkpoints to start over and replace it, or choose another directory")
            }
        }
        // The endpoint and the keys are checked before the data is read or generated.
        let security = try self.security.server(endpoint: bind)
        let (data, model) = try training.prepare(S.self)
        // The digest reads every training row: only a run that checkpoints needs it.
        let policy = checkpointDir.map { CheckpointPolicy(directory: $0, every: checkpointEvery, data: training.dataIdentity(data)) }
        var checkpoint: TrainingCheckpoint<S>? = nil
        if resume, let policy {
            let path = TrainingCheckpoint<S>.path(in: policy.directory)
            if FileManager.default.fileExists(atPath: path) {
                let found = try TrainingCheckpoint<S>.read(from: path)
                try found.checkResumable(
                    options: training.trainingOptions, configuration: model.configuration, data: policy.data ?? training.dataIdentity(data), path: path,
                    warn: { StandardErrorLog.write($0) })
                checkpoint = found
                StandardErrorLog.write("resuming from \(path) at step \(found.step)")
            } else {
                StandardErrorLog.write("no checkpoint at \(path) yet; starting from step 0")
            }
        }
        let coordinator = try Coordinator(
            model: model, data: data, options: training.trainingOptions, bind: bind, minimumWorkers: minWorkers,
            checkpoint: policy, resume: checkpoint, heartbeatInterval: Double(heartbeatMilliseconds) / 1000,
            security: security, limits: ClusterLimits(maxWorkers: maxWorkers, hellosPerSecond: helloRate), verifyFraction: verifyFraction,
            log: { StandardErrorLog.write($0) })
        StandardErrorLog.write(training.banner(data, model, where: "as coordinator"))
        let report = try training.reporter(
            workers: { [unowned coordinator] in coordinator.machine.liveWorkerIDs.count },
            perWorker: { [unowned coordinator] in
                let m = coordinator.machine
                return m.liveWorkerIDs.map { (id: $0, microBatches: m.acceptedResults[$0] ?? 0) }
            }, resumedAt: checkpoint?.step)
        var lastValidation = coordinator.validationNLL()
        try coordinator.run(ready: { bound in
            StandardErrorLog.write("listening on \(bound); waiting for \(minWorkers) worker(s)")
        }, progress: { p, _ in
            if let v = p.validationNLL { lastValidation = v }
            report(p)
        })
        try training.finish(coordinator.model, steps: coordinator.step, validationNLL: lastValidation)
    }
}
