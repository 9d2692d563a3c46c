import FlowWire

/// `--verify-fraction`: checked leaves of the reduction tree (a shard's micro-batches of the
/// step; usually one) are accepted when two sources agree; the
/// coordinator's own computation settles a disagreement, and a worker that disagrees with it is
/// quarantined (the rule and the bookkeeping are `StepVerification`'s).
///
/// `sync=sharded`: both sources of a checked leaf send its segments to the owners and report the
/// partial's digest (`gradientResult.digest`); the sources are compared by it, and the reduce
/// order names a worker whose bits were accepted. A quarantine restarts the attempt without the
/// liar, and the checked leaves of the step are compared again from scratch.
extension CoordinatorStateMachine {
    /// The coordinator computed node `result.node` of the current step itself (after a
    /// `computeLocally` action).
    public mutating func coordinatorComputed(_ result: WireMessage.GradientResult, now: Double) -> [Action] {
        let g = Int(clamping: result.node)
        guard phase == .running || phase == .waiting, result.step == UInt64(unit), verification.coordinatorAnswered(g) else { return [] }
        guard results[g] == nil else { return [] }
        verification.addCandidate(result, for: g, from: 0)
        // Every worker gone meanwhile: kept, and compared when the step goes on.
        guard phase == .running else { return [] }
        return settle(g, now: now)
    }

    /// The workers that gave a result for checked leaf `item` of this step (the suspects of a
    /// disagreement the coordinator settles).
    public func sources(ofChecked item: Int) -> Set<UInt32> { verification.answeredWorkers(of: item) }

    /// A worker's result for a checked leaf: kept until a second source has answered.
    mutating func handleCheckedResult(_ result: WireMessage.GradientResult, item g: Int, from id: UInt32, now: Double) -> [Action] {
        guard phase == .running, result.step == UInt64(unit), result.version == UInt64(unit), results[g] == nil,
              pending[g] == id || verification.isVerifying(id, g), !verification.hasCandidate(g, from: id),
              !isSharded || attemptSources[g]?.contains(id) == true
        else {
            droppedMessages += 1
            return []
        }
        if let problem = shapeProblem(result, item: g) { return invalid(from: workers[id]?.identity ?? [], reason: problem) }
        if digestsResults, result.digest == 0 {
            return invalid(from: workers[id]?.identity ?? [], reason: "result for \(describe(item: g)) carries no digest (this job compares checked leaves by digest)")
        }
        if pending[g] == id { pending[g] = nil } else { verification.removeVerifier(id, of: g) }
        verification.addCandidate(result, for: g, from: id)
        acceptedResults[id, default: 0] += 1
        activity[id, default: WorkerActivity()].add(rows: Int(result.rowCount), seconds: result.computeSeconds)
        return settle(g, now: now)
    }

    /// Acts on the verdict on checked leaf `g`.
    mutating func settle(_ g: Int, now: Double) -> [Action] {
        switch verification.verdict(on: g) {
        case .undecided:
            return []
        case .accept(let result, let source, let liars):
            if isSharded {
                // The quarantine restarts the attempt; the value then comes again from a new comparison.
                guard liars.isEmpty else { return quarantine(liars, item: g, now: now) }
                resultSources[g] = source
            }
            results[g] = result
            return (liars.isEmpty ? [] : quarantine(liars, item: g, now: now)) + completeStepIfDone(now: now)
        case .askCoordinator(let disagreeing):
            return [.log(.resultsDisagree(item: describe(item: g), workers: disagreeing)), .computeLocally(step: unit, item: g)]
        }
    }

    /// Drops workers whose result disagreed with the coordinator's: they get a goodbye, their
    /// hellos are refused from now on, and their unverified results of this step are redone.
    mutating func quarantine(_ ids: [UInt32], item g: Int, now: Double) -> [Action] {
        var actions: [Action] = []
        var redo: Set<Int> = []
        for id in ids {
            guard let peer = workers[id] else { continue }
            if let key = membership.quarantine(instance: peer.instance, key: peer.key) { actions.append(.revokeKey(key)) }
            let (unverified, lostCandidates) = verification.discard(id)
            for m in unverified { results[m] = nil }
            redo.formUnion(unverified)
            redo.formUnion(lostCandidates.filter { results[$0] == nil })
            actions.append(.log(.workerQuarantined(id: id, name: peer.name, item: describe(item: g), redone: unverified.count)))
            actions.append(send(id, .goodbye(.init(reason: "quarantined: its result for \(describe(item: g)) disagreed with the coordinator's own computation")), now: now))
        }
        // sync=sharded: a liar of the roster restarts the attempt without it (`remove`).
        let restarts = isSharded && !Set(ids).isDisjoint(with: roster)
        actions += remove(ids, now: now)
        guard phase == .running, !workers.isEmpty, !restarts else { return actions }
        guard job.localSteps == nil else { return actions + assign(redo.filter { results[$0] == nil }.sorted(), now: now) }
        return actions + assignOutstanding(now: now)
    }
}
