import FlowWire

/// Joining, leaving and dying: what a change of membership does to shards and outstanding work.
extension CoordinatorStateMachine {
    mutating func handleHello(_ hello: WireMessage.Hello, from identity: [UInt8], key: String?, now: Double) -> [Action] {
        if let refusal = membership.judge(hello, from: identity, key: key, now: now) {
            var actions: [Action] = refusal.reply.map { [.send(identity: identity, message: $0)] } ?? []
            if let log = refusal.log { actions.append(.log(.helloRefused(peer: identity, reason: log.reason, total: log.total))) }
            return actions
        }
        if isSharded, hello.peerEndpoint.isEmpty {
            return [.send(identity: identity, message: .error(.init(
                code: .noPeerEndpoint, message: "this job uses the sharded exchange: start the worker with --peer-endpoint (an address of this host the other workers can reach)")))]
        }
        var actions: [Action] = []
        if let existing = membership.id(of: identity) {
            // The same connection says hello again (its welcome was lost, or it restarted behind
            // the same identity): start it over.
            actions += remove(existing, now: now, lost: true)
        }
        var role = TrainingRole()
        role.peerEndpoint = hello.peerEndpoint
        let id = membership.add(hello, from: identity, key: key, role: role, now: now)
        actions.append(send(id, membership.welcome(id, coordinator: job.instance), now: now))
        actions.append(send(id, .jobSpec(job.spec), now: now))
        if phase == .finished {
            actions.append(send(id, .goodbye(.init(reason: "job finished")), now: now))
            return actions
        }
        rebalance()
        actions.append(.log(.workerJoined(id: id, name: hello.name, shards: shards(of: id).count)))
        if phase == .waiting { actions += startUnitIfPossible(now: now) }
        return actions
    }

    /// Removes worker `id`, logged as lost (`lost`: it vanished, e.g. restarted behind the same
    /// identity) or as gone by its own goodbye; its shards become unowned and go to the others,
    /// and its unfinished work items of the current unit are handed out again.
    mutating func remove(_ id: UInt32, now: Double, lost: Bool) -> [Action] {
        guard let peer = workers[id] else { return [] }
        let event: LogEvent = lost
            ? .workerLost(id: id, name: peer.name, reassigned: pending.values.filter { $0 == id }.count)
            : .workerLeft(id: id, name: peer.name)
        return [.log(event)] + remove([id], now: now)
    }

    /// Removes several workers at once, then rebalances and reassigns their unfinished work
    /// items to the workers that remain.
    mutating func remove(_ ids: [UInt32], now: Double) -> [Action] {
        var gone: Set<UInt32> = []
        for id in ids {
            guard membership.remove(id) != nil else { continue }
            acceptedResults[id] = nil
            activity[id] = nil
            assignment.release(id)
            round.forget(id)
            stragglers.forget(id)
            gone.insert(id)
        }
        // sync=sharded: the attempt restarts when a worker of its roster went (one that joined
        // during the step had no part in it).
        if isSharded, phase == .running || phase == .reducing, !gone.isDisjoint(with: roster) {
            // With nobody left, the state lives only in the driver's copy: go back to it and
            // wait for workers.
            guard !workers.isEmpty else { return rollBack(now: now) }
            return restartAttempt(now: now)
        }
        guard phase == .running, !gone.isEmpty else { return [] }
        rebalance()
        let orphanedChecks = verification.orphaned(by: gone)
        let orphaned = Set(pending.filter { gone.contains($0.value) }.keys).union(orphanedChecks).sorted()
        guard !orphaned.isEmpty else { return [] }
        reassignedItems += orphaned.count
        if workers.isEmpty {
            // Nobody to give them to: wait for a worker.
            for g in orphaned { pending[g] = nil }
            phase = .waiting
            return []
        }
        guard job.localSteps == nil else { return assign(orphaned, now: now) }
        // Their nodes are covered again under the new ownership (split where it changed).
        for g in orphaned where pending[g].map(gone.contains) == true { pending[g] = nil }
        return assignOutstanding(now: now)
    }

    /// Spreads the shards over the live workers that are not demoted (over all live workers
    /// when every one is).
    mutating func rebalance() {
        let eligible = liveWorkerIDs.filter { !stragglers.isDemoted($0) }
        assignment.rebalance(among: eligible.isEmpty ? liveWorkerIDs : eligible)
    }

    // MARK: Replies

    mutating func send(_ id: UInt32, _ message: WireMessage, now: Double) -> Action {
        .send(identity: membership.send(id, now: now), message: message)
    }

    mutating func invalid(from identity: [UInt8], reason: String) -> [Action] {
        membership.invalid(from: identity, reason: reason).map { [.log(.invalidMessage(peer: identity, reason: $0))] } ?? []
    }

    /// A registered-only message from a peer the coordinator does not know (it was declared dead,
    /// or the coordinator restarted): tell it to say hello again.
    mutating func notRegistered(_ identity: [UInt8]) -> [Action] {
        droppedMessages += 1
        return [.send(identity: identity, message: MembershipTable<TrainingRole>.notRegistered)]
    }
}
