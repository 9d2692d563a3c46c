import Flows
import Foundation

/// Where and how often a training run checkpoints — the coordinator's, `train --workers N`'s and
/// one process's alike.
public struct CheckpointPolicy: Sendable {
    /// The directory holding `checkpoint.safetensors`.
    public var directory: String
    /// Checkpoint after every this many steps (rounds with `sync=parameters`), after the last,
    /// and when `--early-stop` ends the run.
    public var every: Int
    /// The training data's identity, recorded in every checkpoint (`--resume` compares it).
    public var data: TrainingDataIdentity?

    /// A policy writing `directory/checkpoint.safetensors` every `every` steps, recording `data`.
    public init(directory: String, every: Int, data: TrainingDataIdentity? = nil) {
        self.directory = directory
        self.every = every
        self.data = data
    }

    /// The checkpoint file in `directory`.
    public var path: String { TrainingCheckpoint<Float>.path(in: directory) }

    /// Writes the state after `step` plan steps atomically (creating the directory), replacing
    /// the previous checkpoint: the one writer every training runtime uses.
    public func write<Scalar: FlowScalar>(
        model: RealNVP<Scalar>, optimizer: AdamOptimizer<Scalar>, step: Int, options: TrainingOptions,
        monitor: ValidationMonitor<Scalar>
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try TrainingCheckpoint(model: model, optimizer: optimizer, step: step, options: options, data: data, monitor: monitor)
            .write(to: path)
    }
}
