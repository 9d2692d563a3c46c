import FlowData
import Flows

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
    /// The shape of the learning rate over the run (`--lr-schedule`).
    public var scheduleKind: LearningRateSchedule.Kind = .constant
    /// Linear warm-up steps (`--warmup`, 0: none).
    public var warmupSteps: Int = 0
    /// The cosine's floor (`--min-lr`).
    public var minimumLearningRate: Double = 0
    /// AdamW's decoupled weight decay λ (`--weight-decay`; 0: plain Adam).
    public var weightDecay: Double = 0
    /// Write the parameters with the best validation NLL rather than the last (`--keep-best`).
    public var keepBest: Bool = false
    /// Stop after this many evaluations in a row without a better validation NLL (`--early-stop`).
    public var earlyStop: Int? = nil

    /// Options with DESIGN §1's defaults (Adam 1e-3, no clipping, 64 shards).
    public init(
        steps: Int, batch: Int, microBatch: Int, learningRate: Double = 1e-3, clipNorm: Double? = nil,
        seed: UInt64 = 0, shardCount: Int = 64, evaluateEvery: Int = 100, localSteps: Int? = nil,
        scheduleKind: LearningRateSchedule.Kind = .constant, warmupSteps: Int = 0, minimumLearningRate: Double = 0,
        weightDecay: Double = 0, keepBest: Bool = false, earlyStop: Int? = nil
    ) {
        self.scheduleKind = scheduleKind
        self.warmupSteps = warmupSteps
        self.minimumLearningRate = minimumLearningRate
        self.weightDecay = weightDecay
        self.keepBest = keepBest
        self.earlyStop = earlyStop
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

    /// The learning rate of every step: a pure function of these options and the step, so the
    /// coordinator, the workers' local rounds and one process agree.
    public var schedule: LearningRateSchedule {
        LearningRateSchedule(
            kind: scheduleKind, baseRate: learningRate, warmupSteps: warmupSteps, totalSteps: steps, minimumRate: minimumLearningRate)
    }

    /// Whether a run watches the validation NLL to keep the best parameters or to stop early.
    public var monitorsValidation: Bool { keepBest || earlyStop != nil }

    /// A fresh optimiser for `parameterCount` parameters with these options' rate and decay.
    public func makeOptimizer<Scalar: FlowScalar>(parameterCount: Int) -> AdamOptimizer<Scalar> {
        AdamOptimizer(parameterCount: parameterCount, learningRate: learningRate, weightDecay: weightDecay)
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
        guard batch / microBatch <= BatchPlan.maximumMicroBatchesPerStep else {
            throw .invalidOption("--batch \(batch) / --micro-batch \(microBatch) is \(batch / microBatch) micro-batches per step; at most \(BatchPlan.maximumMicroBatchesPerStep) (2^20) are supported")
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
        guard warmupSteps >= 0, warmupSteps <= max(steps, 0) else {
            throw .invalidOption("--warmup must be in 0...--steps (\(steps)), found \(warmupSteps)")
        }
        guard minimumLearningRate >= 0, minimumLearningRate <= learningRate else {
            throw .invalidOption("--min-lr must be in 0...--lr (\(learningRate)), found \(minimumLearningRate)")
        }
        if minimumLearningRate != 0 && scheduleKind != .cosine {
            throw .invalidOption("--min-lr is the floor of --lr-schedule cosine; with --lr-schedule \(scheduleKind.rawValue) it has no effect")
        }
        guard weightDecay >= 0, weightDecay.isFinite else {
            throw .invalidOption("--weight-decay must be 0 or more, found \(weightDecay)")
        }
        guard weightDecay * learningRate < 1 else {
            throw .invalidOption("--weight-decay \(weightDecay) × --lr \(learningRate) must be below 1 (AdamW multiplies the parameters by 1 − lr·λ every step)")
        }
        if let earlyStop, earlyStop < 1 {
            throw .invalidOption("--early-stop must be at least 1 evaluation, found \(earlyStop)")
        }
    }

    /// Checks what the options need of the data: `--keep-best` and `--early-stop` watch the
    /// validation NLL, so they need validation rows.
    public func validate(validationRows: Int) throws(TrainingError) {
        guard monitorsValidation, validationRows == 0 else { return }
        let option = keepBest ? "--keep-best" : "--early-stop"
        throw .invalidOption("\(option) compares the validation NLL, but there are no validation rows: give --validation a fraction above 0 (e.g. --validation 0.1)")
    }

    private enum CodingKeys: String, CodingKey {
        case steps, batch, microBatch, learningRate, clipNorm, seed, shardCount, evaluateEvery, localSteps
        case scheduleKind, warmupSteps, minimumLearningRate, weightDecay, keepBest, earlyStop
    }

    /// Decodes options; the fields added after the first checkpoints (schedule, decay, keep-best,
    /// early stop) default to their off values when absent, so older checkpoints still load.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        steps = try c.decode(Int.self, forKey: .steps)
        batch = try c.decode(Int.self, forKey: .batch)
        microBatch = try c.decode(Int.self, forKey: .microBatch)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        clipNorm = try c.decodeIfPresent(Double.self, forKey: .clipNorm)
        seed = try c.decode(UInt64.self, forKey: .seed)
        shardCount = try c.decode(Int.self, forKey: .shardCount)
        evaluateEvery = try c.decode(Int.self, forKey: .evaluateEvery)
        localSteps = try c.decodeIfPresent(Int.self, forKey: .localSteps)
        scheduleKind = try c.decodeIfPresent(LearningRateSchedule.Kind.self, forKey: .scheduleKind) ?? .constant
        warmupSteps = try c.decodeIfPresent(Int.self, forKey: .warmupSteps) ?? 0
        minimumLearningRate = try c.decodeIfPresent(Double.self, forKey: .minimumLearningRate) ?? 0
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? 0
        keepBest = try c.decodeIfPresent(Bool.self, forKey: .keepBest) ?? false
        earlyStop = try c.decodeIfPresent(Int.self, forKey: .earlyStop)
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
