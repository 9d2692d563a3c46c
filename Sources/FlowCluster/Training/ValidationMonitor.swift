import Flows

/// `--keep-best` and `--early-stop`: watches the validation NLL at every evaluation, keeps a copy
/// of the parameters with the lowest one, and says when to stop.
///
/// An evaluation *improves* when its NLL is finite and strictly below the best so far (the first
/// finite one always does); NaN and ±∞ never improve. With `--early-stop N` the run stops after
/// the evaluation that makes N evaluations in a row without improvement. The monitor sees the
/// same NLL bits whoever trains (``ValidationLoss`` is shared), so its decisions — and so the
/// step a run stops at and the parameters it keeps — are the same for any worker count. Its
/// state is part of a training checkpoint, so a resumed run decides as an uninterrupted one.
public struct ValidationMonitor<Scalar: FlowScalar>: Sendable, Equatable {
    /// What a checkpoint records besides the best parameters.
    public struct State: Sendable, Equatable, Codable {
        /// The lowest finite validation NLL seen (nats per row), nil before the first.
        public var bestNLL: Double?
        /// The step whose parameters gave `bestNLL`.
        public var bestStep: Int?
        /// Evaluations since the last improvement.
        public var evaluationsWithoutImprovement: Int
        /// The step at which `--early-stop` ended the run, nil while it goes on.
        public var stoppedAt: Int?

        /// The state of a run that has not evaluated yet.
        public init(bestNLL: Double? = nil, bestStep: Int? = nil, evaluationsWithoutImprovement: Int = 0, stoppedAt: Int? = nil) {
            self.bestNLL = bestNLL
            self.bestStep = bestStep
            self.evaluationsWithoutImprovement = evaluationsWithoutImprovement
            self.stoppedAt = stoppedAt
        }
    }

    /// What an evaluation meant.
    public enum Verdict: Sendable, Equatable {
        /// A new best.
        case improved
        /// Not better than the best; `count` evaluations in a row now.
        case notImproved(count: Int)
        /// Not better, and the `--early-stop` patience is used up: the run ends at this step.
        case stop
    }

    /// The recorded state.
    public private(set) var state: State
    /// The parameters of `state.bestStep` (with `--keep-best` only; nil before the first improvement).
    public private(set) var bestParameters: [Scalar]?
    /// Whether the best parameters are kept (`--keep-best`).
    public let keepBest: Bool
    /// Evaluations without improvement that end the run (`--early-stop`), nil for never.
    public let patience: Int?

    /// A monitor for a run with these options, fresh or restored from a checkpoint's state.
    public init(options: TrainingOptions, state: State = State(), bestParameters: [Scalar]? = nil) {
        keepBest = options.keepBest
        patience = options.earlyStop
        self.state = state
        self.bestParameters = options.keepBest ? bestParameters : nil
    }

    /// Whether the monitor does anything (`--keep-best` or `--early-stop`).
    public var isActive: Bool { keepBest || patience != nil }

    /// Whether `--early-stop` has ended the run.
    public var hasStopped: Bool { state.stoppedAt != nil }

    /// Records the validation NLL of the parameters after `step` steps; copies `parameters` when
    /// they are the new best and the best is kept.
    @discardableResult
    public mutating func observe(step: Int, validationNLL nll: Double, parameters: [Scalar]) -> Verdict {
        guard isActive, !hasStopped else { return .improved }
        if nll.isFinite, state.bestNLL.map({ nll < $0 }) ?? true {
            state.bestNLL = nll
            state.bestStep = step
            state.evaluationsWithoutImprovement = 0
            if keepBest {
                if bestParameters?.count == parameters.count {
                    bestParameters!.withUnsafeMutableBufferPointer { destination in
                        parameters.withUnsafeBufferPointer { destination.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
                    }
                } else {
                    bestParameters = parameters
                }
            }
            return .improved
        }
        state.evaluationsWithoutImprovement += 1
        if let patience, state.evaluationsWithoutImprovement >= patience {
            state.stoppedAt = step
            return .stop
        }
        return .notImproved(count: state.evaluationsWithoutImprovement)
    }
}
