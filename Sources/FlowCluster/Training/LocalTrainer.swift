import FlowData
import Flows
import Foundation

/// What a training run reports after a step.
public struct TrainingProgress: Sendable {
    /// Steps completed so far.
    public var step: Int
    /// Steps the run will take in all.
    public var steps: Int
    /// Mean NLL of this step's batch (nats per row), before the update.
    public var loss: Double
    /// Mean NLL of the validation rows after this step, when it was evaluated.
    public var validationNLL: Double?
    /// Training rows per second since the run started (validation time excluded).
    public var rowsPerSecond: Double
    /// Wall-clock seconds since the run started.
    public var elapsedSeconds: Double
    /// Norm of the mean gradient before clipping.
    public var gradientNorm: Double
    /// The learning rate of this step's update (the schedule's value).
    public var learningRate: Double = 0
    /// `--early-stop` ended the run at this step.
    public var stoppedEarly: Bool = false
}

/// Trains a flow in one process with exactly the arithmetic the cluster uses: the step's
/// micro-batches come from the `BatchPlan`, each gives a summed gradient, the sums are added in
/// the order of the step's `ReductionTree`, divided by the row count, and Adam is applied once.
///
/// After `init` a step allocates nothing but the plan's index lists. Micro-batches run on
/// `threads` lanes (`GradientLanes`); the result does not depend on the number of lanes.
public final class LocalTrainer<Scalar: FlowScalar> {
    /// The model being trained.
    public private(set) var model: RealNVP<Scalar>
    /// The optimiser state.
    public private(set) var optimizer: AdamOptimizer<Scalar>
    /// Steps completed.
    public private(set) var step: Int = 0
    /// Keep-best and early-stop state.
    public private(set) var monitor: ValidationMonitor<Scalar>
    /// The step of the last checkpoint written or resumed from (nil: none).
    public private(set) var lastCheckpointStep: Int?
    /// Where to checkpoint (nil: never).
    public let checkpoint: CheckpointPolicy?
    /// The run's options.
    public let options: TrainingOptions
    /// The step → micro-batch plan over the training rows.
    public let plan: BatchPlan

    private var cursor: BatchPlanCursor
    private let trainRows: [Scalar]
    private let validationRows: [Scalar]
    private let lanes: GradientLanes<Scalar>
    private let inference: InferenceWorkspace<Scalar>
    private var sum: GradientSum<Scalar>
    private var validationLogProb: [Scalar]
    private let schedule: LearningRateSchedule

    /// A trainer for `model` on `trainRows` (row-major, `N × D`, in the order the plan indexes),
    /// evaluating on `validationRows` (may be empty).
    ///
    /// - Parameter threads: micro-batches computed at once (one thread and one BLAS thread each).
    ///   The parameters do not depend on it: results are always added in tree order.
    /// - Parameter checkpoint: where `run` writes checkpoints (every `checkpoint.every` steps,
    ///   after the last and at an early stop), as the coordinator does.
    /// - Parameter resume: a checkpoint of this run (checked with
    ///   ``TrainingCheckpoint/checkResumable(options:configuration:data:path:warn:)``) to continue from.
    public init(
        model: RealNVP<Scalar>, trainRows: [Scalar], validationRows: [Scalar], options: TrainingOptions, threads: Int = 1,
        checkpoint: CheckpointPolicy? = nil, resume: TrainingCheckpoint<Scalar>? = nil
    ) throws {
        try options.validate()
        let D = model.dimension
        guard trainRows.count % D == 0, !trainRows.isEmpty else {
            throw TrainingError.invalidData("training data must be a non-empty multiple of D = \(D) values, found \(trainRows.count)")
        }
        guard validationRows.count % D == 0 else {
            throw TrainingError.invalidData("validation data must be a multiple of D = \(D) values, found \(validationRows.count)")
        }
        try options.validate(validationRows: validationRows.count / D)
        self.model = model
        self.options = options
        self.checkpoint = checkpoint
        schedule = options.schedule
        self.trainRows = trainRows
        self.validationRows = validationRows
        plan = try BatchPlan(
            seed: options.seed, rowCount: trainRows.count / D, microBatchSize: options.microBatch,
            batchSize: options.batch, shardCount: options.shardCount)
        cursor = BatchPlanCursor(plan: plan)
        optimizer = options.makeOptimizer(parameterCount: model.parameters.count)
        monitor = ValidationMonitor(options: options)
        if let resume {
            var recorded = resume.options
            recorded.steps = options.steps
            guard recorded == options, resume.model.configuration == model.configuration else {
                throw TrainingError.invalidOption("the checkpoint was written by a run with other options or another architecture; resume with the same ones")
            }
            self.model = resume.model
            optimizer = resume.optimizer
            step = resume.step
            monitor = resume.monitor
            lastCheckpointStep = resume.step
        }
        lanes = GradientLanes(
            configuration: model.configuration, capacity: options.microBatch,
            lanes: min(max(1, threads), options.batch / options.microBatch))
        inference = InferenceWorkspace(configuration: model.configuration, capacity: min(1024, max(1, validationRows.count / D)))
        sum = GradientSum(parameterCount: model.parameters.count)
        validationLogProb = [Scalar](repeating: 0, count: validationRows.count / D)
    }

    /// Takes one optimiser step. Throws `FlowError.nonFinite` (parameters unchanged) when the
    /// loss or gradient is not finite.
    @discardableResult
    public func trainStep() throws -> StepOutcome {
        let refs = ReductionTree(plan: plan, step: step).microBatches
        let batches = refs.map { (rows: trainRows, positions: cursor.positions(of: $0)) }
        lanes.reduce(model: model, batches, shards: refs.map(\.shard), into: &sum)
        let outcome = try optimizer.apply(
            &sum, to: &model.parameters, clipNorm: options.clipNorm, step: step, learningRate: schedule.rate(atStep: step))
        step += 1
        return outcome
    }

    /// Whether the run is over: all steps done, or `--early-stop` ended it.
    public var isFinished: Bool { step >= options.steps || monitor.hasStopped }

    /// Mean NLL (nats per row) of the validation rows under the current parameters, or `nil`
    /// when there are none. Accumulated in `Double`.
    public func validationNLL() -> Double? {
        ValidationLoss.meanNLL(model: model, rows: validationRows, logProbability: &validationLogProb, workspace: inference)
    }

    /// Runs the remaining steps, calling `progress` after every step (with the validation NLL
    /// every `options.evaluateEvery` steps and after the last) and `watch` before every step
    /// (it may throw to abandon the run, e.g. on a signal). Evaluations feed the monitor, which
    /// may end the run early; checkpoints are written as the policy says.
    public func run(progress: (TrainingProgress) -> Void, watch: () throws -> Void = {}) throws {
        let start = Date()
        var trainingSeconds = 0.0
        var rowsDone = 0
        while !isFinished {
            try watch()
            let t0 = Date()
            let rate = schedule.rate(atStep: step)
            let outcome = try trainStep()
            trainingSeconds += Date().timeIntervalSince(t0)
            rowsDone += options.batch
            let evaluate = step % options.evaluateEvery == 0 || step == options.steps
            let nll = evaluate ? validationNLL() : nil
            var stopped = false
            if let nll, monitor.isActive {
                stopped = monitor.observe(step: step, validationNLL: nll, parameters: model.parameters) == .stop
            }
            if let checkpoint, step % checkpoint.every == 0 || step == options.steps || stopped {
                try checkpoint.write(model: model, optimizer: optimizer, step: step, options: options, monitor: monitor)
                lastCheckpointStep = step
            }
            progress(TrainingProgress(
                step: step, steps: options.steps, loss: outcome.meanLoss, validationNLL: nll,
                rowsPerSecond: Double(rowsDone) / max(trainingSeconds, 1e-9),
                elapsedSeconds: Date().timeIntervalSince(start), gradientNorm: outcome.gradientNorm,
                learningRate: rate, stoppedEarly: stopped))
        }
    }
}
