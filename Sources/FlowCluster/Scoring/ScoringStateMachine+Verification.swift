import FlowWire

/// `--verify-fraction`: verified chunks are computed by two workers; two equal copies decide a
/// chunk, a disagreement asks a third, and the worker whose copy differs from two others is
/// quarantined.
extension ScoringStateMachine {
    /// A copy of verified chunk `k`: kept until `needed` copies are in; two equal copies decide
    /// it; after a disagreement a third computation decides, and the worker whose copy differs
    /// from the two others is quarantined.
    mutating func verify(_ k: Int, _ result: WireMessage.ScoreResult, from id: UInt32, needed: Int, now: Double) -> [Action] {
        if copies[k]?.contains(where: { $0.worker == id }) == true {
            droppedMessages += 1
            return fill(id, now: now)
        }
        if let peer = workers[id] { origins[id] = (peer.instance, peer.key) }
        copies[k, default: []].append((id, result))
        return settle(k, now: now)
    }

    /// Decides verified chunk `k` when enough copies are in: two equal copies decide it (and a
    /// worker whose copy differs from them is quarantined); two different copies ask for a third.
    mutating func settle(_ k: Int, now: Double) -> [Action] {
        guard !done[k], let needed = required[k] else { return [] }
        let received = copies[k] ?? []
        guard received.count >= needed else {
            giveBack(k)
            return fillAll(now: now)
        }
        for i in received.indices {
            for j in received.indices where j > i && Self.sameBits(received[i].result, received[j].result) {
                let winner = received[i]
                copies[k] = nil
                required[k] = nil
                verifiedChunks += 1
                var actions = accept(k, winner.result, from: winner.worker, now: now)
                for other in received where !Self.sameBits(other.result, winner.result) {
                    actions += quarantine(other.worker, chunk: k, now: now)
                }
                forgetOrigins()
                return actions
            }
        }
        if needed >= 3 {
            isFinished = true
            return [.failed(reason: "chunk \(k): three workers (\(received.map { String($0.worker) }.joined(separator: ", "))) computed three different results")]
        }
        mismatches += 1
        required[k] = 3
        giveBack(k)
        return [.log(.verificationMismatch(chunk: k, workers: received.map(\.worker)))] + fillAll(now: now)
    }

    /// Excludes worker `id`: goodbye, its chunks go to others, its undecided copies are
    /// discarded — and a disagreement it took part in needs only two agreeing copies again.
    mutating func quarantine(_ id: UInt32, chunk: Int, now: Double) -> [Action] {
        guard !isFinished || workers[id] != nil else { return [] }
        var actions: [Action] = [.log(.workerQuarantined(id: id, name: workers[id]?.name ?? "", chunk: chunk))]
        if let origin = origins[id], let key = membership.quarantine(instance: origin.instance, key: origin.key) {
            actions.append(.revokeKey(key))
        }
        if workers[id] != nil {
            actions.append(send(id, .goodbye(.init(reason: "quarantined: a result of chunk \(chunk) disagreed with two other workers'")), now: now))
        }
        var affected: [Int] = []
        for k in copies.keys.sorted() where copies[k]!.contains(where: { $0.worker == id }) {
            copies[k]!.removeAll { $0.worker == id }
            if required[k] == 3 { required[k] = 2 }
            affected.append(k)
        }
        actions += remove([id], now: now)
        for k in affected where !isFinished { actions += settle(k, now: now) }
        return actions + (isFinished ? [] : fillAll(now: now))
    }

    /// Keeps the origin of a worker only while it has a copy of an undecided chunk (bounded by
    /// the undecided chunks, which `nextChunk` bounds).
    mutating func forgetOrigins() {
        let holders = Set(copies.values.flatMap { $0.map(\.worker) })
        origins = origins.filter { holders.contains($0.key) }
    }

    /// Whether two results of a chunk are the same outputs, bit for bit (statuses, log-probs,
    /// latents); the worker's compute time is not an output.
    static func sameBits(_ a: WireMessage.ScoreResult, _ b: WireMessage.ScoreResult) -> Bool {
        var b = b
        b.computeSeconds = a.computeSeconds
        return a == b
    }
}
