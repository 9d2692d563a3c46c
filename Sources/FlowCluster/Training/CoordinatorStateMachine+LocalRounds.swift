import FlowWire

/// `sync=parameters`: the units of a round come back as parameters, averaged by the driver.
extension CoordinatorStateMachine {
    /// A worker's parameters after the local steps of its oldest unit.
    mutating func handleLocalResult(_ result: WireMessage.LocalResult, from id: UInt32, now: Double) -> [Action] {
        let identity = workers[id]?.identity ?? []
        guard result.jobID == job.spec.jobID else {
            droppedMessages += 1
            return [.log(.ignored(peer: identity, reason: "result for job \(result.jobID)"))]
        }
        guard phase == .running, result.round == UInt64(unit), result.baseVersion == UInt64(unit),
              let oldest = round.oldestUnit(of: id)
        else {
            // Late (an earlier round, or a unit that was taken back), or not asked for.
            droppedMessages += 1
            return []
        }
        let rows = oldest.count * job.plan.microBatchSize
        guard result.rowCount == UInt64(rows), result.parameters.count == parameterCount, result.parameters.dtype == job.spec.dtype else {
            return invalid(from: identity, reason: "local result of round \(unit) has \(result.rowCount) rows and \(result.parameters.count) \(result.parameters.dtype) values; expected \(rows) and \(parameterCount) \(job.spec.dtype)")
        }
        round.returnOldest(of: id, result)
        for g in oldest { pending[g] = nil }
        acceptedResults[id, default: 0] += oldest.count
        activity[id, default: WorkerActivity()].add(rows: Int(clamping: result.rowCount), seconds: result.computeSeconds)
        guard round.microBatchesDone == job.microBatches(unit: unit).count else { return [] }
        phase = .applying
        return [.averageRound(round: unit, results: round.results)]
    }
}
