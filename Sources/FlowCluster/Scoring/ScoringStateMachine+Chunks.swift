import FlowWire

/// The chunk queue: handing out, giving back, accepting, and chunks a worker could not score.
extension ScoringStateMachine {
    /// Puts chunk `k` back in the queue when it lacks computations (none is running, or a
    /// verified chunk needs more copies than are running).
    mutating func giveBack(_ k: Int) {
        if missing(k) > 0 && !retry.contains(k) { retry.append(k) }
    }

    /// Results still to be asked for chunk `k`: those needed to decide it (plus one speculative
    /// copy of a stalled chunk) minus those received and those being computed.
    func missing(_ k: Int) -> Int {
        guard !done[k] else { return 0 }
        let running = workers.values.reduce(0) { $0 + ($1.inFlight[k] != nil ? 1 : 0) }
        let needed = (required[k] ?? 1) + (speculated.contains(k) ? 1 : 0)
        return needed - (copies[k]?.count ?? 0) - running
    }

    /// Whether worker `id` may compute chunk `k`: not while it holds it, and a verified chunk
    /// only by a worker that has not sent a copy of it.
    func eligible(_ k: Int, for id: UInt32) -> Bool {
        guard !done[k], missing(k) > 0, workers[id]?.inFlight[k] == nil else { return false }
        return !(copies[k]?.contains { $0.worker == id } ?? false)
    }

    // MARK: Chunks

    /// The next chunk to hand to worker `id`: a given-back one first (lowest index), else the
    /// lowest never handed out; skips done chunks and chunks the worker already holds.
    mutating func nextChunk(for id: UInt32) -> Int? {
        retry.sort()
        retry.removeAll { done[$0] }
        if let index = retry.firstIndex(where: { eligible($0, for: id) }) {
            let k = retry[index]
            // Keep it queued while it lacks more computations than this one (verification).
            if missing(k) <= 1 { retry.remove(at: index) }
            return k
        }
        while cursor < done.count && done[cursor] { cursor += 1 }
        guard cursor < done.count else { return nil }
        let k = cursor
        // Undecided verified chunks hold results in memory: bound them (a lone worker would
        // otherwise run ahead while nobody can give second copies).
        if job.isVerified(k) && required.count >= 8 * job.inFlightPerWorker { return nil }
        cursor += 1
        if job.isVerified(k) {
            required[k] = 2
            retry.append(k)  // its second copy goes to the next other worker with a free slot
        }
        return k
    }

    mutating func fill(_ id: UInt32, now: Double) -> [Action] {
        guard !isFinished, var peer = workers[id] else { return [] }
        var actions: [Action] = []
        while peer.inFlight.count < job.inFlightPerWorker {
            membership.members[id] = peer
            guard let k = nextChunk(for: id) else { break }
            if !peer.hasParameters {
                actions.append(.sendParameters(identity: peer.identity))
                peer.hasParameters = true
            }
            peer.inFlight[k] = now
            peer.lastSent = now
            actions.append(.sendChunk(identity: peer.identity, chunk: k))
        }
        membership.members[id] = peer
        return actions
    }

    mutating func fillAll(now: Double) -> [Action] {
        var actions: [Action] = []
        for id in liveWorkerIDs { actions += fill(id, now: now) }
        return actions
    }

    mutating func handleResult(_ result: WireMessage.ScoreResult, from id: UInt32, now: Double) -> [Action] {
        let identity = workers[id]?.identity ?? []
        guard result.jobID == job.spec.jobID else {
            droppedMessages += 1
            return [.log(.ignored(peer: identity, reason: "result for job \(result.jobID)"))]
        }
        guard let k = Int(exactly: result.chunk), k < done.count else {
            return invalid(from: identity, reason: "result for chunk \(result.chunk) of a job with \(done.count) chunks")
        }
        let range = job.rowRange(ofChunk: k)
        let D = Int(job.spec.architecture.dimension)
        guard result.firstRow == UInt64(range.lowerBound), Int(result.rowCount) == range.count,
              result.logProbs.dtype == job.spec.dtype,
              (result.latent != nil) == job.wantLatent,
              result.latent.map({ Int($0.dimension) == D && $0.values.dtype == job.spec.dtype }) ?? true
        else {
            return invalid(from: identity, reason: "result for chunk \(k) does not match it (rows \(result.firstRow)+\(result.rowCount), expected \(range.lowerBound)+\(range.count), \(job.spec.dtype), latent \(job.wantLatent))")
        }
        membership.members[id]?.inFlight[k] = nil
        guard !done[k], !isFinished else {
            droppedMessages += 1
            return fill(id, now: now)
        }
        if let needed = required[k] {
            return verify(k, result, from: id, needed: needed, now: now)
        }
        return accept(k, result, from: id, now: now)
    }

    /// Accepts `result` as chunk `k`'s: stored, and the job ends with the last chunk.
    mutating func accept(_ k: Int, _ result: WireMessage.ScoreResult, from id: UInt32, now: Double) -> [Action] {
        let range = job.rowRange(ofChunk: k)
        done[k] = true
        doneCount += 1
        acceptedChunks += 1
        acceptedRows[id, default: 0] += range.count
        activity[id, default: WorkerActivity()].add(rows: range.count, seconds: result.computeSeconds)
        var actions: [Action] = [.storeResult(result, worker: id)]
        if doneCount == done.count {
            isFinished = true
            for other in liveWorkerIDs {
                actions.append(send(other, .goodbye(.init(reason: "scoring finished")), now: now))
            }
            actions.append(.finished)
            return actions
        }
        return actions + fillAll(now: now)
    }

    /// A worker could not score a chunk: the chunk is given to a worker again (after the
    /// parameters, if they were missing); a chunk that fails `maximumChunkFailures` times fails
    /// the job (every worker runs the same code, so it would fail forever).
    mutating func handleErrorReport(_ report: WireMessage.ErrorReport, from id: UInt32, now: Double) -> [Action] {
        let note: [Action] = [.log(.ignored(peer: workers[id]?.identity ?? [], reason: "worker reported \(report.code): \(report.message)"))]
        guard report.jobID == job.spec.jobID, let item = report.item, let k = Int(exactly: item), k < done.count,
              workers[id]?.inFlight[k] != nil
        else {
            droppedMessages += 1
            return note
        }
        membership.members[id]?.inFlight[k] = nil
        if report.code == .missingParameters { membership.members[id]?.hasParameters = false }
        guard !done[k] else { return note + fill(id, now: now) }
        failures[k, default: 0] += 1
        if failures[k]! >= job.maximumChunkFailures {
            isFinished = true
            return note + [.failed(reason: "chunk \(k) failed \(failures[k]!) times; last report from worker \(id): \(report.code): \(report.message)")]
        }
        giveBack(k)
        return note + fillAll(now: now)
    }
}
