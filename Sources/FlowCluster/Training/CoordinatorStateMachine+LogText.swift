extension CoordinatorStateMachine.LogEvent {
    /// The event as the coordinator logs it.
    public var logLine: String {
        switch self {
        case .workerJoined(let id, let name, let shards): return "worker \(id) (\(name)) joined; owns \(shards) shards"
        case .workerLost(let id, let name, let n): return "worker \(id) (\(name)) lost; \(n) work items reassigned"
        case .workerLeft(let id, let name): return "worker \(id) (\(name)) left"
        case .backup(let items, let slow, let to):
            return "worker \(slow.map(String.init).joined(separator: ", ")) is slow: \(items.count) work items also sent to worker \(to)"
        case .workerDemoted(let id, let name, let slowSteps, let until):
            return "worker \(id) (\(name)) was slower than its backups \(slowSteps) steps in a row; it owns no shards until step \(until)"
        case .invalidMessage(let peer, let reason): return CoordinatorRouter.describe(invalidMessageFrom: peer, reason: reason)
        case .ignored(let peer, let reason): return CoordinatorRouter.describe(ignoredMessageFrom: peer, reason: reason)
        case .resultsDisagree(let item, let ids):
            return "\(item): workers \(ids.map(String.init).joined(separator: " and ")) returned different bits; computing it here to settle it"
        case .workerQuarantined(let id, let name, let item, let redone):
            return "worker \(id) (\(name)) quarantined: its result for \(item) disagreed with the coordinator's own computation; \(redone) of its unverified results of this step are redone, and it is refused from now on"
        case .rolledBack(let step, let from):
            return "no live worker holds the training state of step \(from + 1) any more (the sharded exchange keeps it on the workers): going back to the copy of step \(step) and computing the steps after it again (same bits)"
        case .attemptRestarted(let step, let seconds):
            return "the workers' reduce of step \(step + 1) did not complete in \(String(format: "%.1f", seconds)) s (a segment was lost between workers); starting the step's exchange over"
        case .helloRefused(let peer, let reason, let total):
            return CoordinatorRouter.describe(refusedHelloFrom: peer, reason: reason, total: total)
        }
    }
}
