import FlowData
import FlowWire

/// The coordinator's decisions for a training job, as a pure state machine:
/// events in (`messageReceived`, `tick`, `unitApplied`), actions out. It holds no sockets, no
/// rows and no parameters — only who holds what and which results have arrived — so that every
/// event in every state can be tested without a network (the driver does the I/O and the math).
///
/// The rules it enforces (DESIGN §3):
/// - a step's micro-batches are the plan's, whatever the workers; the step is handed out as the
///   largest nodes of its reduction tree whose micro-batches all come from shards of one worker
///   (each worker owns a contiguous range of shards, so normally one node per worker), and each
///   node comes back as one pre-reduced partial; shards are spread evenly over live workers;
/// - the first valid result for `(step, node)` counts; duplicates and late results are
///   dropped (any two valid results are the same bits, so which one wins does not matter);
/// - a worker silent for `heartbeatLiveness` intervals is dead: its shards go to live workers,
///   and what its unfinished nodes covered is covered again by theirs (with the rows they need);
/// - a worker that is alive but slow does not hold a step up: once some worker is idle and the
///   step has run for more than twice the time a share takes (the idle worker's share in this
///   step, else the whole previous step) and at least `minimumBackupDelay`, each node
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
///
/// The machine is this file's events and the parts it owns, each with its own state and rules:
/// `MembershipTable` (who is in), `ShardAssignment` (who owns which shard), `StragglerPolicy`
/// (backups and demotion), `StepVerification` (`--verify-fraction`) and `LocalRoundProgress`
/// (`sync=parameters`). Its handlers are in the `CoordinatorStateMachine+…` files: membership,
/// steps, verification, local rounds. A *unit* is what one parameter version is computed for:
/// a step with `sync=gradients`, a round of `H` steps with `sync=parameters`.
public struct CoordinatorStateMachine: Sendable {
    /// What the driver must do.
    public enum Action: Sendable, Equatable {
        /// Send `message` to the worker with ROUTER identity `identity`.
        case send(identity: [UInt8], message: WireMessage)
        /// Send the rows of `shard` to a worker (the driver builds the `shardRows` message).
        case sendShard(identity: [UInt8], shard: Int)
        /// Send the current parameters (version `version`) to a worker.
        case sendParameters(identity: [UInt8], version: UInt64)
        /// `sync=sharded`: send a worker the training state (parameters and Adam's) at version
        /// `version` — the driver's copy, fetched first from a worker holding it when the copy is older.
        case sendState(identity: [UInt8], version: UInt64)
        /// `sync=sharded`: every worker holds the step's gradient and agrees on these figures: the
        /// step is committed (report it, then call `unitApplied(now:)`; the workers apply it).
        case stepReduced(step: Int, meanLoss: Double, gradientNorm: Double)
        /// All results of `step` are in — disjoint tree nodes covering it, in tree order: fold
        /// them (`GradientSum.add(nodeAt:…)`), apply the optimiser, then call `unitApplied(now:)`.
        case applyStep(step: Int, results: [WireMessage.GradientResult])
        /// `sync=parameters`: all units of `round` are in (ordered by their first micro-batch):
        /// average their parameters weighted by rows, then call `unitApplied(now:)`.
        case averageRound(round: Int, results: [WireMessage.LocalResult])
        /// Write a checkpoint of the state after `units` units (steps, or rounds with `sync=parameters`).
        case checkpoint(units: Int)
        /// The job is done.
        case finished
        /// The job cannot go on (e.g. training diverged); the driver stops with this reason.
        case failed(reason: String)
        /// Something worth a log line (joins, deaths, reassignments, invalid messages).
        case log(LogEvent)
        /// `--verify-fraction`: compute tree node `item` (a checked leaf, `TreeNode.key`) of
        /// `step` in the coordinator (with the current parameters) and report it with
        /// `coordinatorComputed(_:now:)`. Its result is authoritative: it settles a
        /// disagreement, or checks the only worker.
        case computeLocally(step: Int, item: Int)
        /// Refuse the CURVE key `key` (Z85, the ZAP user id of a quarantined worker's
        /// connection) at the next connections, for the rest of the run.
        case revokeKey(String)
    }

    /// Events worth logging.
    public enum LogEvent: Sendable, Equatable {
        case workerJoined(id: UInt32, name: String, shards: Int)
        /// A worker went silent; `reassigned` work items of it were handed out again.
        case workerLost(id: UInt32, name: String, reassigned: Int)
        case workerLeft(id: UInt32, name: String)
        /// Work items outstanding at a slow worker were also sent to an idle one.
        case backup(items: [Int], slow: [UInt32], to: UInt32)
        /// A worker was beaten by backups `slowSteps` steps in a row: it owns no shards until `step`.
        case workerDemoted(id: UInt32, name: String, slowSteps: Int, until: Int)
        /// The first invalid message from a peer (later ones are only counted).
        case invalidMessage(peer: [UInt8], reason: String)
        /// A message that is valid but does not fit the job (wrong job, unknown sender, …).
        case ignored(peer: [UInt8], reason: String)
        /// `sync=sharded`: every worker holding the state of step `from` was lost; the run goes
        /// back to the driver's copy of step `step` and computes the steps after it again.
        case rolledBack(step: Int, from: Int)
        /// `sync=sharded`: the reduce of step `step` did not complete in `seconds`; its attempt
        /// starts over.
        case attemptRestarted(step: Int, seconds: Double)
        /// A hello refused by a limit (`ClusterLimits`): logged for the 1st, 2nd, 4th, 8th, …
        /// refusal, with the count so far, so that a flood cannot flood the log.
        case helloRefused(peer: [UInt8], reason: String, total: Int)
        /// Two workers returned different bits for a checked leaf (`item` names it); the
        /// coordinator computes it itself to settle it.
        case resultsDisagree(item: String, workers: [UInt32])
        /// A worker whose result disagreed with the coordinator's own computation was dropped
        /// and is refused from now on; `redone` of its unverified results of the step are
        /// computed again.
        case workerQuarantined(id: UInt32, name: String, item: String, redone: Int)
    }

    /// What the coordinator keeps about a live worker besides the common fields.
    public struct TrainingRole: Sendable, Equatable {
        /// Shards whose rows this worker has been sent.
        public var rowsHeld: Set<Int> = []
        /// The parameter version it holds.
        public var version: UInt64?
        /// `sync=sharded`: the endpoint of its peer socket (from its hello).
        public var peerEndpoint = ""
    }

    /// One live worker, as the coordinator sees it.
    public typealias Peer = MembershipTable<TrainingRole>.Member

    enum Phase: Sendable, Equatable {
        /// Waiting for workers (`minimumWorkers` before the first unit, then one) before unit
        /// `unit` can be handed out.
        case waiting
        /// Micro-batches of `unit` are out.
        case running
        /// `sync=sharded`: the nodes cover the step; the owners are folding (waiting for every `stepReady`).
        case reducing
        /// All results are in; the driver is applying the update.
        case applying
        case finished
    }

    public let job: Job
    /// Who is in the job, and what peers did wrong.
    public internal(set) var membership: MembershipTable<TrainingRole>
    /// The live workers by id.
    public var workers: [UInt32: Peer] { membership.members }
    /// The unit being worked on — a step with `sync=gradients`, a round with `sync=parameters` —
    /// which is also the number of units completed and the parameter version it uses.
    public internal(set) var unit: Int
    /// Valid but dropped messages (duplicates, late results, unknown senders).
    public internal(set) var droppedMessages = 0
    /// Results (work items) accepted from each live worker (by id); a worker's entry goes when it does.
    public internal(set) var acceptedResults: [UInt32: Int] = [:]
    /// Work items handed to another worker because theirs was lost or left.
    public internal(set) var reassignedItems = 0
    /// The unit count after which the job ends when `--early-stop` ended it sooner than
    /// `job.units` (see `CoordinatorStateMachine+EarlyStop.swift`).
    var earlyEnd: Int?
    /// Units after which the job ends.
    var endUnits: Int { earlyEnd ?? job.units }
    /// Rows and reported compute time of each live worker's accepted results (monitoring only).
    public internal(set) var activity: [UInt32: WorkerActivity] = [:]

    // The parts (each with its own state and rules).
    /// Who owns which shard.
    var assignment: ShardAssignment
    /// Backups for slow workers, and demotion.
    var stragglers: StragglerPolicy
    /// `--verify-fraction`.
    var verification: StepVerification
    /// `sync=parameters`: the units of the current round.
    var round = LocalRoundProgress()

    // The current unit.
    var phase: Phase = .waiting
    /// The reduction tree of the current step (`sync=gradients`).
    var tree: ReductionTree
    /// Work items of the current unit → the worker computing it.
    var pending: [Int: UInt32] = [:]
    /// Accepted results of the current step (`sync=gradients`), by node key.
    var results: [Int: WireMessage.GradientResult] = [:]
    /// Whether a unit has been handed out (`minimumWorkers` only gates the first one).
    var started = false
    /// `sync=sharded`: the attempt's epoch and roster, whose value of each accepted node counts,
    /// and the `stepReady` reports in.
    var epoch: UInt64 = 0
    var roster: [UInt32] = []
    var rosterToken: UInt64 = 0
    var resultSources: [Int: UInt32] = [:]
    var readyReports: [UInt32: WireMessage.StepReady] = [:]
    var readyTimes: [UInt32: Double] = [:]
    /// Who was handed each node in the current attempt (a result from anyone else — a late one of
    /// an earlier attempt — is dropped: its segments went to that attempt's owners).
    var attemptSources: [Int: Set<UInt32>] = [:]
    /// Stalled reduces of the current step restarted so far.
    var stalledRestarts = 0
    var peerBytesSent: [UInt32: UInt64] = [:]
    /// When the current reduce was ordered, and how long the last one took.
    var reduceStarted = 0.0
    var lastReduceSeconds = 0.0
    /// `sync=sharded`: the version of the training state the driver holds (set by the driver
    /// when it loads, fetches or starts one); nil: none.
    public var heldStateVersion: Int?
    private var heartbeatSequence: UInt64 = 0

    /// A machine that will train from unit `startUnit` (0, or the step — round with
    /// `sync=parameters` — of a checkpoint).
    public init(job: Job, startUnit: Int = 0) {
        self.job = job
        self.unit = startUnit
        membership = MembershipTable(
            limits: job.limits, dtype: job.spec.dtype, heartbeatInterval: job.heartbeatInterval, heartbeatLiveness: job.heartbeatLiveness,
            quarantineReply: "quarantined: a result of this worker disagreed with the coordinator's own computation")
        assignment = ShardAssignment(shardCount: job.plan.shardCount)
        tree = ReductionTree(plan: job.plan, step: startUnit)
        stragglers = StragglerPolicy(
            minimumBackupDelay: job.minimumBackupDelay, slowStepsBeforeDemotion: job.slowStepsBeforeDemotion, demotionSteps: job.demotionSteps)
        if case .training(let training) = job.spec.mode, case .sharded = training.sync { stragglers.slowWindow = 64 }
        let fraction = job.localSteps == nil ? job.verifyFraction : 0
        verification = StepVerification(sampler: VerificationSampler(fraction: fraction, seed: job.plan.seed))
        if startUnit >= job.units { phase = .finished }
    }

    // MARK: State

    /// Owner of each shard (absent: unowned, waiting for a live worker).
    public var shardOwner: [Int: UInt32] { assignment.owner }
    /// The shards worker `id` owns.
    public func shards(of id: UInt32) -> Set<Int> { assignment.shards(of: id) }
    /// Backup copies of slow workers' work items sent since this machine started.
    public var backupsSent: Int { stragglers.backupsSent }
    /// Demoted workers and the step from which they may own shards again.
    public var demotedUntil: [UInt32: Int] { stragglers.demotedUntil }

    /// The accepted node of the current step (`sync=gradients`) whose micro-batches start at
    /// `position` of the tree order (`ReductionTree.microBatches`), with how many it holds, if it
    /// is in. Lets the driver fold nodes in tree order while later ones are still computed.
    /// With verification on, nothing is final before the step completes (a quarantined worker's
    /// accepted results are redone), so this is nil until then.
    public func acceptedResult(at position: Int) -> (result: WireMessage.GradientResult, microBatches: Int)? {
        // sync=sharded: the results carry no gradient (the owners fold the partials).
        guard !verification.isOn, job.localSteps == nil, !isSharded, position < tree.microBatches.count else { return nil }
        let shard = tree.microBatches[position].shard
        guard position == 0 || tree.microBatches[position - 1].shard != shard else { return nil }
        for (key, result) in results {
            guard let node = TreeNode(key: UInt64(key)), node.shards.contains(shard) else { continue }
            let under = tree.microBatches(under: node)
            return under.startIndex == position ? (result, under.count) : nil
        }
        return nil
    }

    /// Whether work item `item` of the current step is checked (`job.verifyFraction`,
    /// `sync=gradients` only): a leaf of the tree whose shard the shared `VerificationSampler`
    /// picks for this step (leaf `unit·S + shard`), the same leaves whatever the workers.
    public func isChecked(item: Int) -> Bool {
        guard job.localSteps == nil, verification.isOn, let node = TreeNode(key: UInt64(item)), node.level == 0 else { return false }
        return isCheckedLeaf(node.index)
    }

    /// Whether the leaf of shard `shard` is checked in the current step.
    func isCheckedLeaf(_ shard: Int) -> Bool {
        verification.isOn && verification.isChecked(unit * job.plan.shardCount + shard)
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

    /// A message arrived from `identity` (decoded by the driver: `InboundMessage`), over a
    /// connection whose ZAP handler gave it `userID` (with CURVE: the peer's public key in Z85).
    public mutating func messageReceived(_ inbound: InboundMessage, from identity: [UInt8], userID: String? = nil, now: Double) -> [Action] {
        let kinds: Set<WireMessage.Kind> = job.localSteps != nil ? [.localResult] : isSharded ? [.gradientResult, .stepReady, .state] : [.gradientResult]
        switch membership.triage(inbound, from: identity, results: kinds, now: now) {
        case .hello(let hello):
            return handleHello(hello, from: identity, key: userID, now: now)
        case .fromMember(let id, .gradientResult(let result)):
            return handleResult(result, from: id, now: now)
        case .fromMember(let id, .stepReady(let report)):
            return handleStepReady(report, from: id, now: now)
        case .fromMember(_, .state):
            // A state the driver no longer waits for (it asked another worker).
            droppedMessages += 1
            return []
        case .fromMember(let id, .localResult(let result)):
            return handleLocalResult(result, from: id, now: now)
        case .fromMember(let id, .goodbye):
            return remove(id, now: now, lost: false)
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

    /// Time passed: heartbeats to quiet workers, the death of silent ones, backups for slow ones.
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
        actions += restartStalledReduce(now: now)
        return actions + heartbeatsDue(now: now)
    }

    /// Heartbeats to the workers that were sent nothing for an interval — and nothing else (the
    /// driver calls it while it waits for a worker's `state`, and keeps the rest of the tick's
    /// business for after).
    public mutating func heartbeatsDue(now: Double) -> [Action] {
        var actions: [Action] = []
        for id in membership.heartbeatDue(now: now) {
            heartbeatSequence += 1
            actions.append(send(id, .heartbeat(.init(sequence: heartbeatSequence, currentStep: UInt64(unit))), now: now))
        }
        return actions
    }

    /// The driver applied the update of the unit whose results it was given.
    public mutating func unitApplied(now: Double) -> [Action] {
        precondition(phase == .applying, "unitApplied() without an applyStep, stepReduced or averageRound action")
        unit += 1
        if job.localSteps == nil, unit < endUnits { tree = ReductionTree(plan: job.plan, step: unit) }
        if isSharded { committedSharded() }
        results.removeAll(keepingCapacity: true)
        pending.removeAll(keepingCapacity: true)
        verification.reset()
        stragglers.reset()
        round.reset()
        var actions: [Action] = []
        if let every = job.checkpointEvery, unit % every == 0 || unit == endUnits {
            actions.append(.checkpoint(units: unit))
        }
        if unit >= endUnits {
            phase = .finished
            let done = job.localSteps == nil ? "\(unit) steps" : "\(unit) rounds"
            for id in liveWorkerIDs {
                actions.append(send(id, .goodbye(.init(reason: "job finished after \(done)")), now: now))
            }
            actions.append(.finished)
            return actions
        }
        phase = .waiting
        return actions + startUnitIfPossible(now: now)
    }
}
