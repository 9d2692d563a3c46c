/// The options that, with the data and the model configuration, fully determine a training run.
///
/// Two runs with equal options, configuration and data produce bit-identical parameters —
/// whether one process computes every micro-batch or a cluster shares them.
public struct TrainingOptions: Sendable, Equatable, Codable {
    /// Optimiser steps to take.
    public var steps: Int
    /// Rows per step (the global batch `B`); a multiple of `microBatch`.
    public var batch: Int
    /// Rows per micro-batch `m` — the unit of work and of summation order.
    public var microBatch: Int
    /// Adam's learning rate.
    public var learningRate: Double
    /// Gradient-norm clipping threshold, or `nil` for none.
    public var clipNorm: Double?
    /// Seed of the parameter initialisation and of the batch plan.
    public var seed: UInt64
    /// Number of data shards `S` of the batch plan (independent of the worker count).
    public var shardCount: Int
    /// Evaluate the validation NLL every this many steps (and after the last).
    public var evaluateEvery: Int
    /// `nil` for `sync=gradients` (the default: one Adam step per global batch, bit-identical to
    /// one process); `H` for `sync=parameters` (local SGD: each worker takes `H` local Adam steps
    /// on its own micro-batches of `H` consecutive steps, then the coordinator averages the
    /// workers' parameters weighted by rows — a different, cheaper algorithm).
    public var localSteps: Int?

    /// Options with DESIGN §1's defaults (Adam 1e-3, no clipping, 64 shards).
    public init(
        steps: Int, batch: Int, microBatch: Int, learningRate: Double = 1e-3, clipNorm: Double? = nil,
        seed: UInt64 = 0, shardCount: Int = 64, evaluateEvery: Int = 100, localSteps: Int? = nil
    ) {
        self.steps = steps
        self.batch = batch
        self.microBatch = microBatch
        self.learningRate = learningRate
        self.clipNorm = clipNorm
        self.seed = seed
        self.shardCount = shardCount
        self.evaluateEvery = evaluateEvery
        self.localSteps = localSteps
    }

    /// Units of coordinated work: optimiser steps with `sync=gradients`, averaging rounds of
    /// `localSteps` steps (the last one possibly shorter) with `sync=parameters`.
    public var rounds: Int {
        guard let localSteps else { return steps }
        return (steps + localSteps - 1) / localSteps
    }

    /// Checks ranges and the batch/micro-batch relation; throws `TrainingError.invalidOption`.
    public func validate() throws(TrainingError) {
        guard steps >= 0 else { throw .invalidOption("--steps must be at least 0, found \(steps)") }
        guard batch >= 1 else { throw .invalidOption("--batch must be at least 1, found \(batch)") }
        guard microBatch >= 1 else { throw .invalidOption("--micro-batch must be at least 1, found \(microBatch)") }
        guard batch % microBatch == 0 else {
            throw .invalidOption("--batch \(batch) must be a multiple of --micro-batch \(microBatch)")
        }
        guard learningRate > 0, learningRate.isFinite else { throw .invalidOption("--lr must be positive, found \(learningRate)") }
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) {
            throw .invalidOption("--clip-norm must be positive, found \(clipNorm)")
        }
        guard shardCount >= 1 else { throw .invalidOption("--shards must be at least 1, found \(shardCount)") }
        guard evaluateEvery >= 1 else { throw .invalidOption("--eval-every must be at least 1, found \(evaluateEvery)") }
        if let localSteps, !(1...1_000_000).contains(localSteps) {
            throw .invalidOption("--local-steps must be in 1...1000000, found \(localSteps)")
        }
    }
}

/// Errors of a training run.
public enum TrainingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An option is out of range.
    case invalidOption(String)
    /// The data does not fit the model or the options.
    case invalidData(String)

    public var description: String {
        switch self {
        case .invalidOption(let m): return m
        case .invalidData(let m): return m
        }
    }
}
