import FlowData
import FlowWire

/// Handing out a unit's work items, taking their results, backing up slow work.
///
/// A work item is, with `sync=gradients`, a node of the step's reduction tree (its
/// `TreeNode.key`): the step is covered by the largest nodes whose micro-batches all come from
/// shards of one worker, so that a worker normally returns one pre-reduced partial per step;
/// with `sync=parameters`, a global micro-batch.
extension CoordinatorStateMachine {
    mutating func startUnitIfPossible(now: Double) -> [Action] {
        guard phase == .waiting, workers.count >= (started ? 1 : max(1, job.minimumWorkers)) else { return [] }
        phase = .running
        started = true
        stragglers.stepStarted(unit, now: now)
        rebalance()
        guard job.localSteps == nil else { return assign(Array(job.microBatches(unit: unit)), now: now) }
        if isSharded { return beginAttempt(force: false, now: now) + assignOutstanding(now: now) }
        return assignOutstanding(now: now)
    }

    /// `sync=gradients`: hands out what no accepted or pending node covers: the largest nodes that
    /// overlap none of those, whose micro-batches come from shards of one owner, and that hold
    /// no checked leaf (checked leaves go alone, and through `assign`'s second source even when
    /// pending).
    mutating func assignOutstanding(now: Double) -> [Action] {
        let taken = results.keys.compactMap { TreeNode(key: UInt64($0)) }
            + pending.keys.filter { !isChecked(item: $0) }.compactMap { TreeNode(key: UInt64($0)) }
        let items = tree.cover(tree.root, keepWhole: { node in
            guard !taken.contains(where: { node.contains($0) || $0.contains(node) }) else { return false }
            let shards = tree.shards(under: node)
            let owner = assignment.owner[shards[0]]
            return shards.allSatisfy { assignment.owner[$0] == owner && !isCheckedLeaf($0) }
        }).filter { node in !taken.contains { $0.contains(node) } }
        return assign(items.map { Int($0.key) }, now: now)
    }

    /// The shard whose owner computes work item `item` (a node's first shard with micro-batches,
    /// or a micro-batch's shard).
    func ownerShard(of item: Int) -> Int {
        guard job.localSteps == nil else { return job.plan.microBatch(globalIndex: item).shard }
        return tree.shards(under: TreeNode(key: UInt64(item))!)[0]
    }

    /// The shards whose rows work item `item` reads.
    func shardsRead(by item: Int) -> [Int] {
        guard job.localSteps == nil else { return [job.plan.microBatch(globalIndex: item).shard] }
        return tree.shards(under: TreeNode(key: UInt64(item))!)
    }

    /// Micro-batches in work item `item`.
    func microBatchCount(of item: Int) -> Int {
        guard job.localSteps == nil else { return 1 }
        return tree.microBatches(under: TreeNode(key: UInt64(item))!).count
    }

    /// Sends work items to the owners of their shards, preceded by the rows and parameters each
    /// owner lacks. A checked item gets a second source.
    mutating func assign(_ items: [Int], now: Double) -> [Action] {
        var byWorker: [UInt32: [Int]] = [:]
        var actions: [Action] = []
        for g in items {
            guard var owner = assignment.owner[ownerShard(of: g)] else { continue }
            // sync=sharded: a worker that joined during the step owns shards but is not in the
            // attempt's roster, so it could not send the node's segments: a roster worker computes it.
            if isSharded, !roster.contains(owner) {
                let live = roster.filter { workers[$0] != nil }
                guard let stand = live.first(where: { $0 > owner }) ?? live.first else { continue }
                owner = stand
            }
            guard isChecked(item: g) else {
                pending[g] = owner
                byWorker[owner, default: []].append(g)
                continue
            }
            // A checked item needs two sources: the owner of its shard when it has not
            // answered yet, then other live workers (the next ids after the owner), then the
            // coordinator itself.
            guard results[g] == nil else { continue }
            let live = workers
            var sources = verification.sources(of: g, pending: pending[g]) { live[$0] != nil }
            // A live worker still computing it stays one of its sources (ownership may have moved
            // since it was given the leaf: replacing it would drop its answer and stall the step).
            let computing = pending[g].map { live[$0] != nil } ?? false
            if !sources.contains(owner), sources.count < 2 {
                if computing {
                    verification.addVerifier(owner, of: g)
                } else {
                    pending[g] = owner
                }
                byWorker[owner, default: []].append(g)
                sources.insert(owner)
            }
            // sync=sharded: only workers of the attempt's roster can send a partial's segments.
            let ids = liveWorkerIDs.filter { !stragglers.isDemoted($0) && (!isSharded || roster.contains($0)) }
            let after = ids.filter { $0 > owner } + ids.filter { $0 < owner }
            for v in after where sources.count < 2 && !sources.contains(v) {
                verification.addVerifier(v, of: g)
                byWorker[v, default: []].append(g)
                sources.insert(v)
            }
            if sources.count < 2, !sources.contains(0), verification.askCoordinator(g) {
                actions.append(.computeLocally(step: unit, item: g))
            }
        }
        for id in byWorker.keys.sorted() {
            guard let list = byWorker[id] else { continue }
            stragglers.ownerGiven(id)
            if job.localSteps != nil { round.sent(list, to: id) }
            actions += handOut(list, to: id, now: now)
        }
        return actions
    }

    /// The actions that give worker `id` the work items `list` of the current unit: the rows of
    /// shards it lacks, the current parameters unless it holds them, then the assignment.
    mutating func handOut(_ list: [Int], to id: UInt32, now: Double) -> [Action] {
        guard var peer = workers[id] else { return [] }
        var actions: [Action] = []
        for shard in Set(list.flatMap { shardsRead(by: $0) }).sorted() where !peer.rowsHeld.contains(shard) {
            actions.append(.sendShard(identity: peer.identity, shard: shard))
            peer.rowsHeld.insert(shard)
        }
        if peer.version != UInt64(unit) {
            // sync=sharded: every worker of the roster got the state with it (beginAttempt).
            actions.append(isSharded
                ? .sendState(identity: peer.identity, version: UInt64(unit)) : .sendParameters(identity: peer.identity, version: UInt64(unit)))
            peer.version = UInt64(unit)
        }
        peer.lastSent = now
        membership.members[id] = peer
        if isSharded { for g in list { attemptSources[g, default: []].insert(id) } }
        actions.append(.send(identity: peer.identity, message: .assignment(.init(
            jobID: job.spec.jobID, step: UInt64(unit), version: UInt64(unit), items: list.map { UInt64($0) }))))
        return actions
    }

    mutating func handleResult(_ result: WireMessage.GradientResult, from id: UInt32, now: Double) -> [Action] {
        let identity = workers[id]?.identity ?? []
        guard result.jobID == job.spec.jobID else {
            droppedMessages += 1
            return [.log(.ignored(peer: identity, reason: "result for job \(result.jobID)"))]
        }
        let g = Int(clamping: result.node)
        if isChecked(item: g) {
            return handleCheckedResult(result, item: g, from: id, now: now)
        }
        guard phase == .running, result.step == UInt64(unit), result.version == UInt64(unit),
              pending[g] != nil, results[g] == nil, !isSharded || attemptSources[g]?.contains(id) == true
        else {
            // Late (an earlier step), duplicate (reassigned and computed twice) or not asked for.
            droppedMessages += 1
            return []
        }
        if let problem = shapeProblem(result, item: g) { return invalid(from: identity, reason: problem) }
        results[g] = result
        resultSources[g] = id
        acceptedResults[id, default: 0] += 1
        activity[id, default: WorkerActivity()].add(rows: Int(result.rowCount), seconds: result.computeSeconds)
        verification.acceptedUnverified(g, from: id)
        stragglers.resultAccepted(from: id, owner: pending[g], now: now)
        pending[g] = nil  // done: a worker lost from now on has nothing of it to reassign
        return completeStepIfDone(now: now)
    }

    mutating func completeStepIfDone(now: Double) -> [Action] {
        guard phase == .running, results.keys.reduce(0, { $0 + microBatchCount(of: $1) }) == job.plan.microBatchesPerStep else { return [] }
        if isSharded { return orderReduce(now: now) }
        phase = .applying
        let demotions: [Action] = stragglers.stepCompleted(unit, live: liveWorkerIDs, now: now).map {
            .log(.workerDemoted(id: $0.id, name: workers[$0.id]?.name ?? "", slowSteps: $0.slowSteps, until: $0.until))
        }
        // Disjoint nodes: ordered by key is tree order.
        let ordered = results.keys.sorted().map { results[$0]! }
        return demotions + [.applyStep(step: unit, results: ordered)]
    }

    /// Backups for slow workers (`sync=gradients`; the rule is `StragglerPolicy`'s), sent with
    /// the rows and parameters the idle worker lacks.
    mutating func backUpSlowWork(now: Double) -> [Action] {
        guard job.localSteps == nil, phase == .running else { return [] }
        var actions: [Action] = []
        // sync=sharded: only workers of the attempt's roster can send a partial's segments.
        let candidates = isSharded ? liveWorkerIDs.filter(roster.contains) : liveWorkerIDs
        for (to, list) in stragglers.backups(pending: pending, live: candidates, now: now) {
            // A checked item's backup is one more source for its comparison.
            for g in list where isChecked(item: g) { verification.addVerifier(to, of: g) }
            actions.append(.log(.backup(items: list, slow: Set(list.compactMap { pending[$0] }).sorted(), to: to)))
            actions += handOut(list, to: to, now: now)
        }
        return actions
    }

    /// A worker could not compute a work item it was given. Missing rows or parameters are sent
    /// again and the item reassigned; a non-finite result fails the job, as it fails
    /// single-process training (every worker would compute the same bits).
    mutating func handleErrorReport(_ report: WireMessage.ErrorReport, from id: UInt32, now: Double) -> [Action] {
        let note: [Action] = [.log(.ignored(peer: workers[id]?.identity ?? [], reason: "worker reported \(report.code): \(report.message)"))]
        guard phase == .running, report.jobID == job.spec.jobID, report.step == UInt64(unit),
              let item = report.item, let g = Int(exactly: item), pending[g] == id || verification.isVerifying(id, g)
        else {
            droppedMessages += 1
            return note
        }
        switch report.code {
        case .nonFinite:
            phase = .finished
            return note + [.failed(reason: "step \(unit + 1): \(describe(item: g)) has a non-finite loss or gradient (reported by worker \(id)); the parameters were not updated")]
        default:
            // The work to redo: the node, or (sync=parameters) the unit it starts.
            var redo = [g]
            if job.localSteps != nil {
                guard let taken = round.takeBack(unitStarting: g, from: id) else {
                    droppedMessages += 1
                    return note
                }
                redo = taken
            }
            // Forget what we believed it held, so that the reassignment resends rows and parameters.
            for m in redo {
                for shard in shardsRead(by: m) { membership.members[id]?.rowsHeld.remove(shard) }
                if pending[m] == id { pending[m] = nil }
                verification.removeVerifier(id, of: m)  // it was computing a check copy
            }
            membership.members[id]?.version = nil
            return note + assign(redo, now: now)
        }
    }

    /// Why a gradient result cannot be the value of node `item` of this step (rows, length,
    /// dtype), or nil when it can.
    func shapeProblem(_ result: WireMessage.GradientResult, item: Int) -> String? {
        let rows = microBatchCount(of: item) * job.plan.microBatchSize
        // sync=sharded: the gradient went to the segments' owners; the result carries none.
        let values = isSharded ? 0 : parameterCount
        guard result.rowCount == UInt64(rows), result.gradient.count == values, result.gradient.dtype == job.spec.dtype else {
            return "result for \(describe(item: item)) has \(result.rowCount) rows and \(result.gradient.count) \(result.gradient.dtype) values; expected \(rows) and \(values) \(job.spec.dtype)"
        }
        return nil
    }

    /// A work item as log lines name it: `shards 0..<32 of step 7`, or `micro-batch 12`.
    func describe(item: Int) -> String {
        guard job.localSteps == nil, let node = TreeNode(key: UInt64(item)) else { return "micro-batch \(item)" }
        return "\(node) of step \(unit + 1)"
    }

    /// The flat parameter count implied by the job's architecture.
    public var parameterCount: Int {
        let a = job.spec.architecture
        let d = Int(a.dimension) / 2, e = Int(a.dimension) - d, H = Int(a.hidden), depth = Int(a.depth)
        var perCoupling = (d * H + H) + (2 * e * H + 2 * e)
        perCoupling += (depth - 1) * (H * H + H)
        return Int(a.couplings) * perCoupling
    }
}
