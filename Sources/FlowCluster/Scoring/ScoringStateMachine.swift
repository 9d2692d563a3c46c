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

    /// Fixed facts of the job.
    public struct Job: Sendable {
        /// The `jobSpec` every worker receives after `welcome` (mode `.scoring`).
        public var spec: WireMessage.JobSpec
        /// Rows of the input.
        public var rowCount: Int
        /// Rows per chunk.
        public var chunkRows: Int
        /// Chunks a worker may hold at once.
        public var inFlightPerWorker: Int
        /// Heartbeat interval in seconds.
        public var heartbeatInterval: Double
        /// Missed intervals after which a peer is dead.
        public var heartbeatLiveness: Int
        /// Seconds after which an outstanding chunk is also given to another worker.
        public var stallTimeout: Double
        /// Failures reported for one chunk after which the job fails.
        public var maximumChunkFailures: Int
        /// This coordinator's instance id.
        public var instance: UInt64
        /// The fraction of chunks computed by two different workers and compared bit for bit
        /// (0: none). Which chunks is a pure function of the chunk index (``isVerified(_:)``).
        public var verifyFraction: Double
        /// What peers may make the coordinator hold or do (hello rate, worker cap, tracked peers).
        public var limits = ClusterLimits()

        public init(
            spec: WireMessage.JobSpec, rowCount: Int, chunkRows: Int, inFlightPerWorker: Int = 2,
            heartbeatInterval: Double = 0.25, heartbeatLiveness: Int = 8, stallTimeout: Double = 60,
            maximumChunkFailures: Int = 3, instance: UInt64, verifyFraction: Double = 0
        ) {
            self.verifyFraction = verifyFraction
            self.spec = spec
            self.rowCount = rowCount
            self.chunkRows = chunkRows
            self.inFlightPerWorker = inFlightPerWorker
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatLiveness = heartbeatLiveness
            self.stallTimeout = stallTimeout
            self.maximumChunkFailures = maximumChunkFailures
            self.instance = instance
        }

        /// Number of chunks.
        public var chunkCount: Int { (rowCount + chunkRows - 1) / chunkRows }

        /// The rows of chunk `k`.
        public func rowRange(ofChunk k: Int) -> Range<Int> {
            let first = k * chunkRows
            return first..<min(rowCount, first + chunkRows)
        }

        /// Whether chunk `k` is verified: a hash of `k` mapped to [0, 1) falls below the fraction.
        /// The same chunks in every run of the job, resumed or not.
        public func isVerified(_ k: Int) -> Bool {
            guard verifyFraction > 0 else { return false }
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            var v = UInt64(k)
            for _ in 0..<8 {
                h ^= v & 0xFF
                h = h &* 0x0000_0100_0000_01B3
                v >>= 8
            }
            h ^= h >> 29
            return Double(h >> 11) / Double(1 << 53) < verifyFraction
        }

        var wantLatent: Bool {
            if case .scoring(let s) = spec.mode { return s.wantLatent }
            return false
        }
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
    public private(set) var membership: MembershipTable<ScoringRole>
    /// The live workers by id.
    public var workers: [UInt32: Peer] { membership.members }
    /// Invalid messages received, per peer identity (bounded: see `MembershipTable`).
    public var invalidMessages: [[UInt8]: Int] { membership.invalidMessages }
    /// Hellos refused by the rate limit, the worker cap or a quarantine.
    public var refusedHellos: Int { membership.refusedHellos }
    /// Valid but dropped messages (duplicates, late results, unknown senders).
    public private(set) var droppedMessages = 0
    /// Rows accepted from each worker (by id) in this run.
    public private(set) var acceptedRows: [UInt32: Int] = [:]
    /// Chunks done (journaled before this run, or accepted in it).
    public private(set) var doneCount = 0
    /// Chunks accepted in this run.
    public private(set) var acceptedChunks = 0
    /// Whether every chunk is done (or the job failed).
    public private(set) var isFinished = false

    private var done: [Bool]
    /// Chunks given back (their worker died or reported an error), handed out first.
    private var retry: [Int] = []
    /// The lowest chunk never handed out.
    private var cursor = 0
    /// Chunks already given to a second worker because the first stalled.
    private var speculated: Set<Int> = []
    private var failures: [Int: Int] = [:]
    private var heartbeatSequence: UInt64 = 0
    /// Results received for verified chunks not yet decided, with the worker that sent each.
    private var copies: [Int: [(worker: UInt32, result: WireMessage.ScoreResult)]] = [:]
    /// Results needed to decide a verified chunk (2, or 3 after a disagreement).
    private var required: [Int: Int] = [:]
    /// Worker instances excluded for disagreeing (a hello from one is turned away).
    public var quarantined: Set<UInt64> { membership.quarantinedInstances }
    /// CURVE keys (Z85) of excluded workers: hellos over connections with them are turned away.
    public var quarantinedKeys: Set<String> { membership.quarantinedKeys }
    /// Instance and key of every worker that sent a copy of an undecided verified chunk (it may
    /// be gone when the copy is found wrong, and is quarantined all the same).
    private var origins: [UInt32: (instance: UInt64, key: String?)] = [:]
    /// The ZAP user id of the message being handled (see `messageReceived(from:bytes:userID:now:)`).
    private var currentUserID: String?
    /// Verified chunks decided in this run, and how many needed a third computation.
    public private(set) var verifiedChunks = 0
    public private(set) var mismatches = 0

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

    /// A message (one frame after the identity) arrived from `identity`.
    public mutating func messageReceived(from identity: [UInt8], bytes: [UInt8], now: Double) -> [Action] {
        bytes.withUnsafeBytes { messageReceived(from: identity, bytes: $0, userID: nil, now: now) }
    }

    /// A message arrived from `identity` over a connection whose ZAP handler gave it `userID`
    /// (with CURVE: the peer's public key in Z85), read in place.
    public mutating func messageReceived(from identity: [UInt8], bytes: UnsafeRawBufferPointer, userID: String?, now: Double) -> [Action] {
        currentUserID = userID
        defer { currentUserID = nil }
        let message: WireMessage
        do {
            message = try WireMessage.decode(bytes)
        } catch {
            let reply = MembershipTable<ScoringRole>.reply(toUndecodable: error, bytes: bytes)
            return invalid(from: identity, reason: "\(error)") + (reply.map { [.send(identity: identity, message: $0)] } ?? [])
        }
        membership.heard(from: identity, now: now)
        switch message {
        case .hello(let hello):
            return handleHello(hello, from: identity, now: now)
        case .scoreResult(let result):
            return handleResult(result, from: identity, now: now)
        case .heartbeat:
            return membership.id(of: identity) == nil ? notRegistered(identity) : []
        case .goodbye:
            guard let id = membership.id(of: identity) else { return [] }
            let name = workers[id]?.name ?? ""
            let count = workers[id]?.inFlight.count ?? 0
            return [.log(.workerLeft(id: id, name: name, reassigned: count))] + remove([id], now: now)
        case .error(let report):
            guard let id = membership.id(of: identity) else { return notRegistered(identity) }
            return handleErrorReport(report, from: id, now: now)
        default:
            return invalid(from: identity, reason: "a worker may not send \(message.kind)")
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

    private mutating func handleHello(_ hello: WireMessage.Hello, from identity: [UInt8], now: Double) -> [Action] {
        if let refusal = membership.judge(hello, from: identity, key: currentUserID, now: now) {
            var actions: [Action] = refusal.reply.map { [.send(identity: identity, message: $0)] } ?? []
            if let log = refusal.log { actions.append(.log(.helloRefused(peer: identity, reason: log.reason, total: log.total))) }
            return actions
        }
        var actions: [Action] = []
        if let existing = membership.id(of: identity) {
            actions += remove([existing], now: now)
        }
        let id = membership.add(hello, from: identity, key: currentUserID, role: ScoringRole(), now: now)
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
    private mutating func remove(_ ids: [UInt32], now: Double) -> [Action] {
        for id in ids {
            guard let peer = membership.remove(id) else { continue }
            for k in peer.inFlight.keys where !done[k] { giveBack(k) }
        }
        return isFinished ? [] : fillAll(now: now)
    }

    /// Puts chunk `k` back in the queue when it lacks computations (none is running, or a
    /// verified chunk needs more copies than are running).
    private mutating func giveBack(_ k: Int) {
        if missing(k) > 0 && !retry.contains(k) { retry.append(k) }
    }

    /// Results still to be asked for chunk `k`: those needed to decide it (plus one speculative
    /// copy of a stalled chunk) minus those received and those being computed.
    private func missing(_ k: Int) -> Int {
        guard !done[k] else { return 0 }
        let running = workers.values.reduce(0) { $0 + ($1.inFlight[k] != nil ? 1 : 0) }
        let needed = (required[k] ?? 1) + (speculated.contains(k) ? 1 : 0)
        return needed - (copies[k]?.count ?? 0) - running
    }

    /// Whether worker `id` may compute chunk `k`: not while it holds it, and a verified chunk
    /// only by a worker that has not sent a copy of it.
    private func eligible(_ k: Int, for id: UInt32) -> Bool {
        guard !done[k], missing(k) > 0, workers[id]?.inFlight[k] == nil else { return false }
        return !(copies[k]?.contains { $0.worker == id } ?? false)
    }

    // MARK: Chunks

    /// The next chunk to hand to worker `id`: a given-back one first (lowest index), else the
    /// lowest never handed out; skips done chunks and chunks the worker already holds.
    private mutating func nextChunk(for id: UInt32) -> Int? {
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

    private mutating func fill(_ id: UInt32, now: Double) -> [Action] {
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

    private mutating func fillAll(now: Double) -> [Action] {
        var actions: [Action] = []
        for id in liveWorkerIDs { actions += fill(id, now: now) }
        return actions
    }

    private mutating func handleResult(_ result: WireMessage.ScoreResult, from identity: [UInt8], now: Double) -> [Action] {
        guard let id = membership.id(of: identity) else { return notRegistered(identity) }
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
    private mutating func accept(_ k: Int, _ result: WireMessage.ScoreResult, from id: UInt32, now: Double) -> [Action] {
        let range = job.rowRange(ofChunk: k)
        done[k] = true
        doneCount += 1
        acceptedChunks += 1
        acceptedRows[id, default: 0] += range.count
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

    /// A copy of verified chunk `k`: kept until `needed` copies are in; two equal copies decide
    /// it; after a disagreement a third computation decides, and the worker whose copy differs
    /// from the two others is quarantined.
    private mutating func verify(_ k: Int, _ result: WireMessage.ScoreResult, from id: UInt32, needed: Int, now: Double) -> [Action] {
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
    private mutating func settle(_ k: Int, now: Double) -> [Action] {
        guard !done[k], let needed = required[k] else { return [] }
        let received = copies[k] ?? []
        guard received.count >= needed else {
            giveBack(k)
            return fillAll(now: now)
        }
        for i in received.indices {
            for j in received.indices where j > i && received[i].result == received[j].result {
                let winner = received[i]
                copies[k] = nil
                required[k] = nil
                verifiedChunks += 1
                var actions = accept(k, winner.result, from: winner.worker, now: now)
                for other in received where other.result != winner.result {
                    actions += quarantine(other.worker, chunk: k, now: now)
                }
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
    private mutating func quarantine(_ id: UInt32, chunk: Int, now: Double) -> [Action] {
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

    /// A worker could not score a chunk: the chunk is given to a worker again (after the
    /// parameters, if they were missing); a chunk that fails `maximumChunkFailures` times fails
    /// the job (every worker runs the same code, so it would fail forever).
    private mutating func handleErrorReport(_ report: WireMessage.ErrorReport, from id: UInt32, now: Double) -> [Action] {
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

    // MARK: Helpers

    private mutating func send(_ id: UInt32, _ message: WireMessage, now: Double) -> Action {
        .send(identity: membership.send(id, now: now), message: message)
    }

    private mutating func invalid(from identity: [UInt8], reason: String) -> [Action] {
        membership.invalid(from: identity, reason: reason).map { [.log(.invalidMessage(peer: identity, reason: $0))] } ?? []
    }

    private mutating func notRegistered(_ identity: [UInt8]) -> [Action] {
        droppedMessages += 1
        return [.send(identity: identity, message: MembershipTable<ScoringRole>.notRegistered)]
    }
}
