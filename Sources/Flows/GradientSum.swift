/// The sum of one step's micro-batch results, in micro-batch order, and the optimiser update
/// that follows — the rule that makes training independent of who computed what.
///
/// A step's gradient is `(g₀ + g₁ + … + g_{n−1}) / rows`, where `gᵢ` is micro-batch `i`'s summed
/// NLL gradient and the additions run left to right. Single-process training and the cluster's
/// coordinator both use this type, so their parameters agree bit for bit.
public struct GradientSum<Scalar: FlowScalar>: Sendable {
    /// The running sum of micro-batch gradients (length `P`).
    public private(set) var gradient: [Scalar]
    /// The running sum of micro-batch loss sums `Σ −log p`, in `Double`.
    public private(set) var lossSum: Double
    /// Rows added so far.
    public private(set) var rows: Int
    /// Micro-batches added so far.
    public private(set) var microBatches: Int

    /// An empty sum for `parameterCount` parameters.
    public init(parameterCount: Int) {
        gradient = [Scalar](repeating: 0, count: parameterCount)
        lossSum = 0
        rows = 0
        microBatches = 0
    }

    /// Clears the sum for the next step (no allocation).
    public mutating func reset() {
        let count = gradient.count
        gradient.withUnsafeMutableBufferPointer { FlatVector.zero($0.baseAddress!, count: count) }
        lossSum = 0
        rows = 0
        microBatches = 0
    }

    /// Adds the next micro-batch's summed gradient, loss sum and row count.
    public mutating func add(gradient g: UnsafePointer<Scalar>, lossSum: Double, rows: Int) {
        let count = gradient.count
        gradient.withUnsafeMutableBufferPointer { FlatVector.add(g, into: $0.baseAddress!, count: count) }
        self.lossSum += lossSum
        self.rows += rows
        microBatches += 1
    }

    /// Adds a micro-batch given as an array (see `add(gradient:lossSum:rows:)`).
    public mutating func add(gradient g: [Scalar], lossSum: Double, rows: Int) {
        precondition(g.count == gradient.count, "micro-batch gradient length \(g.count) ≠ \(gradient.count)")
        g.withUnsafeBufferPointer { add(gradient: $0.baseAddress!, lossSum: lossSum, rows: rows) }
    }
}

/// What one optimiser update did.
public struct StepOutcome: Sendable, Equatable {
    /// Mean NLL of the step's rows (`lossSum / rows`), before the update.
    public var meanLoss: Double
    /// Norm of the mean gradient before clipping.
    public var gradientNorm: Double
    /// Whether clipping scaled the gradient.
    public var clipped: Bool
}

extension AdamOptimizer {
    /// Turns `sum` into the mean gradient (dividing by its row count), refuses it if the loss or
    /// any gradient entry is NaN/±∞ (throwing `FlowError.nonFinite`, parameters untouched),
    /// clips it to `clipNorm` when given, and applies one Adam update to `parameters`.
    ///
    /// `sum` is left holding the mean (clipped) gradient; call `reset()` before the next step.
    /// `step` is the 0-based index of the step being taken (the steps done before it); errors
    /// name it 1-based, as progress reports count (`step 1` is the first update).
    /// `learningRate` is this step's rate (a ``LearningRateSchedule``'s value at `step`); `nil`
    /// uses the optimiser's `learningRate`.
    public mutating func apply(
        _ sum: inout GradientSum<Scalar>, to parameters: inout [Scalar], clipNorm: Double?, step: Int, learningRate: Double? = nil
    ) throws(FlowError) -> StepOutcome {
        guard sum.rows > 0 else { throw .shapeMismatch(what: "rows in step \(step)", expected: 1, found: 0) }
        let meanLoss = sum.lossSum / Double(sum.rows)
        guard meanLoss.isFinite else { throw .nonFinite(what: "the loss (\(meanLoss))", step: step + 1) }
        let divisor = Scalar(sum.rows)
        let count = sum.gradient.count
        var outcome = StepOutcome(meanLoss: meanLoss, gradientNorm: 0, clipped: false)
        var bad: Int? = nil
        sum.withGradientPointer { g in
            // One pass: divide, look for NaN/±∞, measure the norm (as FlatVector.norm does).
            let (norm, firstBad) = FlatVector.divideAndMeasure(g, count: count, by: divisor)
            bad = firstBad
            guard bad == nil else { return }
            outcome.gradientNorm = norm
            if let clipNorm {
                // PyTorch's clip_grad_norm_ (FlatVector.clipNorm with the norm already known).
                let factor = clipNorm / (norm + 1e-6)
                if factor < 1 { FlatVector.scale(g, count: count, by: Scalar(factor)) }
                outcome.clipped = norm > clipNorm
            }
        }
        if let bad { throw .nonFinite(what: "gradient entry \(bad)", step: step + 1) }
        let rate = learningRate ?? self.learningRate
        sum.gradient.withUnsafeBufferPointer { update(parameters: &parameters, gradient: $0.baseAddress!, learningRate: rate) }
        return outcome
    }
}

extension GradientSum {
    mutating func withGradientPointer(_ body: (UnsafeMutablePointer<Scalar>) -> Void) {
        gradient.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
