import ArgumentParser
import FlowCluster
import FlowData
import Flows
import Foundation

/// `--checkpoint-dir`, `--checkpoint-every`, `--resume` and `--overwrite-checkpoints`: the same
/// options and the same checks for `train`, `train --workers N` and `coordinator`.
struct CheckpointOptions: ParsableArguments {
    @Option(name: .customLong("checkpoint-dir"), help: "Directory for the training checkpoint.")
    var checkpointDir: String?

    @Option(name: .customLong("checkpoint-every"), help: "Checkpoint every N steps (rounds with --sync parameters; with --checkpoint-dir).")
    var checkpointEvery: Int = 100

    @Flag(
        help:
            "Continue from the checkpoint in --checkpoint-dir (written by a run with the same options; --steps may be larger unless --lr-schedule cosine)."
    )
    var resume = false

    @Flag(
        name: .customLong("overwrite-checkpoints"),
        help: "Start from step 0 even when --checkpoint-dir holds a checkpoint, replacing it at the first checkpoint.")
    var overwriteCheckpoints = false

    func validate() throws {
        guard checkpointEvery >= 1 else { throw ValidationError("--checkpoint-every must be at least 1") }
        if resume && checkpointDir == nil { throw ValidationError("--resume needs --checkpoint-dir") }
        if overwriteCheckpoints && (resume || checkpointDir == nil) {
            throw ValidationError("--overwrite-checkpoints goes with --checkpoint-dir and without --resume")
        }
    }

    /// Adds `--checkpoint-dir` to the files a run checks before it starts.
    func adding(to plan: OutputPlan) -> OutputPlan {
        plan.writing("--checkpoint-dir", checkpointDir, kind: .directory)
    }

    /// Refuses a directory that already holds a checkpoint unless `--resume` or
    /// `--overwrite-checkpoints` says what to do with it (checked before the data is read).
    func refuseStaleCheckpoint() throws {
        guard let checkpointDir, !resume, !overwriteCheckpoints else { return }
        let path = TrainingCheckpoint<Float>.path(in: checkpointDir)
        if FileManager.default.fileExists(atPath: path) {
            throw CLIError(
                "--checkpoint-dir \(checkpointDir) holds a checkpoint (\(path)): pass --resume to continue that run, --overwrite-checkpoints to start over and replace it, or choose another directory"
            )
        }
    }

    /// The policy for this run and, with `--resume`, the checkpoint to continue from — checked
    /// against the command line's options, model and data, naming the first field that differs.
    func load<S: FlowScalar>(
        _ training: TrainingOptionGroup, data: TrainingData<S>, model: RealNVP<S>
    ) throws -> (policy: CheckpointPolicy?, resume: TrainingCheckpoint<S>?) {
        // The digest reads every training row: only a run that checkpoints needs it.
        guard let checkpointDir else { return (nil, nil) }
        let policy = CheckpointPolicy(directory: checkpointDir, every: checkpointEvery, data: training.dataIdentity(data))
        guard resume else { return (policy, nil) }
        let path = policy.path
        guard FileManager.default.fileExists(atPath: path) else {
            StandardErrorLog.write("no checkpoint at \(path) yet; starting from step 0")
            return (policy, nil)
        }
        let found = try TrainingCheckpoint<S>.read(from: path)
        try found.checkResumable(
            options: training.trainingOptions, configuration: model.configuration, data: policy.data ?? training.dataIdentity(data),
            path: path, warn: { StandardErrorLog.write($0) })
        var note = ""
        if let stopped = found.monitor.state.stoppedAt { note = "; --early-stop ended that run at step \(stopped)" }
        StandardErrorLog.write("resuming from \(path) at step \(found.step)\(note)")
        return (policy, found)
    }

    /// Runs `body` (a training run); when a signal stops it, logs where the state is
    /// (`position`: the step reached and the last checkpoint's) and exits 128 + the signal.
    func exitingOnInterruption(_ body: () throws -> Void, position: () -> (step: Int, lastCheckpoint: Int?)) throws {
        do {
            try body()
        } catch let interrupted as TrainingInterrupted {
            let (step, lastCheckpoint) = position()
            StandardErrorLog.write(interruptionLine(step: step, lastCheckpoint: lastCheckpoint, signal: interrupted.signal))
            throw ExitCode(128 + interrupted.signal)
        }
    }

    /// The line printed when a signal interrupts training at `step`: where the state is and how
    /// to continue, or that nothing was saved and how to save it next time.
    func interruptionLine(step: Int, lastCheckpoint: Int?, signal: Int32) -> String {
        let name = signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
        guard let checkpointDir else {
            return
                "interrupted by \(name) at step \(step); nothing was saved: rerun with --checkpoint-dir DIR (every --checkpoint-every \(checkpointEvery) steps) to be able to resume"
        }
        guard let saved = lastCheckpoint else {
            return
                "interrupted by \(name) at step \(step); no checkpoint was written yet in \(checkpointDir) (the first comes at step \(checkpointEvery)); rerunning the same command starts over"
        }
        return
            "interrupted by \(name) at step \(step); state in \(checkpointDir) (step \(saved)); rerun the same command with --resume to continue"
    }
}

/// Thrown by a training run's watch when SIGINT or SIGTERM arrived: the command prints its
/// interruption line and exits 128 + signal.
struct TrainingInterrupted: Error {
    var signal: Int32
}

extension StopSignals {
    /// Throws ``TrainingInterrupted`` once a signal has arrived (for a run's `watch`).
    func check() throws {
        if let signal = received { throw TrainingInterrupted(signal: signal) }
    }
}
