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

    @OptionGroup(title: "Checkpoints")
    var checkpoints: CheckpointOptions

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval in milliseconds; a peer silent for 8 intervals is dead.")
    var heartbeatMilliseconds: Int = 250

    @OptionGroup var security: CoordinatorSecurityOptions

    @Option(name: .customLong("max-workers"), help: "The most workers registered at once; further hellos are refused.")
    var maxWorkers: Int = 1024

    @Option(name: .customLong("verify-fraction"), help: "Compute this fraction of each step's tree leaves (a shard's micro-batches of the step) twice, on two workers (or here), and quarantine a worker whose bits disagree (0...1).")
    var verifyFraction: Double = 0

    @Option(name: .customLong("hello-rate"), help: "Hellos accepted per second over all peers (bursts of up to 64).")
    var helloRate: Double = 20

    func validate() throws {
        guard minWorkers >= 1 else { throw ValidationError("--min-workers must be at least 1") }
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
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
        try checkpoints.adding(to: training.outputPlan).check()
        training.warnAboutModelName()
        try checkpoints.refuseStaleCheckpoint()
        // The endpoint and the keys are checked before the data is read or generated.
        let security = try self.security.server(endpoint: bind)
        let (data, model) = try training.prepare(S.self)
        let (policy, checkpoint) = try checkpoints.load(training, data: data, model: model)
        let stop = StopSignals()
        let coordinator = try Coordinator(
            model: model, data: data, options: training.trainingOptions, bind: bind, minimumWorkers: minWorkers,
            checkpoint: policy, resume: checkpoint, heartbeatInterval: Double(heartbeatMilliseconds) / 1000,
            security: security, limits: ClusterLimits(maxWorkers: maxWorkers, hellosPerSecond: helloRate), verifyFraction: verifyFraction,
            exchange: training.resolvedExchange(curve: security != nil, verifyFraction: verifyFraction), log: { StandardErrorLog.write($0) })
        StandardErrorLog.write(training.banner(data, model, where: "as coordinator, \(coordinator.exchange.rawValue) exchange"))
        let report = try training.reporter(
            workers: { [unowned coordinator] in coordinator.machine.liveWorkerIDs.count },
            perWorker: { [unowned coordinator] in coordinator.workerFigures() }, resumedAt: checkpoint?.step, counters: { [unowned coordinator] in coordinator.counters })
        var lastValidation = coordinator.validationNLL()
        try checkpoints.exitingOnInterruption({
            try coordinator.run(ready: { bound in
                StandardErrorLog.write("listening on \(bound); waiting for \(minWorkers) worker(s)")
            }, progress: { p, _ in
                if let v = p.validationNLL { lastValidation = v }
                report(p)
            }, watch: { try stop.check() })
        }, position: { (coordinator.step, coordinator.lastCheckpointStep) })
        try training.finish(coordinator.model, steps: coordinator.step, validationNLL: lastValidation, monitor: coordinator.monitor)
    }
}
