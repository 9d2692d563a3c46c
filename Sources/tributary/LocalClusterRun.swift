import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `train --workers N`: a coordinator in this process and N worker processes over IPC, all
/// cleaned up on success, failure and Ctrl-C; checkpoints and `--resume` as `coordinator`'s.
enum LocalClusterRun {
    static func train<S: FlowScalar>(
        _ training: TrainingOptionGroup, checkpoints: CheckpointOptions, data: TrainingData<S>, model: RealNVP<S>,
        workers: Int, threads: Int, policy: CheckpointPolicy?, resume: TrainingCheckpoint<S>?
    ) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let endpoint = "ipc://\(directory)/coordinator"
        let launcher = WorkerLauncher(executable: WorkerLauncher.currentExecutable)
        SignalCleanup.install(removing: directory, socket: "\(directory)/coordinator")
        // SIGINT and SIGTERM end the run between two polls, so that it can say where its state
        // is; the `defer`s then stop the workers and remove the directory. (SIGHUP still goes
        // to SignalCleanup's handler.)
        let stop = StopSignals()
        defer { launcher.terminateAll() }

        let coordinator = try Coordinator(
            model: model, data: data, options: training.trainingOptions, bind: endpoint, minimumWorkers: workers,
            checkpoint: policy, resume: resume, exchange: training.resolvedExchange(curve: false, verifyFraction: 0), log: { StandardErrorLog.write($0) })
        StandardErrorLog.write(training.banner(data, model, where: "on \(workers) local workers, \(coordinator.exchange.rawValue) exchange"))
        let report = try training.reporter(
            workers: { [unowned coordinator] in coordinator.machine.liveWorkerIDs.count },
            perWorker: { [unowned coordinator] in coordinator.workerFigures() }, resumedAt: resume?.step, counters: { [unowned coordinator] in coordinator.counters })
        var startError: Error?
        var lastValidation = coordinator.validationNLL()
        try checkpoints.exitingOnInterruption({
            try coordinator.run(ready: { bound in
                do {
                    for i in 0..<workers {
                        try launcher.start(arguments: [
                            "worker", "--connect", bound, "--name", "local-\(i + 1)", "--threads", String(threads),
                            "--parent-pid", String(getpid()), "--peer-endpoint", "ipc://\(directory)/peer-\(i + 1)",
                        ])
                    }
                } catch {
                    startError = error
                }
            }, progress: { p, _ in
                if let v = p.validationNLL { lastValidation = v }
                report(p)
            }, watch: {
                try stop.check()
                // Every worker we started is gone (crashed, killed): nothing will finish the job.
                if let startError { throw startError }
                if launcher.running() == 0 {
                    throw CLIError("all \(workers) worker processes exited before the job finished; their messages are above")
                }
            })
        }, position: { (coordinator.step, coordinator.lastCheckpointStep) })
        if let startError { throw startError }
        try training.finish(coordinator.model, steps: coordinator.step, validationNLL: lastValidation, monitor: coordinator.monitor)
    }
}

/// Kills every started worker on SIGINT/SIGTERM before the process exits, and removes the
/// temporary files of the outputs being written (`TemporaryFiles`).
/// Also removes the run's IPC socket file and its (then empty) directory, which the `defer`s of
/// a run cannot do when a signal ends the process.
enum SignalCleanup {
    /// C strings for the handler (`unlink` and `rmdir` are async-signal-safe; Foundation is not).
    /// Written once, before the handlers are installed, and only read afterwards.
    nonisolated(unsafe) private static var socketPath: UnsafeMutablePointer<CChar>?
    nonisolated(unsafe) private static var directoryPath: UnsafeMutablePointer<CChar>?

    static func install(removing directory: String? = nil, socket: String? = nil) {
        if let socket { socketPath = strdup(socket) }
        if let directory { directoryPath = strdup(directory) }
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                WorkerLauncher.terminateAllFromSignalHandler()
                TemporaryFiles.unlinkAllFromSignalHandler()
                if let path = SignalCleanup.socketPath { unlink(path) }
                if let path = SignalCleanup.directoryPath { rmdir(path) }
                _exit(128 + received)
            }
        }
    }
}
