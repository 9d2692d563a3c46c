import FlowData
import FlowWire

extension CoordinatorStateMachine {
    /// Fixed facts of the job.
    public struct Job: Sendable {
        /// The `jobSpec` every worker receives after `welcome`.
        public var spec: WireMessage.JobSpec
        /// The step → micro-batch plan.
        public var plan: BatchPlan
        /// Optimiser steps of the plan to train in all.
        public var steps: Int
        /// `sync=parameters`: plan steps per round (`H`); `nil` for `sync=gradients`.
        public var localSteps: Int?
        /// Checkpoint every this many steps (rounds with `sync=parameters`; nil: never).
        public var checkpointEvery: Int?
        /// Do not start the first step (of this machine's run) with fewer live workers. Later
        /// steps go on with whoever is live (at least one): losing a worker must not stall the job.
        public var minimumWorkers: Int
        /// Heartbeat interval in seconds.
        public var heartbeatInterval: Double
        /// Missed intervals after which a peer is dead.
        public var heartbeatLiveness: Int
        /// The least time (s) a step runs before a slow worker's micro-batches are backed up.
        public var minimumBackupDelay: Double = 0.05
        /// Consecutive steps in which a worker's work is done first by backups before it is
        /// *demoted*: its shards go to the others for a while (doubling each time it happens
        /// again, from `demotionSteps.lowerBound` to `demotionSteps.upperBound` steps).
        public var slowStepsBeforeDemotion = 3
        public var demotionSteps: ClosedRange<Int> = 32...1024
        /// This coordinator's instance id (new on every start).
        public var instance: UInt64
        /// What peers may make the coordinator hold or do.
        public var limits = ClusterLimits()
        /// `--verify-fraction`: the share of the steps' tree leaves (a shard's micro-batches of a
        /// step, chosen by a hash of the job's seed and `step·S + shard`) computed by two sources
        /// and compared bit for bit; `sync=gradients` only. 0 turns verification off.
        public var verifyFraction = 0.0

        public init(
            spec: WireMessage.JobSpec, plan: BatchPlan, steps: Int, checkpointEvery: Int?, minimumWorkers: Int,
            heartbeatInterval: Double, heartbeatLiveness: Int, instance: UInt64, localSteps: Int? = nil
        ) {
            precondition(localSteps.map { $0 >= 1 } ?? true, "localSteps must be at least 1")
            self.localSteps = localSteps
            self.spec = spec
            self.plan = plan
            self.steps = steps
            self.checkpointEvery = checkpointEvery
            self.minimumWorkers = minimumWorkers
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatLiveness = heartbeatLiveness
            self.instance = instance
        }

        /// Units of coordination in all: `steps`, or rounds of `localSteps` (the last may be shorter).
        public var units: Int {
            guard let localSteps else { return steps }
            return (steps + localSteps - 1) / localSteps
        }

        /// The global micro-batch indices of unit `u` (a step, or a round's steps), in order.
        public func microBatches(unit u: Int) -> Range<Int> {
            let perStep = plan.microBatchesPerStep
            guard let localSteps else { return (u * perStep)..<((u + 1) * perStep) }
            let first = u * localSteps, end = min(first + localSteps, steps)
            return (first * perStep)..<(end * perStep)
        }
    }
}
