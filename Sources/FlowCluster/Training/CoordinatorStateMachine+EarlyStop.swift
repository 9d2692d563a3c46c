extension CoordinatorStateMachine {
    /// `--early-stop`: ends the job after the unit (step, or round with `sync=parameters`) being
    /// applied. Call it before `unitApplied(now:)`; that call then checkpoints (when the job
    /// checkpoints), says goodbye to every worker and finishes, as at the last unit.
    public mutating func endAfterCurrentUnit() {
        precondition(!isFinished, "endAfterCurrentUnit() after the job finished")
        earlyEnd = unit + 1
    }
}
