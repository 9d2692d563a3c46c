import FlowCluster
import Flows
import Foundation

/// `train --workers N`: a coordinator in this process and N worker processes over IPC, all
/// cleaned up on success, failure and Ctrl-C.
enum LocalClusterRun {
    static func train<S: FlowScalar>(
        _ training: TrainingOptionGroup, data: TrainingData<S>, model: RealNVP<S>, workers: Int, threads: Int
    ) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let endpoint = "ipc://\(directory)/coordinator"
        let launcher = WorkerLauncher(executable: WorkerLauncher.currentExecutable)
        SignalCleanup.install()
        defer { launcher.terminateAll() }

        let coordinator = try Coordinator(
            model: model, data: data, options: training.trainingOptions, bind: endpoint, minimumWorkers: workers,
            log: { FileHandle.standardError.write(Data(("\r\u{1B}[2K" + $0 + "\n").utf8)) })
        FileHandle.standardError.write(Data(training.banner(data, model, where: "on \(workers) local workers").utf8))
        let report = try training.reporter(workers: { [unowned coordinator] in coordinator.machine.liveWorkerIDs.count })
        var startError: Error?
        var lastValidation = coordinator.validationNLL()
        try coordinator.run(ready: { bound in
            do {
                for i in 0..<workers {
                    try launcher.start(arguments: [
                        "worker", "--connect", bound, "--name", "local-\(i + 1)", "--threads", String(threads),
                        "--parent-pid", String(getpid()),
                    ])
                }
            } catch {
                startError = error
            }
        }, progress: { p, _ in
            if let v = p.validationNLL { lastValidation = v }
            report(p)
        })
        if let startError { throw startError }
        try training.finish(coordinator.model, steps: coordinator.step, validationNLL: lastValidation)
    }
}

/// Kills every started worker on SIGINT/SIGTERM before the process exits.
enum SignalCleanup {
    static func install() {
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                WorkerLauncher.terminateAllFromSignalHandler()
                _exit(128 + received)
            }
        }
    }
}
