import FlowData
import FlowWire

/// `sync=sharded`: the coordinator as the control plane of the sharded exchange.
///
/// A step runs as *attempts*, each under a `roster` (the live workers, in id order, with their
/// peer endpoints and keys; its `epoch` increases with every change of who is in it). The nodes
/// are covered and handed out as with `sync=gradients`, but a worker's `gradientResult` carries
/// no gradient: the partial itself goes, segment by segment, to the segments' owners. Once the
/// accepted nodes cover the step, every worker of the roster gets the `reduce` order (the nodes
/// and whose value of each counts); owners fold their segments in tree order and send them to
/// every worker; each worker then holds the step's whole gradient and reports `stepReady`. When
/// all have, with the same figures, the step is committed: the next roster (or `stateRequest`)
/// names the next version, and every worker applies the same Adam update.
///
/// A worker lost or gone before the commit restarts the attempt under a new roster: the covering
/// is redone (workers resend the partials they already computed), and no worker has applied
/// anything, so the bits are those of one process. A worker that joins takes part from the next
/// step, started with a `state` the driver holds or fetches from a worker. A demoted straggler
/// is left out of the roster (it would hold up every reduce as an owner) until its demotion ends.
extension CoordinatorStateMachine {
    /// Whether the job uses the sharded exchange.
    public var isSharded: Bool {
        if case .training(let training) = job.spec.mode, case .sharded = training.sync { return true }
        return false
    }

    /// Whether the workers' results carry the digest of their partials (`sync=sharded` with
    /// `--verify-fraction`).
    public var digestsResults: Bool {
        if case .training(let training) = job.spec.mode { return training.digestResults }
        return false
    }

    /// Starts an attempt of the current step: a new epoch when the roster changed (or `force`),
    /// the state to workers that lack this version, then the roster to everyone in it.
    mutating func beginAttempt(force: Bool, now: Double) -> [Action] {
        // A demoted worker (a repeat straggler) owns no shards and no segments either: as an
        // owner it would hold up every step's reduce.
        let eligible = liveWorkerIDs.filter { !stragglers.isDemoted($0) }
        let ids = eligible.isEmpty ? liveWorkerIDs : eligible
        if force || ids != roster {
            epoch += 1
            roster = ids
            rosterToken = UInt64.random(in: 1...UInt64.max)
        }
        readyReports.removeAll()
        readyTimes.removeAll()
        let message = WireMessage.roster(.init(
            jobID: job.spec.jobID, epoch: epoch, version: UInt64(unit), token: rosterToken, workerIDs: ids,
            endpoints: ids.map { workers[$0]?.peerEndpoint ?? "" }, keys: ids.map { workers[$0]?.key ?? "" }))
        var actions: [Action] = []
        for id in ids {
            guard let peer = workers[id] else { continue }
            if peer.version != UInt64(unit) {
                actions.append(.sendState(identity: peer.identity, version: UInt64(unit)))
                membership.members[id]?.version = UInt64(unit)
            }
            actions.append(send(id, message, now: now))
        }
        return actions
    }

    /// A change of membership in the middle of a step: the attempt starts over under the new
    /// roster (nothing of it was applied anywhere).
    mutating func restartAttempt(now: Double) -> [Action] {
        forgetAttempt()
        // Checked leaves are compared again: their sources must send their segments in the new epoch.
        verification.reset()
        stragglers.stepStarted(unit, now: now)
        phase = .running
        rebalance()
        return beginAttempt(force: true, now: now) + assignOutstanding(now: now)
    }

    /// Forgets everything of the current attempt: results, work out, reports, straggler marks.
    private mutating func forgetAttempt() {
        attemptSources.removeAll()
        results.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        resultSources.removeAll()
        readyReports.removeAll()
        readyTimes.removeAll()
        stragglers.reset()
    }

    /// The accepted nodes cover the step: every worker of the roster gets the reduce order.
    mutating func orderReduce(now: Double) -> [Action] {
        phase = .reducing
        reduceStarted = now
        let keys = results.keys.sorted()
        let order = WireMessage.reduce(.init(
            jobID: job.spec.jobID, step: UInt64(unit), epoch: epoch, nodes: keys.map { UInt64($0) },
            sources: keys.map { resultSources[$0] ?? 0 }))
        return roster.filter { workers[$0] != nil }.map { send($0, order, now: now) }
    }

    /// A worker holds the step's whole gradient. When every worker of the roster does, with
    /// the same figures, the step is committed (`stepReduced`); a disagreement or a non-finite
    /// gradient fails the job, as it fails single-process training.
    mutating func handleStepReady(_ report: WireMessage.StepReady, from id: UInt32, now: Double) -> [Action] {
        guard report.jobID == job.spec.jobID, phase == .reducing, report.step == UInt64(unit), report.epoch == epoch,
              roster.contains(id), readyReports[id] == nil
        else {
            droppedMessages += 1
            return []
        }
        readyReports[id] = report
        readyTimes[id] = now
        peerBytesSent[id] = report.peerBytesSent
        guard roster.allSatisfy({ readyReports[$0] != nil }) else { return [] }
        // The last report long after the others': that worker held up the reduce (a straggler
        // as an owner, even when its compute was on time).
        let times = roster.compactMap { readyTimes[$0] }.sorted()
        if times.count >= 2, times[times.count - 1] - times[times.count - 2] > max(job.minimumBackupDelay, 2 * lastReduceSeconds) {
            stragglers.heldUpReduce(id)
        }
        let reports = roster.map { readyReports[$0]! }
        let first = reports[0]
        if !first.problem.isEmpty {
            phase = .finished
            return [.failed(reason: "step \(unit + 1): \(first.problem) (reported by worker \(roster[0])); the parameters were not updated")]
        }
        for (index, other) in reports.enumerated() where other.rowCount != first.rowCount
            || other.meanLoss.bitPattern != first.meanLoss.bitPattern || other.gradientNorm.bitPattern != first.gradientNorm.bitPattern
            || other.problem != first.problem
        {
            phase = .finished
            return [.failed(reason: "step \(unit + 1): workers \(roster[0]) and \(roster[index]) hold different gradients (loss \(first.meanLoss) vs \(other.meanLoss), norm \(first.gradientNorm) vs \(other.gradientNorm)); an owner sent different values to different workers")]
        }
        phase = .applying
        lastReduceSeconds = now - reduceStarted
        let demotions: [Action] = stragglers.stepCompleted(unit, live: liveWorkerIDs, now: now).map {
            .log(.workerDemoted(id: $0.id, name: workers[$0.id]?.name ?? "", slowSteps: $0.slowSteps, until: $0.until))
        }
        return demotions + [.stepReduced(step: unit, meanLoss: first.meanLoss, gradientNorm: first.gradientNorm)]
    }

    /// Every worker that held the current state is gone (the driver could not fetch it, or the
    /// last one was lost): the run goes back to the driver's copy (``heldStateVersion``), the
    /// steps after it are computed again — the same bits, since nothing about a step depends on
    /// who computed it — and every worker is sent that state first. The driver reports none of
    /// the steps again that it reported already.
    public mutating func rollBack(now: Double) -> [Action] {
        guard isSharded, let version = heldStateVersion, version <= unit else {
            phase = .finished
            return [.failed(reason: "the training state of step \(unit + 1) is lost and no copy is held; continue from the last checkpoint with --resume")]
        }
        let from = unit
        unit = version
        tree = ReductionTree(plan: job.plan, step: unit)
        forgetAttempt()
        verification.reset()
        for id in liveWorkerIDs { membership.members[id]?.version = nil }
        roster = []  // a new epoch: what the workers hold of the lost attempts is void
        stalledRestarts = 0
        phase = .waiting
        let note: [Action] = version < from ? [.log(.rolledBack(step: version, from: from))] : []
        return note + startUnitIfPossible(now: now)
    }

    /// The safety net of the exchange between workers: a segment can be lost while both ends
    /// live (a queue that stayed full, a connection refused). A reduce that has not completed
    /// after the liveness deadline, and 8 × the last one's time, starts the attempt over (the
    /// workers resend what they computed).
    mutating func restartStalledReduce(now: Double) -> [Action] {
        guard isSharded, phase == .reducing else { return [] }
        let limit = max(job.heartbeatInterval * Double(job.heartbeatLiveness), 8 * lastReduceSeconds)
        guard now - reduceStarted > limit else { return [] }
        let silent = roster.filter { readyReports[$0] == nil }
        stalledRestarts += 1
        guard stalledRestarts <= Self.stalledRestartLimit else {
            phase = .finished
            return [.failed(reason: "step \(unit + 1): the workers' reduce stalled \(stalledRestarts) times in a row; no stepReady from worker\(silent.count == 1 ? "" : "s") \(silent.map(String.init).joined(separator: ", ")) — check that every worker's --peer-endpoint is reachable from the others (docs/operations.md, \"Ports\")")]
        }
        return [.log(.attemptRestarted(step: unit, seconds: now - reduceStarted))] + restartAttempt(now: now)
    }

    /// Stalled reduces of one step restarted before the job fails (each restart is a new epoch
    /// and new connections; a reduce that stalls again every time has a worker the others cannot
    /// reach, or that cannot reach them).
    static let stalledRestartLimit = 3

    /// After a commit: every worker of the roster holds the next version.
    mutating func committedSharded() {
        stalledRestarts = 0
        for id in roster { membership.members[id]?.version = UInt64(unit) }
        resultSources.removeAll()
        readyReports.removeAll()
        readyTimes.removeAll()
        attemptSources.removeAll()
    }

    /// `sync=sharded`: message bytes the live workers reported queuing to each other (the
    /// latest `stepReady` of each; workers that left take theirs with them).
    public var totalPeerBytesSent: UInt64 { liveWorkerIDs.reduce(0) { $0 + (peerBytesSent[$1] ?? 0) } }

    /// A message from `identity` arrived while the driver waits for a `state` (it is queued for
    /// later): its sender is alive all the same.
    public mutating func heard(from identity: [UInt8], now: Double) {
        membership.heard(from: identity, now: now)
    }

    /// The workers known to hold version `version` (the driver asks them for the state) — or
    /// able to make it: while a committed step is being reported, the workers of its roster hold
    /// its gradient, and a `stateRequest` for the next version applies it.
    public func workersHolding(version: UInt64) -> [UInt32] {
        if phase == .applying, version == UInt64(unit) + 1 { return roster.filter { workers[$0] != nil } }
        return liveWorkerIDs.filter { workers[$0]?.version == version }
    }
}
