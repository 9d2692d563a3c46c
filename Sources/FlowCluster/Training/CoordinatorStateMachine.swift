import FlowData
import FlowWire

/// The coordinator's decisions for a training job, as a pure state machine:
/// events in (`messageReceived`, `tick`, `stepApplied`), actions out. It holds no sockets, no
/// rows and no parameters — only who holds what and which results have arrived — so that every
/// event in every state can be tested without a network (the driver does the I/O and the math).
///
/// The rules it enforces (DESIGN §3):
/// - a step's micro-batches are the plan's, whatever the workers; micro-batch `g` goes to the
///   worker that owns shard `g mod S`; shards are spread evenly over live workers and move only
///   when their owner dies or a new worker needs a share;
/// - the first valid result for `(step, micro-batch)` counts; duplicates and late results are
///   dropped (any two valid results are the same bits, so which one wins does not matter);
/// - a worker silent for `heartbeatLiveness` intervals is dead: its shards and unfinished
///   micro-batches go to live workers (with the rows they need);
/// - a worker that is alive but slow does not hold a step up: once some worker is idle and the
///   step has run for more than twice the time a share takes (the idle worker's share in this
///   step, else the whole previous step) and at least `minimumBackupDelay`, each micro-batch
///   still outstanding is also sent, once, to an idle worker (a *backup*); whichever result
///   comes first counts — both are the same bits. A worker beaten by backups several steps in a
///   row is demoted: its shards go to the others for a number of steps that doubles each time,
///   then it gets a share again (a worker that was only briefly slow comes back);
/// - an invalid message is counted and dropped, never fatal.
///
/// With `sync=parameters` (``Job/localSteps`` set) the unit of coordination is a *round* of `H`
/// plan steps instead of one step: each owner is sent all micro-batches of the round's steps from
/// its shards as one assignment (a *unit*), takes `H` local Adam steps on them and returns one
/// `localResult`; the coordinator averages the units' parameters weighted by rows. A lost
/// worker's unfinished units are regrouped by their new owners and computed again from the
/// round's starting parameters. Results of a worker arrive in the order its units were sent.
public struct CoordinatorStateMachine: Sendable {
    /// What the driver must do.
    public enum Action: Sendable, Equatable {
        /// Send `message` to the worker with ROUTER identity `identity`.
        case send(identity: [UInt8], message: WireMessage)
        /// Send the rows of `shard` to a worker (the driver builds the `shardRows` message).
        case sendShard(identity: [UInt8], shard: Int)
        /// Send the current parameters (version `version`) to a worker.
        case sendParameters(identity: [UInt8], version: UInt64)
        /// All results of `step` are in: sum them in micro-batch order, apply the optimiser, then
        /// call `stepApplied()`.
        case applyStep(step: Int, results: [WireMessage.GradientResult])
        /// `sync=parameters`: all units of `round` are in (ordered by their first micro-batch):
        /// average their parameters weighted by rows, then call `stepApplied()`.
        case averageRound(round: Int, results: [WireMessage.LocalResult])
        /// Write a checkpoint of the state after `steps` steps (rounds with `sync=parameters`).
        case checkpoint(steps: Int)
        /// The job is done.
        case finished
        /// The job cannot go on (e.g. training diverged); the driver stops with this reason.
        case failed(reason: String)
        /// Something worth a log line (joins, deaths, reassignments, invalid messages).
        case log(LogEvent)
        /// `--verify-fraction`: compute micro-batch `microBatch` of `step` in the coordinator
        /// (with the current parameters) and report it with `coordinatorComputed(_:now:)`. Its
        /// result is authoritative: it settles a disagreement, or checks the only worker.
        case computeLocally(step: Int, microBatch: Int)
        /// Refuse the CURVE key `key` (Z85, the ZAP user id of a quarantined worker's
        /// connection) at the next connections, for the rest of the run.
        case revokeKey(String)
    }

    /// Events worth logging.
    public enum LogEvent: Sendable, Equatable {
        case workerJoined(id: UInt32, name: String, shards: Int)
        case workerLost(id: UInt32, name: String, reassigned: Int)
        case workerLeft(id: UInt32, name: String)
        /// Micro-batches outstanding at a slow worker were also sent to an idle one.
        case backup(microBatches: [Int], slow: [UInt32], to: UInt32)
        /// A worker was beaten by backups `slowSteps` steps in a row: it owns no shards until `step`.
        case workerDemoted(id: UInt32, name: String, slowSteps: Int, until: Int)
        /// The first invalid message from a peer (later ones are only counted).
        case invalidMessage(peer: [UInt8], reason: String)
        /// A message that is valid but does not fit the job (wrong job, unknown sender, …).
        case ignored(peer: [UInt8], reason: String)
        /// A hello refused by a limit (`ClusterLimits`): logged for the 1st, 2nd, 4th, 8th, …
        /// refusal, with the count so far, so that a flood cannot flood the log.
        case helloRefused(peer: [UInt8], reason: String, total: Int)
        /// Two workers returned different bits for a checked micro-batch; the coordinator
        /// computes it itself to settle it.
        case resultsDisagree(microBatch: Int, workers: [UInt32])
        /// A worker whose result disagreed with the coordinator's own computation was dropped
        /// and is refused from now on; `redone` of its unverified results of the step are
        /// computed again.
        case workerQuarantined(id: UInt32, name: String, microBatch: Int, redone: Int)
    }

    /// What the coordinator keeps about a live worker besides the common fields.
    public struct TrainingRole: Sendable, Equatable {
        /// Shards this worker owns (computes micro-batches of).
        public var shards: Set<Int> = []
        /// Shards whose rows this worker has been sent.
        public var rowsHeld: Set<Int> = []
        /// The parameter version it holds.
        public var version: UInt64?
    }

    /// One live worker, as the coordinator sees it.
    public typealias Peer = MembershipTable<TrainingRole>.Member

    /// Fixed facts of the job.
    public struct Job: Sendable {
        /// The `jobSpec` every worker receives after `welcome`.
        public var spec: WireMessage.JobSpec
        /// The step → micro-batch plan.
        public var plan: BatchPlan
        /// Optimiser steps of the plan to train in all.
        public var steps: Int
        /// `sync=parameters`: plan steps per round (`H`); `nil` for `sync=gradients`.
        public var localSteps: Int?
        /// Checkpoint every this many steps (rounds with `sync=parameters`; nil: never).
        public var checkpointEvery: Int?
        /// Do not start the first step (of this machine's run) with fewer live workers. Later
        /// steps go on with whoever is live (at least one): losing a worker must not stall the job.
        public var minimumWorkers: Int
        /// Heartbeat interval in seconds.
        public var heartbeatInterval: Double
        /// Missed intervals after which a peer is dead.
        public var heartbeatLiveness: Int
        /// The least time (s) a step runs before a slow worker's micro-batches are backed up.
        public var minimumBackupDelay: Double = 0.05
        /// Consecutive steps in which a worker's work is done first by backups before it is
        /// *demoted*: its shards go to the others for a while (doubling each time it happens
        /// again, from `demotionSteps.lowerBound` to `demotionSteps.upperBound` steps).
        public var slowStepsBeforeDemotion = 3
        public var demotionSteps: ClosedRange<Int> = 32...1024
        /// This coordinator's instance id (new on every start).
        public var instance: UInt64
        /// What peers may make the coordinator hold or do.
        public var limits = ClusterLimits()
        /// `--verify-fraction`: the share of micro-batches (chosen by a hash of the job's seed
        /// and the micro-batch index) computed by two sources and compared bit for bit;
        /// `sync=gradients` only. 0 turns verification off.
        public var verifyFraction = 0.0

        public init(
            spec: WireMessage.JobSpec, plan: BatchPlan, steps: Int, checkpointEvery: Int?, minimumWorkers: Int,
            heartbeatInterval: Double, heartbeatLiveness: Int, instance: UInt64, localSteps: Int? = nil
        ) {
            precondition(localSteps.map { $0 >= 1 } ?? true, "localSteps must be at least 1")
            self.localSteps = localSteps
            self.spec = spec
            self.plan = plan
            self.steps = steps
            self.checkpointEvery = checkpointEvery
            self.minimumWorkers = minimumWorkers
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatLiveness = heartbeatLiveness
            self.instance = instance
        }

        /// Units of coordination in all: `steps`, or rounds of `localSteps` (the last may be shorter).
        public var units: Int {
            guard let localSteps else { return steps }
            return (steps + localSteps - 1) / localSteps
        }

        /// The global micro-batch indices of unit `u` (a step, or a round's steps), in order.
        public func microBatches(unit u: Int) -> Range<Int> {
            let perStep = plan.microBatchesPerStep
            guard let localSteps else { return (u * perStep)..<((u + 1) * perStep) }
            let first = u * localSteps, end = min(first + localSteps, steps)
            return (first * perStep)..<(end * perStep)
        }
    }

    private enum Phase: Sendable, Equatable {
        /// Waiting for workers (`minimumWorkers` before the first step, then one) before step
        /// `step` can be handed out.
        case waiting
        /// Micro-batches of `step` are out.
        case running
        /// All results are in; the driver is applying the update.
        case applying
        case finished
    }

    public let job: Job
    /// Who is in the job, and what peers did wrong.
    public private(set) var membership: MembershipTable<TrainingRole>
    /// The live workers by id.
    public var workers: [UInt32: Peer] { membership.members }
    /// Steps (rounds with `sync=parameters`) completed (= the parameter version the next one uses).
    public private(set) var step: Int
    /// Owner of each shard (`nil`: unowned, waiting for a live worker).
    public private(set) var shardOwner: [Int: UInt32] = [:]
    /// Valid but dropped messages (duplicates, late results, unknown senders).
    public private(set) var droppedMessages = 0
    /// Micro-batch results accepted from each live worker (by id); a worker's entry goes when it does.
    public private(set) var acceptedResults: [UInt32: Int] = [:]
    /// Backup copies of slow workers' micro-batches sent since this machine started.
    public private(set) var backupsSent = 0
    private var phase: Phase = .waiting
    /// Micro-batches of the current step → the worker computing it.
    private var pending: [Int: UInt32] = [:]
    private var results: [Int: WireMessage.GradientResult] = [:]
    /// `sync=parameters`: each worker's units of the current round not yet returned, in the
    /// order they were sent (a unit is a sorted list of micro-batches).
    private var units: [UInt32: [[Int]]] = [:]
    /// `sync=parameters`: returned units of the current round, by first micro-batch.
    private var localResults: [Int: WireMessage.LocalResult] = [:]
    /// `sync=parameters`: micro-batches of the current round whose unit has returned.
    private var roundMicroBatchesDone = 0
    private var heartbeatSequence: UInt64 = 0
    /// Verification (`job.verifyFraction`), all of the current step: results of checked
    /// micro-batches by source (a worker id; 0 = the coordinator itself), not yet accepted.
    private var candidates: [Int: [UInt32: WireMessage.GradientResult]] = [:]
    /// Checked micro-batch → the workers computing further copies of it (besides `pending`).
    private var verifying: [Int: Set<UInt32>] = [:]
    /// Micro-batches the coordinator computes itself.
    private var coordinatorComputing: Set<Int> = []
    /// Accepted but unverified micro-batch → the worker that computed it (redone if that worker
    /// is quarantined).
    private var computedBy: [Int: UInt32] = [:]
    /// The ZAP user id of the message being handled (see `messageReceived(from:bytes:userID:now:)`).
    private var currentUserID: String?
    /// Whether a step has been handed out (`minimumWorkers` only gates the first one).
    private var started = false
    /// When the current step was handed out.
    private var stepStartedAt = 0.0
    /// When each worker's last result of the current step was accepted.
    private var lastResultAt: [UInt32: Double] = [:]
    /// Micro-batches of the current step already sent to a backup worker.
    private var backedUp: Set<Int> = []
    /// How long the previous step took, from hand-out to its last result.
    private var previousStepDuration: Double?
    /// Workers given micro-batches of the current step (as owners, not as backups).
    private var stepOwners: Set<UInt32> = []
    /// Owners of the current step some of whose micro-batches were answered first by a backup.
    private var beatenOwners: Set<UInt32> = []
    /// Consecutive steps in which each worker was beaten by backups.
    private var slowStreak: [UInt32: Int] = [:]
    /// Demoted workers and the step from which they may own shards again.
    public private(set) var demotedUntil: [UInt32: Int] = [:]
    /// How long each worker's next demotion lasts (doubles every time).
    private var nextDemotion: [UInt32: Int] = [:]
    /// The unit count after which the job ends when `--early-stop` ended it sooner than
    /// `job.units` (see `CoordinatorStateMachine+EarlyStop.swift`).
    var earlyEnd: Int?
    /// Units after which the job ends.
    private var endUnits: Int { earlyEnd ?? job.units }

    /// A machine that will train from `startStep` (0, or the step — round with
    /// `sync=parameters` — of a checkpoint).
    public init(job: Job, startStep: Int = 0) {
        self.job = job
        self.step = startStep
        membership = MembershipTable(
            limits: job.limits, dtype: job.spec.dtype, heartbeatInterval: job.heartbeatInterval, heartbeatLiveness: job.heartbeatLiveness,
            quarantineReply: "quarantined: a result of this worker disagreed with the coordinator's own computation")
        if startStep >= job.units { phase = .finished }
    }

    /// The accepted result of micro-batch `g` of the current step, if it is in (`sync=gradients`).
    /// Lets the driver add results in micro-batch order while later ones are still computed.
    /// With verification on, nothing is final before the step completes (a quarantined worker's
    /// accepted results are redone), so this is nil until then.
    public func acceptedResult(microBatch g: Int) -> WireMessage.GradientResult? {
        job.verifyFraction > 0 ? nil : results[g]
    }

    /// Whether micro-batch `g` is checked (`job.verifyFraction`): a seeded hash of the job's
    /// seed and `g`, so the same micro-batches are checked whatever the workers.
    public func isChecked(microBatch g: Int) -> Bool {
        guard job.verifyFraction > 0, job.localSteps == nil else { return false }
        if job.verifyFraction >= 1 { return true }
        var z = job.plan.seed ^ 0x7665_7269_6679 &+ UInt64(truncatingIfNeeded: g) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / 9_007_199_254_740_992 < job.verifyFraction
    }

    /// The live workers' ids, sorted.
    public var liveWorkerIDs: [UInt32] { membership.liveIDs }
    /// Invalid messages received, per peer identity (bounded: see `MembershipTable`).
    public var invalidMessages: [[UInt8]: Int] { membership.invalidMessages }
    /// Invalid messages from peers beyond the `limits.maxTrackedPeers` tracked one by one.
    public var invalidMessagesFromUntrackedPeers: Int { membership.invalidMessagesFromUntrackedPeers }
    /// Hellos refused by the rate limit, the worker cap or a quarantine.
    public var refusedHellos: Int { membership.refusedHellos }
    /// Instances of quarantined workers: their hellos are refused.
    public var quarantinedInstances: Set<UInt64> { membership.quarantinedInstances }
    /// CURVE keys (Z85) of quarantined workers: hellos over connections with them are refused.
    public var quarantinedKeys: Set<String> { membership.quarantinedKeys }

    /// Whether the job is done.
    public var isFinished: Bool { phase == .finished }

    // MARK: Events

    /// A message (one frame after the identity) arrived from `identity`.
    public mutating func messageReceived(from identity: [UInt8], bytes: [UInt8], now: Double) -> [Action] {
        bytes.withUnsafeBytes { messageReceived(from: identity, bytes: $0, now: now) }
    }

    /// A message arrived from `identity` over a connection whose ZAP handler gave it `userID`
    /// (with CURVE: the peer's public key in Z85), read in place.
    public mutating func messageReceived(from identity: [UInt8], bytes: UnsafeRawBufferPointer, userID: String?, now: Double) -> [Action] {
        currentUserID = userID
        defer { currentUserID = nil }
        return messageReceived(from: identity, bytes: bytes, now: now)
    }

    /// A message arrived from `identity`, read in place (the driver lends libzmq's buffer:
    /// decoding copies what it keeps, once).
    public mutating func messageReceived(from identity: [UInt8], bytes: UnsafeRawBufferPointer, now: Double) -> [Action] {
        let message: WireMessage
        do {
            message = try WireMessage.decode(bytes)
        } catch {
            let reply = MembershipTable<TrainingRole>.reply(toUndecodable: error, bytes: bytes)
            return invalid(from: identity, reason: "\(error)") + (reply.map { [.send(identity: identity, message: $0)] } ?? [])
        }
        membership.heard(from: identity, now: now)
        switch message {
        case .hello(let hello):
            return handleHello(hello, from: identity, now: now)
        case .gradientResult(let result):
            return handleResult(result, from: identity, now: now)
        case .localResult(let result):
            return handleLocalResult(result, from: identity, now: now)
        case .heartbeat:
            if membership.id(of: identity) == nil { return notRegistered(identity) }
            return []
        case .goodbye:
            guard let id = membership.id(of: identity) else { return [] }
            return remove(id, now: now, lost: false)
        case .error(let report):
            guard let id = membership.id(of: identity) else { return notRegistered(identity) }
            return handleErrorReport(report, from: id, now: now)
        default:
            // Coordinator-to-worker messages, or kinds that do not belong to this job.
            return invalid(from: identity, reason: "a worker may not send \(message.kind)")
        }
    }

    /// Time passed: heartbeats to quiet workers, and the death of silent ones.
    public mutating func tick(now: Double) -> [Action] {
        var actions: [Action] = []
        // All the dead first, then one reassignment: work must never go to a worker that is
        // about to be declared dead in the same tick.
        let dead = membership.dead(now: now)
        for id in dead {
            actions.append(.log(.workerLost(id: id, name: workers[id]?.name ?? "", reassigned: pending.values.filter { $0 == id }.count)))
        }
        if !dead.isEmpty { actions += remove(dead, now: now) }
        actions += backUpSlowWork(now: now)
        for id in membership.heartbeatDue(now: now) {
            heartbeatSequence += 1
            actions.append(send(id, .heartbeat(.init(sequence: heartbeatSequence, currentStep: UInt64(step))), now: now))
        }
        return actions
    }

    /// The driver applied the update of the step whose results it was given.
    public mutating func stepApplied(now: Double) -> [Action] {
        precondition(phase == .applying, "stepApplied() without an applyStep action")
        step += 1
        results.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        candidates.removeAll()
        verifying.removeAll()
        coordinatorComputing.removeAll()
        computedBy.removeAll()
        lastResultAt.removeAll(keepingCapacity: true)
        backedUp.removeAll(keepingCapacity: true)
        stepOwners.removeAll(keepingCapacity: true)
        beatenOwners.removeAll(keepingCapacity: true)
        units.removeAll(keepingCapacity: true)
        localResults.removeAll(keepingCapacity: true)
        roundMicroBatchesDone = 0
        var actions: [Action] = []
        if let every = job.checkpointEvery, step % every == 0 || step == endUnits {
            actions.append(.checkpoint(steps: step))
        }
        if step >= endUnits {
            phase = .finished
            let done = job.localSteps == nil ? "\(step) steps" : "\(step) rounds"
            for id in liveWorkerIDs {
                actions.append(send(id, .goodbye(.init(reason: "job finished after \(done)")), now: now))
            }
            actions.append(.finished)
            return actions
        }
        phase = .waiting
        return actions + startStepIfPossible(now: now)
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
            // The same connection says hello again (its welcome was lost, or it restarted behind
            // the same identity): start it over.
            actions += remove(existing, now: now, lost: true)
        }
        let id = membership.add(hello, from: identity, key: currentUserID, role: TrainingRole(), now: now)
        actions.append(send(id, membership.welcome(id, coordinator: job.instance), now: now))
        actions.append(send(id, .jobSpec(job.spec), now: now))
        if phase == .finished {
            actions.append(send(id, .goodbye(.init(reason: "job finished")), now: now))
            return actions
        }
        rebalance()
        actions.append(.log(.workerJoined(id: id, name: hello.name, shards: workers[id]?.shards.count ?? 0)))
        if phase == .waiting { actions += startStepIfPossible(now: now) }
        return actions
    }

    /// Removes worker `id`, logged as lost (`lost`: it vanished, e.g. restarted behind the same
    /// identity) or as gone by its own goodbye; its shards become unowned and go to the others,
    /// and its unfinished micro-batches of the current step are handed out again.
    private mutating func remove(_ id: UInt32, now: Double, lost: Bool) -> [Action] {
        guard let peer = workers[id] else { return [] }
        let event: LogEvent = lost
            ? .workerLost(id: id, name: peer.name, reassigned: pending.values.filter { $0 == id }.count)
            : .workerLeft(id: id, name: peer.name)
        return [.log(event)] + remove([id], now: now)
    }

    /// Removes several workers at once, then rebalances and reassigns their unfinished
    /// micro-batches to the workers that remain.
    private mutating func remove(_ ids: [UInt32], now: Double) -> [Action] {
        var gone: Set<UInt32> = []
        for id in ids {
            guard let peer = membership.remove(id) else { continue }
            acceptedResults[id] = nil
            for shard in peer.shards { shardOwner[shard] = nil }
            units[id] = nil
            slowStreak[id] = nil
            demotedUntil[id] = nil
            nextDemotion[id] = nil
            gone.insert(id)
        }
        guard phase == .running, !gone.isEmpty else { return [] }
        rebalance()
        let orphanedChecks = verifying.filter { !$0.value.isDisjoint(with: gone) }.keys
        for g in orphanedChecks { verifying[g]?.subtract(gone) }
        let orphaned = Set(pending.filter { gone.contains($0.value) }.keys).union(orphanedChecks).sorted()
        guard !orphaned.isEmpty else { return [] }
        if workers.isEmpty {
            // Nobody to give them to: wait for a worker.
            for g in orphaned { pending[g] = nil }
            phase = .waiting
            return []
        }
        return assign(orphaned, now: now)
    }

    /// Gives every unowned shard to a live worker and evens out ownership, moving as few shards
    /// as possible (a new worker takes shards from the busiest ones). Deterministic: ties are
    /// broken by worker id and shard index.
    private mutating func rebalance() {
        // Demoted workers own nothing while others can take their shards.
        let eligible = liveWorkerIDs.filter { demotedUntil[$0] == nil }
        let ids = eligible.isEmpty ? liveWorkerIDs : eligible
        guard !ids.isEmpty else { return }
        for id in liveWorkerIDs where !ids.contains(id) {
            for shard in workers[id]!.shards { shardOwner[shard] = nil }
            membership.members[id]!.shards = []
        }
        let S = job.plan.shardCount
        let target = (S + ids.count - 1) / ids.count
        // Take shards from owners above the target, evenly spaced over what they own: a step's
        // micro-batches come from consecutive shards, so contiguous ownership would put a whole
        // step on one worker and leave the others idle.
        for id in ids {
            guard var peer = workers[id], peer.shards.count > target else { continue }
            let owned = peer.shards.sorted()
            let excess = owned.count - target
            for j in 0..<excess {
                let shard = owned[j * owned.count / excess]
                peer.shards.remove(shard)
                shardOwner[shard] = nil
            }
            membership.members[id] = peer
        }
        // Hand unowned shards to the least loaded (lowest id on ties).
        for shard in 0..<S where shardOwner[shard] == nil {
            let id = ids.min { (workers[$0]!.shards.count, $0) < (workers[$1]!.shards.count, $1) }!
            membership.members[id]!.shards.insert(shard)
            shardOwner[shard] = id
        }
        // Even out: trimming to ⌈S/n⌉ can leave a newcomer with nothing (S = 4, n = 3 → 2, 2, 0);
        // move single shards from the largest share to the smallest until they differ by ≤ 1.
        while true {
            let largest = ids.max { (workers[$0]!.shards.count, $1) < (workers[$1]!.shards.count, $0) }!
            let smallest = ids.min { (workers[$0]!.shards.count, $0) < (workers[$1]!.shards.count, $1) }!
            let owned = workers[largest]!.shards.sorted()
            guard owned.count - workers[smallest]!.shards.count > 1 else { break }
            let shard = owned[owned.count / 2]
            membership.members[largest]!.shards.remove(shard)
            membership.members[smallest]!.shards.insert(shard)
            shardOwner[shard] = smallest
        }
    }

    // MARK: Steps

    private mutating func startStepIfPossible(now: Double) -> [Action] {
        guard phase == .waiting, workers.count >= (started ? 1 : max(1, job.minimumWorkers)) else { return [] }
        phase = .running
        started = true
        stepStartedAt = now
        for (id, until) in demotedUntil where until <= step { demotedUntil[id] = nil }
        rebalance()
        let indices = job.microBatches(unit: step).filter { results[$0] == nil }
        return assign(indices, now: now)
    }

    /// Sends micro-batches (global indices) to the owners of their shards, preceded by the rows
    /// and parameters each owner lacks.
    private mutating func assign(_ indices: [Int], now: Double) -> [Action] {
        var byWorker: [UInt32: [Int]] = [:]
        var actions: [Action] = []
        for g in indices {
            let shard = job.plan.microBatch(globalIndex: g).shard
            guard let owner = shardOwner[shard] else { continue }
            guard isChecked(microBatch: g) else {
                pending[g] = owner
                byWorker[owner, default: []].append(g)
                continue
            }
            // A checked micro-batch needs two sources: the owner of its shard when it has not
            // answered yet, then other live workers (the next ids after the owner), then the
            // coordinator itself.
            guard results[g] == nil else { continue }
            var sources = Set(candidates[g]?.keys ?? [:].keys)
            sources.formUnion(verifying[g, default: []].filter { workers[$0] != nil })
            if coordinatorComputing.contains(g) { sources.insert(0) }
            if let p = pending[g], workers[p] != nil { sources.insert(p) }
            if !sources.contains(owner), sources.count < 2 {
                pending[g] = owner
                byWorker[owner, default: []].append(g)
                sources.insert(owner)
            }
            let ids = liveWorkerIDs.filter { demotedUntil[$0] == nil }
            let after = ids.filter { $0 > owner } + ids.filter { $0 < owner }
            for v in after where sources.count < 2 && !sources.contains(v) {
                verifying[g, default: []].insert(v)
                byWorker[v, default: []].append(g)
                sources.insert(v)
            }
            if sources.count < 2, !sources.contains(0) {
                coordinatorComputing.insert(g)
                actions.append(.computeLocally(step: step, microBatch: g))
            }
        }
        for id in byWorker.keys.sorted() {
            guard let list = byWorker[id] else { continue }
            stepOwners.insert(id)
            if job.localSteps != nil { units[id, default: []].append(list) }
            actions += handOut(list, to: id, now: now)
        }
        return actions
    }

    /// The actions that give worker `id` the micro-batches `list` of the current step: the rows of
    /// shards it lacks, the current parameters unless it holds them, then the assignment.
    private mutating func handOut(_ list: [Int], to id: UInt32, now: Double) -> [Action] {
        guard var peer = workers[id] else { return [] }
        var actions: [Action] = []
        for shard in Set(list.map { job.plan.microBatch(globalIndex: $0).shard }).sorted() where !peer.rowsHeld.contains(shard) {
            actions.append(.sendShard(identity: peer.identity, shard: shard))
            peer.rowsHeld.insert(shard)
        }
        if peer.version != UInt64(step) {
            actions.append(.sendParameters(identity: peer.identity, version: UInt64(step)))
            peer.version = UInt64(step)
        }
        peer.lastSent = now
        membership.members[id] = peer
        actions.append(.send(identity: peer.identity, message: .assignment(.init(
            jobID: job.spec.jobID, step: UInt64(step), version: UInt64(step), microBatches: list.map { UInt64($0) }))))
        return actions
    }

    private mutating func handleResult(_ result: WireMessage.GradientResult, from identity: [UInt8], now: Double) -> [Action] {
        guard membership.id(of: identity) != nil else { return notRegistered(identity) }
        guard job.localSteps == nil else {
            return invalid(from: identity, reason: "a gradientResult in a sync=parameters job")
        }
        guard result.jobID == job.spec.jobID else {
            droppedMessages += 1
            return [.log(.ignored(peer: identity, reason: "result for job \(result.jobID)"))]
        }
        let g = Int(clamping: result.microBatch)
        if isChecked(microBatch: g), let id = membership.id(of: identity) {
            return handleCheckedResult(result, microBatch: g, from: id, now: now)
        }
        guard phase == .running, result.step == UInt64(step), result.version == UInt64(step),
              pending[g] != nil, results[g] == nil
        else {
            // Late (an earlier step), duplicate (reassigned and computed twice) or not asked for.
            droppedMessages += 1
            return []
        }
        if let problem = shapeProblem(result, microBatch: g) { return invalid(from: identity, reason: problem) }
        results[g] = result
        if let id = membership.id(of: identity) {
            acceptedResults[id, default: 0] += 1
            if job.verifyFraction > 0 { computedBy[g] = id }
            lastResultAt[id] = now
            if let owner = pending[g], owner != id { beatenOwners.insert(owner) }
        }
        pending[g] = nil  // done: a worker lost from now on has nothing of it to reassign
        return completeStepIfDone(now: now)
    }

    private mutating func completeStepIfDone(now: Double) -> [Action] {
        guard phase == .running, results.count == job.plan.microBatchesPerStep else { return [] }
        phase = .applying
        previousStepDuration = now - stepStartedAt
        let demotions = updateSlowStreaks()
        let ordered = job.plan.microBatches(step: step).map { results[$0.globalIndex]! }
        return demotions + [.applyStep(step: step, results: ordered)]
    }

    /// Backups for a slow worker (`sync=gradients`): when some live worker has nothing pending in
    /// this step and the step has run longer than `max(interval, 2 × share)` — `share` being the
    /// shortest time an idle worker took for its part of this step, or, when no idle worker had
    /// a part, the previous step's duration (none: no backups) — every outstanding micro-batch
    /// not yet backed up is also sent to an idle worker (round robin, lowest ids first), with the
    /// rows and parameters it lacks. Ownership does not move and the original stays pending: the
    /// first of the two results counts.
    private mutating func backUpSlowWork(now: Double) -> [Action] {
        guard job.localSteps == nil, phase == .running else { return [] }
        let busy = Set(pending.values)
        let idle = liveWorkerIDs.filter { !busy.contains($0) && demotedUntil[$0] == nil }
        guard !idle.isEmpty else { return [] }
        let shares = idle.compactMap { lastResultAt[$0] }.map { $0 - stepStartedAt }
        guard let share = shares.min() ?? previousStepDuration,
              now - stepStartedAt > max(job.minimumBackupDelay, 2 * share)
        else { return [] }
        let outstanding = pending.keys.sorted().filter { !backedUp.contains($0) }
        guard !outstanding.isEmpty else { return [] }
        var byWorker: [UInt32: [Int]] = [:]
        for (i, g) in outstanding.enumerated() {
            let to = idle[i % idle.count]
            byWorker[to, default: []].append(g)
            backedUp.insert(g)
            // A checked micro-batch's backup is one more source for its comparison.
            if isChecked(microBatch: g) { verifying[g, default: []].insert(to) }
        }
        var actions: [Action] = []
        for id in byWorker.keys.sorted() {
            guard let list = byWorker[id] else { continue }
            backupsSent += list.count
            actions.append(.log(.backup(microBatches: list, slow: Set(list.compactMap { pending[$0] }).sorted(), to: id)))
            actions += handOut(list, to: id, now: now)
        }
        return actions
    }

    /// At the end of a step: counts, per owner of the step's work, the steps in a row it was
    /// beaten by backups, and demotes one that reaches `slowStepsBeforeDemotion` (unless no
    /// other worker could take its shards). Ownership changes at the next step's start.
    private mutating func updateSlowStreaks() -> [Action] {
        var actions: [Action] = []
        for id in stepOwners.sorted() where workers[id] != nil {
            guard beatenOwners.contains(id) else {
                slowStreak[id] = 0
                continue
            }
            let streak = slowStreak[id, default: 0] + 1
            slowStreak[id] = streak
            let others = liveWorkerIDs.filter { $0 != id && demotedUntil[$0] == nil }
            guard streak >= job.slowStepsBeforeDemotion, !others.isEmpty else { continue }
            let length = nextDemotion[id] ?? job.demotionSteps.lowerBound
            nextDemotion[id] = min(length * 2, job.demotionSteps.upperBound)
            demotedUntil[id] = step + 1 + length
            slowStreak[id] = 0
            actions.append(.log(.workerDemoted(id: id, name: workers[id]?.name ?? "", slowSteps: streak, until: step + 1 + length)))
        }
        return actions
    }

    // MARK: Verification

    /// The coordinator computed micro-batch `result.microBatch` of the current step itself
    /// (after a `computeLocally` action).
    public mutating func coordinatorComputed(_ result: WireMessage.GradientResult, now: Double) -> [Action] {
        let g = Int(clamping: result.microBatch)
        guard phase == .running || phase == .waiting, result.step == UInt64(step), coordinatorComputing.contains(g) else { return [] }
        coordinatorComputing.remove(g)
        guard results[g] == nil else { return [] }
        candidates[g, default: [:]][0] = result
        // Every worker gone meanwhile: kept, and compared when the step goes on.
        guard phase == .running else { return [] }
        return settle(g, now: now)
    }

    /// A worker's result for a checked micro-batch: kept until a second source has answered.
    private mutating func handleCheckedResult(
        _ result: WireMessage.GradientResult, microBatch g: Int, from id: UInt32, now: Double
    ) -> [Action] {
        guard phase == .running, result.step == UInt64(step), result.version == UInt64(step), results[g] == nil,
              pending[g] == id || verifying[g]?.contains(id) == true, candidates[g]?[id] == nil
        else {
            droppedMessages += 1
            return []
        }
        if let problem = shapeProblem(result, microBatch: g) { return invalid(from: workers[id]?.identity ?? [], reason: problem) }
        if pending[g] == id { pending[g] = nil } else { verifying[g]?.remove(id) }
        candidates[g, default: [:]][id] = result
        acceptedResults[id, default: 0] += 1
        return settle(g, now: now)
    }

    /// Compares the sources of checked micro-batch `g` once two have answered: the same bits
    /// accept it; different bits from two workers ask the coordinator; the coordinator's own
    /// result is the truth, and every worker that disagrees with it is quarantined.
    private mutating func settle(_ g: Int, now: Double) -> [Action] {
        guard let found = candidates[g], found.count >= 2 else { return [] }
        if let truth = found[0] {
            results[g] = truth
            let liars = found.filter { $0.key != 0 && !Self.sameBits($0.value, truth) }.keys.sorted()
            return (liars.isEmpty ? [] : quarantine(liars, microBatch: g, now: now)) + completeStepIfDone(now: now)
        }
        let sorted = found.sorted { $0.key < $1.key }
        if sorted.allSatisfy({ Self.sameBits($0.value, sorted[0].value) }) {
            results[g] = sorted[0].value
            return completeStepIfDone(now: now)
        }
        guard !coordinatorComputing.contains(g) else { return [] }
        coordinatorComputing.insert(g)
        return [.log(.resultsDisagree(microBatch: g, workers: sorted.map(\.key))), .computeLocally(step: step, microBatch: g)]
    }

    /// Drops workers whose result disagreed with the coordinator's: they get a goodbye, their
    /// hellos are refused from now on, and their unverified results of this step are redone.
    private mutating func quarantine(_ ids: [UInt32], microBatch g: Int, now: Double) -> [Action] {
        var actions: [Action] = []
        var redo: Set<Int> = []
        for id in ids {
            guard let peer = workers[id] else { continue }
            if let key = membership.quarantine(instance: peer.instance, key: peer.key) { actions.append(.revokeKey(key)) }
            let unverified = computedBy.filter { $0.value == id }.keys
            for m in unverified {
                results[m] = nil
                computedBy[m] = nil
            }
            redo.formUnion(unverified)
            for (m, sources) in candidates where sources[id] != nil {
                candidates[m]![id] = nil
                if results[m] == nil { redo.insert(m) }
            }
            actions.append(.log(.workerQuarantined(id: id, name: peer.name, microBatch: g, redone: unverified.count)))
            actions.append(send(id, .goodbye(.init(reason: "quarantined: its result for micro-batch \(g) of step \(step) disagreed with the coordinator's own computation")), now: now))
        }
        actions += remove(ids, now: now)
        guard phase == .running, !workers.isEmpty else { return actions }
        return actions + assign(redo.filter { results[$0] == nil }.sorted(), now: now)
    }

    /// Whether two results are the same bits (loss included).
    static func sameBits(_ a: WireMessage.GradientResult, _ b: WireMessage.GradientResult) -> Bool {
        a.rowCount == b.rowCount && a.lossSum.bitPattern == b.lossSum.bitPattern && a.gradient == b.gradient
    }

    /// `sync=parameters`: a worker's parameters after the local steps of its oldest unit.
    private mutating func handleLocalResult(_ result: WireMessage.LocalResult, from identity: [UInt8], now: Double) -> [Action] {
        guard job.localSteps != nil else {
            return invalid(from: identity, reason: "a localResult in a sync=gradients job")
        }
        guard let id = membership.id(of: identity) else { return notRegistered(identity) }
        guard result.jobID == job.spec.jobID else {
            droppedMessages += 1
            return [.log(.ignored(peer: identity, reason: "result for job \(result.jobID)"))]
        }
        guard phase == .running, result.round == UInt64(step), result.baseVersion == UInt64(step),
              let unit = units[id]?.first
        else {
            // Late (an earlier round, or a unit that was taken back), or not asked for.
            droppedMessages += 1
            return []
        }
        let rows = unit.count * job.plan.microBatchSize
        guard result.rowCount == UInt64(rows), result.parameters.count == parameterCount, result.parameters.dtype == job.spec.dtype else {
            return invalid(from: identity, reason: "local result of round \(step) has \(result.rowCount) rows and \(result.parameters.count) \(result.parameters.dtype) values; expected \(rows) and \(parameterCount) \(job.spec.dtype)")
        }
        units[id]!.removeFirst()
        localResults[unit[0]] = result
        for g in unit { pending[g] = nil }
        roundMicroBatchesDone += unit.count
        acceptedResults[id, default: 0] += unit.count
        guard roundMicroBatchesDone == job.microBatches(unit: step).count else { return [] }
        phase = .applying
        return [.averageRound(round: step, results: localResults.keys.sorted().map { localResults[$0]! })]
    }

    /// A worker could not compute a micro-batch it was given. Missing rows or parameters are sent
    /// again and the micro-batch reassigned; a non-finite result fails the job, as it fails
    /// single-process training (every worker would compute the same bits).
    private mutating func handleErrorReport(_ report: WireMessage.ErrorReport, from id: UInt32, now: Double) -> [Action] {
        let note: [Action] = [.log(.ignored(peer: workers[id]?.identity ?? [], reason: "worker reported \(report.code): \(report.message)"))]
        guard phase == .running, report.jobID == job.spec.jobID, report.step == UInt64(step),
              let item = report.item, let g = Int(exactly: item), pending[g] == id || verifying[g]?.contains(id) == true
        else {
            droppedMessages += 1
            return note
        }
        switch report.code {
        case .nonFinite:
            phase = .finished
            return note + [.failed(reason: "step \(step + 1): micro-batch \(g) has a non-finite loss or gradient (reported by worker \(id)); the parameters were not updated")]
        default:
            // The work to redo: the micro-batch, or (sync=parameters) the unit it starts.
            var redo = [g]
            if job.localSteps != nil {
                guard let index = units[id]?.firstIndex(where: { $0.first == g }) else {
                    droppedMessages += 1
                    return note
                }
                redo = units[id]!.remove(at: index)
            }
            // Forget what we believed it held, so that the reassignment resends rows and parameters.
            for m in redo {
                membership.members[id]?.rowsHeld.remove(job.plan.microBatch(globalIndex: m).shard)
                if pending[m] == id { pending[m] = nil }
                verifying[m]?.remove(id)  // it was computing a check copy
            }
            membership.members[id]?.version = nil
            return note + assign(redo, now: now)
        }
    }

    /// Why a gradient result cannot be the result of micro-batch `g` of this job (rows, length,
    /// dtype), or nil when it can.
    private func shapeProblem(_ result: WireMessage.GradientResult, microBatch g: Int) -> String? {
        guard Int(result.rowCount) == job.plan.microBatchSize,
              result.gradient.count == parameterCount, result.gradient.dtype == job.spec.dtype
        else {
            return "result for micro-batch \(g) has \(result.rowCount) rows and \(result.gradient.count) \(result.gradient.dtype) values; expected \(job.plan.microBatchSize) and \(parameterCount) \(job.spec.dtype)"
        }
        return nil
    }

    /// The flat parameter count implied by the job's architecture.
    public var parameterCount: Int {
        let a = job.spec.architecture
        let d = Int(a.dimension) / 2, e = Int(a.dimension) - d, H = Int(a.hidden), depth = Int(a.depth)
        var perCoupling = (d * H + H) + (2 * e * H + 2 * e)
        perCoupling += (depth - 1) * (H * H + H)
        return Int(a.couplings) * perCoupling
    }

    // MARK: Helpers

    private mutating func send(_ id: UInt32, _ message: WireMessage, now: Double) -> Action {
        .send(identity: membership.send(id, now: now), message: message)
    }

    private mutating func invalid(from identity: [UInt8], reason: String) -> [Action] {
        membership.invalid(from: identity, reason: reason).map { [.log(.invalidMessage(peer: identity, reason: $0))] } ?? []
    }

    /// A registered-only message from a peer the coordinator does not know (it was declared dead,
    /// or the coordinator restarted): tell it to say hello again.
    private mutating func notRegistered(_ identity: [UInt8]) -> [Action] {
        droppedMessages += 1
        return [.send(identity: identity, message: MembershipTable<TrainingRole>.notRegistered)]
    }
}
