import FlowWire

/// The coordinator's decisions for a scoring job, as a pure state machine: events in
/// (`messageReceived`, `tick`), actions out. It holds no sockets, rows or results — only who
/// computes which chunk and which chunks are done — so every event in every state is tested
/// without a network; the driver (`ScoringCoordinator`) reads rows, sends, and writes results.
///
/// The rules it enforces (DESIGN §4):
/// - every chunk not done (by the journal or in this run) is computed until one valid result
///   for it is accepted; the first valid result counts, later ones (duplicates after a
///   reassignment, a stalled worker's late answer) are dropped and counted;
/// - each worker has at most `inFlightPerWorker` chunks at once (pipelining: the next chunk is
///   already queued at the worker when it finishes one, and the coordinator's memory is bounded);
///   chunks are handed out lowest index first, reassigned chunks before fresh ones;
/// - a worker silent for `heartbeatLiveness` intervals (or that says goodbye) is dead: its
///   chunks go back to the queue; a chunk outstanding longer than `stallTimeout` is also given to
///   another worker (once), without taking it from the first;
/// - an invalid message is counted and dropped, never fatal.
public struct ScoringStateMachine: Sendable {
    /// What the driver must do.
    public enum Action: Sendable, Equatable {
        /// Send `message` to the worker with ROUTER identity `identity`.
        case send(identity: [UInt8], message: WireMessage)
        /// Send the model's parameters to a worker.
        case sendParameters(identity: [UInt8])
        /// Read chunk `chunk`'s rows and send them to a worker as a `scoreChunk`.
        case sendChunk(identity: [UInt8], chunk: Int)
        /// Make this accepted result durable (output part, journal) before anything else.
        case storeResult(WireMessage.ScoreResult, worker: UInt32)
        /// Every chunk is done: assemble the outputs.
        case finished
        /// The job cannot go on.
        case failed(reason: String)
        /// Something worth a log line.
        case log(LogEvent)
        /// Refuse the CURVE key `key` (Z85, the ZAP user id of a quarantined worker's
        /// connection) at the next connections, for the rest of the run.
        case revokeKey(String)
    }

    /// Events worth logging.
    public enum LogEvent: Sendable, Equatable {
        case workerJoined(id: UInt32, name: String)
        case workerLost(id: UInt32, name: String, reassigned: Int)
        case workerLeft(id: UInt32, name: String, reassigned: Int)
        /// A chunk outstanding too long was also given to another worker.
        case chunkStalled(chunk: Int, worker: UInt32)
        /// Two workers' results for a verified chunk differ; a third worker computes it.
        case verificationMismatch(chunk: Int, workers: [UInt32])
        /// A worker whose result disagreed with two others is excluded from the job.
        case workerQuarantined(id: UInt32, name: String, chunk: Int)
        /// The first invalid message from a peer (later ones are only counted).
        case invalidMessage(peer: [UInt8], reason: String)
        /// A message that is valid but does not fit the job.
        case ignored(peer: [UInt8], reason: String)
        /// A hello refused by a limit (`ClusterLimits`) or a quarantine: logged for the 1st, 2nd,
        /// 4th, 8th, … refusal, with the count so far, so that a flood cannot flood the log.
        case helloRefused(peer: [UInt8], reason: String, total: Int)
    }

    /// What the coordinator keeps about a live worker besides the common fields.
    public struct ScoringRole: Sendable, Equatable {
        /// Chunks sent to it and not answered, with the time each was sent.
        public var inFlight: [Int: Double] = [:]
        /// Whether it has been sent the parameters.
        public var hasParameters = false
    }

    /// One live worker, as the coordinator sees it.
    public typealias Peer = MembershipTable<ScoringRole>.Member

    public let job: Job
    /// Who is in the job, and what peers did wrong.
    public internal(set) var membership: MembershipTable<ScoringRole>
    /// The live workers by id.
    public var workers: [UInt32: Peer] { membership.members }
    /// Invalid messages received, per peer identity (bounded: see `MembershipTable`).
    public var invalidMessages: [[UInt8]: Int] { membership.invalidMessages }
    /// Hellos refused by the rate limit, the worker cap or a quarantine.
    public var refusedHellos: Int { membership.refusedHellos }
    /// Valid but dropped messages (duplicates, late results, unknown senders).
    public internal(set) var droppedMessages = 0
    /// Rows accepted from each worker (by id) in this run.
    public internal(set) var acceptedRows: [UInt32: Int] = [:]
    /// Chunks given to another worker because theirs was lost, left or stalled.
    public internal(set) var reassignedChunks = 0
    /// Rows and reported compute time of each worker's accepted chunks in this run (monitoring only).
    public internal(set) var activity: [UInt32: WorkerActivity] = [:]
    /// Chunks done (journaled before this run, or accepted in it).
    public internal(set) var doneCount = 0
    /// Chunks accepted in this run.
    public internal(set) var acceptedChunks = 0
    /// Whether every chunk is done (or the job failed).
    public internal(set) var isFinished = false

    var done: [Bool]
    /// Chunks given back (their worker died or reported an error), handed out first.
    var retry: [Int] = []
    /// The lowest chunk never handed out.
    var cursor = 0
    /// Chunks already given to a second worker because the first stalled.
    var speculated: Set<Int> = []
    var failures: [Int: Int] = [:]
    var heartbeatSequence: UInt64 = 0
    /// Results received for verified chunks not yet decided, with the worker that sent each.
    var copies: [Int: [(worker: UInt32, result: WireMessage.ScoreResult)]] = [:]
    /// Results needed to decide a verified chunk (2, or 3 after a disagreement).
    var required: [Int: Int] = [:]
    /// Worker instances excluded for disagreeing (a hello from one is turned away).
    public var quarantined: Set<UInt64> { membership.quarantinedInstances }
    /// CURVE keys (Z85) of excluded workers: hellos over connections with them are turned away.
    public var quarantinedKeys: Set<String> { membership.quarantinedKeys }
    /// Instance and key of every worker that sent a copy of an undecided verified chunk (it may
    /// be gone when the copy is found wrong, and is quarantined all the same).
    var origins: [UInt32: (instance: UInt64, key: String?)] = [:]
    /// Verified chunks decided in this run, and how many needed a third computation.
    public internal(set) var verifiedChunks = 0
    public internal(set) var mismatches = 0

    /// A machine for `job`, with the chunks in `alreadyDone` (from the journal) not to compute.
    public init(job: Job, alreadyDone: Set<Int> = []) {
        self.job = job
        membership = MembershipTable(
            limits: job.limits, dtype: job.spec.dtype, heartbeatInterval: job.heartbeatInterval, heartbeatLiveness: job.heartbeatLiveness,
            quarantineReply: "quarantined: this worker's results disagreed with two other workers'")
        done = [Bool](repeating: false, count: job.chunkCount)
        for k in alreadyDone where k >= 0 && k < done.count && !done[k] {
            done[k] = true
            doneCount += 1
        }
        if doneCount == done.count { isFinished = true }
    }

    /// The live workers' ids, sorted.
    public var liveWorkerIDs: [UInt32] { membership.liveIDs }

    /// Rows in the chunks done so far.
    public var rowsDone: Int {
        // The last chunk may be short; every other chunk has chunkRows rows.
        guard let last = done.indices.last else { return 0 }
        return doneCount * job.chunkRows - (done[last] ? job.chunkRows - job.rowRange(ofChunk: last).count : 0)
    }

    /// Whether chunk `k` is done.
    public func isDone(_ k: Int) -> Bool { done[k] }

    /// The actions that start a run that is already complete (every chunk journaled).
    public func start() -> [Action] { isFinished ? [.finished] : [] }

    // MARK: Events

    /// A message arrived from `identity` (decoded by the driver: `InboundMessage`), over a
    /// connection whose ZAP handler gave it `userID` (with CURVE: the peer's public key in Z85).
    public mutating func messageReceived(_ inbound: InboundMessage, from identity: [UInt8], userID: String? = nil, now: Double) -> [Action] {
        switch membership.triage(inbound, from: identity, results: [.scoreResult], now: now) {
        case .hello(let hello):
            return handleHello(hello, from: identity, key: userID, now: now)
        case .fromMember(let id, .scoreResult(let result)):
            return handleResult(result, from: id, now: now)
        case .fromMember(let id, .goodbye):
            let count = workers[id]?.inFlight.count ?? 0
            return [.log(.workerLeft(id: id, name: workers[id]?.name ?? "", reassigned: count))] + remove([id], now: now)
        case .fromMember(let id, .error(let report)):
            return handleErrorReport(report, from: id, now: now)
        case .fromMember(_, let message):
            return invalid(from: identity, reason: "a worker may not send \(message.kind)")
        case .handled:
            return []
        case .notRegistered:
            return notRegistered(identity)
        case .invalid(let reason, let reply):
            return invalid(from: identity, reason: reason) + (reply.map { [.send(identity: identity, message: $0)] } ?? [])
        }
    }

    /// Time passed: the death of silent workers, stalled chunks, heartbeats to quiet workers.
    public mutating func tick(now: Double) -> [Action] {
        guard !isFinished else { return [] }
        var actions: [Action] = []
        let dead = membership.dead(now: now)
        for id in dead {
            actions.append(.log(.workerLost(id: id, name: workers[id]?.name ?? "", reassigned: workers[id]?.inFlight.count ?? 0)))
        }
        if !dead.isEmpty { actions += remove(dead, now: now) }
        for id in liveWorkerIDs {
            for (k, sent) in workers[id]!.inFlight.sorted(by: { $0.key < $1.key })
            where now - sent > job.stallTimeout && !speculated.contains(k) && !done[k] {
                speculated.insert(k)
                reassignedChunks += 1
                giveBack(k)
                actions.append(.log(.chunkStalled(chunk: k, worker: id)))
            }
        }
        actions += fillAll(now: now)
        for id in membership.heartbeatDue(now: now) {
            heartbeatSequence += 1
            actions.append(send(id, .heartbeat(.init(sequence: heartbeatSequence)), now: now))
        }
        return actions
    }

    // MARK: Membership

    mutating func handleHello(_ hello: WireMessage.Hello, from identity: [UInt8], key: String?, now: Double) -> [Action] {
        if let refusal = membership.judge(hello, from: identity, key: key, now: now) {
            var actions: [Action] = refusal.reply.map { [.send(identity: identity, message: $0)] } ?? []
            if let log = refusal.log { actions.append(.log(.helloRefused(peer: identity, reason: log.reason, total: log.total))) }
            return actions
        }
        var actions: [Action] = []
        if let existing = membership.id(of: identity) {
            actions += remove([existing], now: now)
        }
        let id = membership.add(hello, from: identity, key: key, role: ScoringRole(), now: now)
        actions.append(send(id, membership.welcome(id, coordinator: job.instance), now: now))
        actions.append(send(id, .jobSpec(job.spec), now: now))
        if isFinished {
            actions.append(send(id, .goodbye(.init(reason: "job finished")), now: now))
            return actions
        }
        actions.append(.log(.workerJoined(id: id, name: hello.name)))
        return actions + fill(id, now: now)
    }

    /// Removes workers; their chunks go back to the queue and to the workers that remain.
    mutating func remove(_ ids: [UInt32], now: Double) -> [Action] {
        for id in ids {
            guard let peer = membership.remove(id) else { continue }
            for k in peer.inFlight.keys where !done[k] {
                giveBack(k)
                reassignedChunks += 1
            }
        }
        return isFinished ? [] : fillAll(now: now)
    }

    // MARK: Helpers

    mutating func send(_ id: UInt32, _ message: WireMessage, now: Double) -> Action {
        .send(identity: membership.send(id, now: now), message: message)
    }

    mutating func invalid(from identity: [UInt8], reason: String) -> [Action] {
        membership.invalid(from: identity, reason: reason).map { [.log(.invalidMessage(peer: identity, reason: $0))] } ?? []
    }

    mutating func notRegistered(_ identity: [UInt8]) -> [Action] {
        droppedMessages += 1
        return [.send(identity: identity, message: MembershipTable<ScoringRole>.notRegistered)]
    }
}
