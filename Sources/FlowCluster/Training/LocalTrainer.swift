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
}

/// Trains a flow in one process with exactly the arithmetic the cluster uses: the step's
/// micro-batches come from the `BatchPlan`, each gives a summed gradient, the sums are added in
/// micro-batch order, divided by the row count, and Adam is applied once.
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

    /// A trainer for `model` on `trainRows` (row-major, `N × D`, in the order the plan indexes),
    /// evaluating on `validationRows` (may be empty).
    ///
    /// - Parameter threads: micro-batches computed at once (one thread and one BLAS thread each).
    ///   The parameters do not depend on it: results are always added in micro-batch order.
    public init(model: RealNVP<Scalar>, trainRows: [Scalar], validationRows: [Scalar], options: TrainingOptions, threads: Int = 1) throws {
        try options.validate()
        let D = model.dimension
        guard trainRows.count % D == 0, !trainRows.isEmpty else {
            throw TrainingError.invalidData("training data must be a non-empty multiple of D = \(D) values, found \(trainRows.count)")
        }
        guard validationRows.count % D == 0 else {
            throw TrainingError.invalidData("validation data must be a multiple of D = \(D) values, found \(validationRows.count)")
        }
        self.model = model
        self.options = options
        self.trainRows = trainRows
        self.validationRows = validationRows
        plan = try BatchPlan(
            seed: options.seed, rowCount: trainRows.count / D, microBatchSize: options.microBatch,
            batchSize: options.batch, shardCount: options.shardCount)
        cursor = BatchPlanCursor(plan: plan)
        optimizer = AdamOptimizer(parameterCount: model.parameters.count, learningRate: options.learningRate)
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
        let refs = plan.microBatches(step: step)
        sum.reset()
        let batches = refs.map { (rows: trainRows, positions: cursor.positions(of: $0)) }
        lanes.computeInWaves(model: model, batches) { i, lane in
            lanes.add(lane: lane, rows: batches[i].positions.count, to: &sum)
        }
        let outcome = try optimizer.apply(&sum, to: &model.parameters, clipNorm: options.clipNorm, step: step)
        step += 1
        return outcome
    }

    /// Mean NLL (nats per row) of the validation rows under the current parameters, or `nil`
    /// when there are none. Accumulated in `Double`.
    public func validationNLL() -> Double? {
        ValidationLoss.meanNLL(model: model, rows: validationRows, logProbability: &validationLogProb, workspace: inference)
    }

    /// Runs the remaining steps, calling `progress` after every step (with the validation NLL
    /// every `options.evaluateEvery` steps and after the last).
    public func run(progress: (TrainingProgress) -> Void) throws {
        let start = Date()
        var trainingSeconds = 0.0
        var rowsDone = 0
        while step < options.steps {
            let t0 = Date()
            let outcome = try trainStep()
            trainingSeconds += Date().timeIntervalSince(t0)
            rowsDone += options.batch
            let evaluate = step % options.evaluateEvery == 0 || step == options.steps
            progress(TrainingProgress(
                step: step, steps: options.steps, loss: outcome.meanLoss,
                validationNLL: evaluate ? validationNLL() : nil,
                rowsPerSecond: Double(rowsDone) / max(trainingSeconds, 1e-9),
                elapsedSeconds: Date().timeIntervalSince(start), gradientNorm: outcome.gradientNorm))
        }
    }
}
