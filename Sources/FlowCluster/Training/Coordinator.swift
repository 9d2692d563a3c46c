import FlowData
import FlowWire
import Flows
import Foundation
import ZeroMQ

/// The coordinator of a training job: binds a ROUTER, hands the nodes of each step's reduction
/// tree to workers (with the rows and parameters they need), folds their pre-reduced partials in
/// tree order and applies Adam — the same arithmetic as `LocalTrainer`, so the final parameters are the
/// same bits as a single-process run with the same options.
///
/// With `options.localSteps` set (`sync=parameters`), workers take that many local Adam steps
/// per round and the coordinator averages their parameters weighted by rows instead: less
/// traffic, different numbers (see docs/usage.md).
///
/// The decisions live in `CoordinatorStateMachine`; this class does the socket I/O, the math
/// and the checkpoints on one thread (the one that calls `run`).
public final class Coordinator<Scalar: FlowScalar> {
    /// The model (updated after every step).
    public private(set) var model: RealNVP<Scalar>
    /// The optimiser state.
    public private(set) var optimizer: AdamOptimizer<Scalar>
    /// How the workers' gradients are combined.
    public let exchange: Exchange
    /// `sync=sharded`: bytes of the `state` messages fetched from workers so far (copies,
    /// checkpoints, the final model) — part of what the coordinator received.
    public private(set) var stateBytesFetched = 0
    /// The endpoint actually bound (with the port resolved for `tcp://…:*`).
    public private(set) var boundEndpoint: String?
    /// The state machine (for inspection after `run`).
    public private(set) var machine: CoordinatorStateMachine
    /// Keep-best and early-stop state.
    public private(set) var monitor: ValidationMonitor<Scalar>
    /// The plan step of the last checkpoint written or resumed from (nil: none).
    public private(set) var lastCheckpointStep: Int?

    private let data: TrainingData<Scalar>
    private let options: TrainingOptions
    private let endpoint: String
    private let checkpoint: CheckpointPolicy?
    private let schedule: LearningRateSchedule
    private let log: (String) -> Void
    private let security: ClusterSecurity.Server?
    /// `--verify-fraction`: what the coordinator needs to compute a checked leaf itself.
    private var verifier: (lanes: GradientLanes<Scalar>, cursor: BatchPlanCursor, sum: GradientSum<Scalar>)?
    private var sum: GradientSum<Scalar>
    private var encodedShards: [Int: [UInt8]] = [:]
    private var encodedParameters: (version: UInt64, bytes: [UInt8])?
    /// `sync=sharded`: the encoded `state` last sent to a worker.
    private var encodedState: (version: UInt64, bytes: [UInt8])?
    /// `sync=sharded`: messages received while fetching the state, for the machine.
    private var stashed: [(identity: [UInt8], message: InboundMessage, userID: String?)] = []
    /// `sync=sharded`: the worker that gave the driver's copy of the state (nil: the driver's
    /// own, from the start or a checkpoint).
    private var heldStateSource: UInt32?
    private let inference: InferenceWorkspace<Scalar>
    private var validationLogProb: [Scalar]
    /// The norm of the last step's mean gradient (for the progress report, as `LocalTrainer` gives it).
    private var lastGradientNorm = 0.0
    /// The step whose nodes `sum` holds, the tree-order position of the micro-batches they cover,
    /// and how many nodes (a prefix in tree order): nodes are folded as soon as every earlier one
    /// is in, so that when the last arrives only it is left to add before the update.
    private var summed = (step: -1, position: 0, nodes: 0)
    /// The router while `run` serves (for the byte counters), and its counts when it closed.
    private var router: CoordinatorRouter?
    private var bytes = (sent: 0, received: 0)

    private var figures = WorkerFigures()
    /// When the first assignment of this run went out (the rate does not count the wait before).
    private var firstHandOut: Double?

    /// Each live worker's compute rate, share and straggler mark since the previous call
    /// (`WorkerFigures`; call it once per report).
    public func workerFigures() -> [WorkerFigures.Figure] {
        let m = machine
        return figures.figures(
            live: m.liveWorkerIDs, activity: m.activity, names: m.workers.mapValues(\.name), demoted: Set(m.demotedUntil.keys))
    }

    /// The run's counters so far (monitoring).
    public var counters: ClusterCounters {
        ClusterCounters(
            membership: machine.membership, reassigned: machine.reassignedItems, backups: machine.backupsSent, dropped: machine.droppedMessages,
            bytes: router.map { ($0.bytesSent, $0.bytesReceived) } ?? bytes)
    }
    /// The last step's (round's) mean training loss, for the progress report.
    private var lastMeanLoss = 0.0
    /// `sync=parameters`: the weighted sum of the workers' parameters, in `Double` (allocated on
    /// the first round; not `lazy`, whose every mutating access copies the buffer).
    private var average: [Double] = []

    /// A coordinator for `model` (fresh, or restored from `resume`) on `data`.
    ///
    /// - Parameters:
    ///   - resume: a checkpoint of this run to continue from; its options must equal `options`.
    ///   - minimumWorkers: workers to wait for before the first step.
    ///   - security: CURVE with a ZAP allow-list (nil: plain, for loopback, IPC or `--insecure`).
    ///   - limits: what peers may make the coordinator hold or do.
    public init(
        model: RealNVP<Scalar>, data: TrainingData<Scalar>, options: TrainingOptions, bind endpoint: String,
        minimumWorkers: Int = 1, checkpoint: CheckpointPolicy? = nil, resume: TrainingCheckpoint<Scalar>? = nil,
        heartbeatInterval: Double = 0.25, heartbeatLiveness: Int = 8, security: ClusterSecurity.Server? = nil,
        limits: ClusterLimits = ClusterLimits(), verifyFraction: Double = 0, exchange: Exchange = .star,
        log: @escaping (String) -> Void = { _ in }
    ) throws {
        self.exchange = exchange
        if exchange == .sharded {
            guard options.localSteps == nil else {
                throw TrainingError.invalidOption("--exchange sharded needs sync=gradients (with --local-steps the workers exchange parameters, not gradients)")
            }
            guard model.parameters.count >= ParameterSegments.count else {
                throw TrainingError.invalidOption("--exchange sharded cuts the parameters into \(ParameterSegments.count) segments: this model has only \(model.parameters.count) parameters; use --exchange star")
            }
        }
        guard (0...1).contains(verifyFraction) else {
            throw TrainingError.invalidOption("--verify-fraction must be in [0, 1], found \(verifyFraction)")
        }
        guard verifyFraction == 0 || options.localSteps == nil else {
            throw TrainingError.invalidOption("--verify-fraction needs sync=gradients (local SGD results are not reproducible across workers)")
        }
        try options.validate()
        try options.validate(validationRows: data.validationCount)
        let plan = try BatchPlan(
            seed: options.seed, rowCount: data.trainCount, microBatchSize: options.microBatch,
            batchSize: options.batch, shardCount: options.shardCount)
        var startUnit = 0
        self.model = model
        optimizer = options.makeOptimizer(parameterCount: model.parameters.count)
        monitor = ValidationMonitor(options: options)
        if let resume {
            // `--steps` may grow on resume (TrainingCheckpoint.checkResumable): nothing else may differ.
            var recorded = resume.options
            recorded.steps = options.steps
            let path = checkpoint.map { TrainingCheckpoint<Scalar>.path(in: $0.directory) } ?? "checkpoint"
            guard recorded == options else {
                throw ClusterError.checkpointMismatch(path: path, reason: "was written by a run with other options; resume with the same options")
            }
            guard resume.model.configuration == model.configuration else {
                throw ClusterError.checkpointMismatch(path: path, reason: "holds a model of another architecture")
            }
            self.model = resume.model
            optimizer = resume.optimizer
            monitor = resume.monitor
            lastCheckpointStep = resume.step
            // A checkpoint counts plan steps; with sync=parameters the machine counts rounds
            // (checkpoints are written at round boundaries, or after the last step).
            startUnit = options.localSteps.map { (resume.step + $0 - 1) / $0 } ?? resume.step
        }
        let configuration = model.configuration
        let spec = WireMessage.JobSpec(
            jobID: options.seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(data.trainCount), model: model,
            mode: .training(.init(
                seed: options.seed, rowCount: UInt64(data.trainCount), shardCount: UInt32(plan.shardCount),
                microBatchSize: UInt32(options.microBatch), batchSize: UInt32(options.batch),
                sync: Self.sync(options: options, exchange: exchange),
                // sync=sharded: the coordinator sees no partial, so checked leaves are compared by digest.
                digestResults: exchange == .sharded && verifyFraction > 0)))
        // A run that --early-stop already ended (resumed from its last checkpoint) has no steps left.
        let steps = resume.flatMap { $0.monitor.state.stoppedAt } ?? options.steps
        var job = CoordinatorStateMachine.Job(
            spec: spec, plan: plan, steps: steps, checkpointEvery: checkpoint?.every,
            minimumWorkers: minimumWorkers, heartbeatInterval: heartbeatInterval, heartbeatLiveness: heartbeatLiveness,
            instance: UInt64.random(in: 1...UInt64.max), localSteps: options.localSteps)
        job.limits = limits
        job.verifyFraction = verifyFraction
        machine = CoordinatorStateMachine(job: job, startUnit: startUnit)
        self.data = data
        self.options = options
        self.endpoint = endpoint
        self.checkpoint = checkpoint
        schedule = options.schedule
        self.log = log
        self.security = security
        sum = GradientSum(parameterCount: model.parameters.count)
        inference = InferenceWorkspace(configuration: configuration, capacity: 1024)
        validationLogProb = [Scalar](repeating: 0, count: data.validationCount)
        machine.heldStateVersion = startUnit
    }

    /// The job's synchronisation: local SGD with `--local-steps`, else gradients through the
    /// coordinator (`star`) or among the workers (`sharded`, which carries Adam's settings).
    static func sync(options: TrainingOptions, exchange: Exchange) -> WireMessage.JobSpec.Sync {
        func optimizer(localSteps: Int) -> WireMessage.JobSpec.LocalOptimizer {
            .init(
                localSteps: UInt32(localSteps), learningRate: options.learningRate, clipNorm: options.clipNorm,
                schedule: options.scheduleKind == .cosine ? .cosine : .constant, warmupSteps: UInt64(options.warmupSteps),
                totalSteps: UInt64(options.steps), minimumLearningRate: options.minimumLearningRate, weightDecay: options.weightDecay)
        }
        if let localSteps = options.localSteps { return .parameters(optimizer(localSteps: localSteps)) }
        return exchange == .sharded ? .sharded(optimizer(localSteps: 1)) : .gradients
    }

    /// Plan steps completed (rounds × local steps with `sync=parameters`, at most `options.steps`).
    public var step: Int { planSteps(afterUnits: machine.unit) }

    /// Plan steps done after `units` steps or rounds.
    private func planSteps(afterUnits units: Int) -> Int {
        options.localSteps.map { min(units * $0, options.steps) } ?? units
    }

    /// Runs the job to its end. `ready` is called once the socket is bound (with the resolved
    /// endpoint), `progress` after every step, and `watch` about every 20 ms: it may throw to
    /// abandon the run (e.g. when every worker process the caller started has exited).
    public func run(
        ready: (String) -> Void = { _ in }, progress: (TrainingProgress, Int) -> Void = { _, _ in },
        watch: () throws -> Void = {}
    ) throws {
        try CoordinatorRouter.serve(bind: endpoint, security: security, log: log, configure: { router in
            // Nothing a worker legitimately sends is larger than a gradient result; queues hold a
            // step's worth of messages per peer (ClusterLimits explains both numbers).
            try router.setMaxMessageSize(ClusterLimits.largestWorkerMessage(
                parameterCount: model.parameters.count, dtype: machine.job.spec.dtype, sharded: machine.isSharded))
            try router.setSendHighWaterMark(ClusterLimits.coordinatorSendHighWaterMark(shardCount: machine.job.plan.shardCount))
            try router.setReceiveHighWaterMark(ClusterLimits.coordinatorReceiveHighWaterMark(
                microBatchesPerStep: machine.job.plan.microBatchesPerStep))
        }) { router in
            boundEndpoint = router.endpoint
            self.router = router
            defer { self.router = nil; bytes = (router.bytesSent, router.bytesReceived) }
            ready(router.endpoint)
            try serve(router, progress: progress, watch: watch)
        }
    }

    /// The loop of `run`: messages and ticks in, actions out, until the job is done.
    private func serve(
        _ router: CoordinatorRouter, progress: (TrainingProgress, Int) -> Void, watch: () throws -> Void
    ) throws {
        let now = router.now
        var trainingSeconds = 0.0
        var rowsDone = 0
        var stepStarted = now()
        var lastValidation: Double? = nil
        var lastCopy = now(), lastCopyStep = machine.unit
        var reportedThrough = planSteps(afterUnits: machine.unit)
        if machine.isFinished { return }

        while !machine.isFinished {
            // Messages that arrived while the state was being fetched go first, in order.
            let next: [CoordinatorStateMachine.Action]? = stashed.isEmpty
                ? try router.receive(handle: { identity, message, userID in
                    machine.messageReceived(message, from: identity, userID: userID, now: now())
                })
                : { let m = stashed.removeFirst(); return machine.messageReceived(m.message, from: m.identity, userID: m.userID, now: now()) }()
            if var actions = next {
                addResultsInOrder()
                while !actions.isEmpty {
                    actions = try perform(actions, router: router) { unit in
                        let t = now()
                        // Not the wait for the first workers (or, after a resume, for workers to come back).
                        trainingSeconds += t - max(stepStarted, self.firstHandOut ?? stepStarted)
                        let before = self.planSteps(afterUnits: unit), after = self.planSteps(afterUnits: unit + 1)
                        rowsDone += self.options.batch * (after - before)
                        let every = self.options.evaluateEvery
                        let evaluate = after / every > before / every || after == self.options.steps
                        if self.machine.isSharded, evaluate || self.stateNeeded(afterUnits: unit + 1) || (t - lastCopy >= Self.copyInterval && unit + 1 - lastCopyStep >= Self.copyMinimumSteps) {
                            // The state lives on the workers: fetch it (this commits the step
                            // there); it is also the copy a run goes back to if they are all lost.
                            guard self.fetchState(version: unit + 1, router: router) else { return self.machine.rollBack(now: now()) }
                            lastCopy = t
                            lastCopyStep = unit + 1
                        }
                        // A step computed again after going back to a copy was reported already.
                        if after <= reportedThrough {
                            stepStarted = now()
                            return self.machine.unitApplied(now: now())
                        }
                        reportedThrough = after
                        if evaluate { lastValidation = self.validationNLL() }
                        var stopped = false
                        if evaluate, let nll = lastValidation, self.monitor.isActive {
                            stopped = self.monitor.observe(step: after, validationNLL: nll, parameters: self.model.parameters) == .stop
                            if stopped { self.machine.endAfterCurrentUnit() }
                        }
                        progress(TrainingProgress(
                            step: after, steps: self.options.steps, loss: self.lastMeanLoss,
                            validationNLL: evaluate ? lastValidation : nil, rowsPerSecond: Double(rowsDone) / max(trainingSeconds, 1e-9),
                            elapsedSeconds: t, gradientNorm: self.lastGradientNorm, learningRate: self.schedule.rate(atStep: before),
                            stoppedEarly: stopped), self.machine.liveWorkerIDs.count)
                        stepStarted = now()
                        return self.machine.unitApplied(now: now())
                    }
                }
            }
            // Not once the job is done: the workers told goodbye may already have exited, which
            // `watch` would take for a failure.
            if !machine.isFinished, let t = router.tickDue() {
                try watch()
                var actions = machine.tick(now: t)
                while !actions.isEmpty {
                    actions = try perform(actions, router: router) { _ in [] }
                }
            }
        }
    }

    /// Performs actions; `applied` is called after an update with the step index and returns
    /// the machine's follow-up actions.
    private func perform(
        _ actions: [CoordinatorStateMachine.Action], router: CoordinatorRouter, applied: (Int) throws -> [CoordinatorStateMachine.Action]
    ) throws -> [CoordinatorStateMachine.Action] {
        var followUp: [CoordinatorStateMachine.Action] = []
        for action in actions {
            switch action {
            case .send(let identity, let message):
                if firstHandOut == nil, case .assignment = message { firstHandOut = router.now() }
                router.send(identity, message.encoded())
            case .sendShard(let identity, let shard):
                router.send(identity, shardBytes(shard))
            case .sendParameters(let identity, let version):
                if encodedParameters?.version != version {
                    encodedParameters = (version, WireMessage.parameters(.init(
                        jobID: machine.job.spec.jobID, version: version, values: WireVector(model.parameters)!)).encoded())
                }
                router.send(identity, encodedParameters!.bytes)
            case .sendState(let identity, let version):
                guard fetchState(version: Int(version), router: router) else {
                    // Nobody holds it any more: the rest of this attempt is void.
                    return followUp + machine.rollBack(now: router.now())
                }
                if encodedState?.version != version {
                    // A fresh run's moments are zeros: left out, a third of the bytes to every
                    // worker at the start (which all get it at once, through this one link).
                    let fresh = optimizer.step == 0 && optimizer.firstMoment.allSatisfy { $0 == 0 } && optimizer.secondMoment.allSatisfy { $0 == 0 }
                    let empty = WireVector(empty: machine.job.spec.dtype)
                    encodedState = (version, WireMessage.state(.init(
                        jobID: machine.job.spec.jobID, version: version, optimizerStep: UInt64(optimizer.step),
                        parameters: WireVector(model.parameters)!, firstMoment: fresh ? empty : WireVector(optimizer.firstMoment)!,
                        secondMoment: fresh ? empty : WireVector(optimizer.secondMoment)!)).encoded())
                }
                router.send(identity, encodedState!.bytes)
            case .stepReduced(let step, let meanLoss, let gradientNorm):
                lastGradientNorm = gradientNorm
                lastMeanLoss = meanLoss
                followUp += try applied(step)
            case .applyStep(let step, let results):
                if summed.step != step { sum.reset(); summed = (step, 0, 0) }
                for result in results[summed.nodes...] { add(result) }
                summed = (-1, 0, 0)
                let outcome = try optimizer.apply(
                    &sum, to: &model.parameters, clipNorm: options.clipNorm, step: step, learningRate: schedule.rate(atStep: step))
                lastGradientNorm = outcome.gradientNorm
                lastMeanLoss = outcome.meanLoss
                followUp += try applied(step)
            case .averageRound(let round, let results):
                try averageParameters(results, round: round)
                followUp += try applied(round)
            case .checkpoint(let units):
                if let checkpoint {
                    try checkpoint.write(model: model, optimizer: optimizer, step: planSteps(afterUnits: units), options: options, monitor: monitor)
                    lastCheckpointStep = planSteps(afterUnits: units)
                }
            case .revokeKey(let z85):
                router.revoke(z85)
            case .computeLocally(let step, let item):
                var result: WireMessage.GradientResult
                if machine.isSharded {
                    // The referee needs the step's parameters, which live on the workers.
                    switch refereeState(version: step, suspects: machine.sources(ofChecked: item), router: router) {
                    case .held:
                        break
                    case .lost:
                        return followUp + machine.rollBack(now: router.now())
                    case .conflicting(let a, let b):
                        throw ClusterError.jobFailed("step \(step + 1): workers \(a) and \(b) disagree on a checked leaf and hold different training states, so neither can be trusted; continue from the last checkpoint with --resume without them")
                    }
                    result = computeLocally(step: step, item: item)
                    // Compared by digest, as the workers' results are.
                    result.digest = result.gradient.elements(as: Scalar.self)!.withUnsafeBufferPointer { XXH64.hash(values: $0) }
                    result.gradient = WireVector(empty: result.gradient.dtype)
                } else {
                    result = computeLocally(step: step, item: item)
                }
                followUp += machine.coordinatorComputed(result, now: router.now())
            case .finished:
                break
            case .failed(let reason):
                throw ClusterError.jobFailed(reason)
            case .log(let event):
                log(event.logLine)
            }
        }
        return followUp
    }

    /// `sync=sharded`: whether the driver needs the training state after `units` steps (a
    /// checkpoint, or the end of the run).
    private func stateNeeded(afterUnits units: Int) -> Bool {
        if units >= machine.endUnits { return true }
        if let every = machine.job.checkpointEvery, units % every == 0 { return true }
        return false
    }

    /// `sync=sharded`: makes `model` and `optimizer` the training state at `version`, asking the
    /// workers that hold it one after the other (a worker asked for the version after its
    /// pending step applies that step first). Messages that arrive meanwhile are kept for the
    /// machine, in order; heartbeats keep going out. False when no live worker could give it.
    @discardableResult
    private func fetchState(version: Int, router: CoordinatorRouter) -> Bool {
        guard machine.heldStateVersion != version else { return true }
        var asked: Set<UInt32> = []
        while let id = nextHolder(of: version, asked: asked, avoiding: []) {
            asked.insert(id)
            if let state = requestState(version: version, from: id, router: router), install(state, from: id) { return true }
            log("worker \(id) did not send the training state of step \(version); asking another")
        }
        return false
    }

    /// The next live worker to ask for the state at `version`: one not asked yet, outside
    /// `avoiding` if any is.
    private func nextHolder(of version: Int, asked: Set<UInt32>, avoiding: Set<UInt32>) -> UInt32? {
        let holders = machine.workersHolding(version: UInt64(version)).filter { !asked.contains($0) }
        return holders.first { !avoiding.contains($0) } ?? holders.first
    }

    /// Asks worker `id` for the training state at `version` and waits for it (at most the
    /// liveness deadline), keeping what else arrives for the machine. Nil when it does not come.
    private func requestState(version: Int, from id: UInt32, router: CoordinatorRouter) -> WireMessage.TrainingState? {
        guard let peer = machine.workers[id] else { return nil }
        let jobID = machine.job.spec.jobID
        let patience = machine.job.heartbeatInterval * Double(machine.job.heartbeatLiveness)
        router.send(peer.identity, WireMessage.stateRequest(.init(jobID: jobID, version: UInt64(version))).encoded())
        let started = router.now()
        while router.now() - started < patience {
            // The workers must not take the wait for the coordinator's death.
            if let t = router.tickDue() {
                for case .send(let identity, let message) in machine.heartbeatsDue(now: t) { router.send(identity, message.encoded()) }
            }
            let answered = try? router.receive { identity, message, userID -> WireMessage.TrainingState?? in
                if identity == peer.identity, case .message(let m) = message {
                    if case .state(let state) = m, state.jobID == jobID, state.version == UInt64(version) { return .some(state) }
                    if case .error(let report) = m, report.code == .missingParameters { return .some(nil) }
                }
                stashed.append((identity, message, userID))
                machine.heard(from: identity, now: router.now())
                return nil
            }
            if let answered = answered ?? nil { return answered }
        }
        return nil
    }

    /// What the referee of a checked leaf (`sync=sharded`) can compute with.
    private enum RefereeState {
        /// The driver holds the step's state, from a source it may trust.
        case held
        /// No live worker gave it.
        case lost
        /// Two suspects gave different states: nobody can be trusted.
        case conflicting(UInt32, UInt32)
    }

    /// `sync=sharded`: makes the driver hold the state of step `version` to compute a checked leaf
    /// whose sources disagree (`suspects`). A worker outside the disagreement is asked first;
    /// when only suspects hold the state, two of them must give the same bits (a worker that
    /// forged its result could forge its state too). With a single holder, its state is taken.
    private func refereeState(version: Int, suspects: Set<UInt32>, router: CoordinatorRouter) -> RefereeState {
        if machine.heldStateVersion == version, heldStateSource.map({ !suspects.contains($0) }) ?? true { return .held }
        var asked: Set<UInt32> = []
        var first: (id: UInt32, state: WireMessage.TrainingState)?
        while let id = nextHolder(of: version, asked: asked, avoiding: suspects) {
            asked.insert(id)
            guard let state = requestState(version: version, from: id, router: router) else {
                log("worker \(id) did not send the training state of step \(version); asking another")
                continue
            }
            if !suspects.contains(id) {
                if install(state, from: id) { return .held }
                continue  // a state that does not fit the model: ask the next holder
            }
            guard let earlier = first else {
                first = (id, state)
                continue
            }
            guard earlier.state == state else { return .conflicting(earlier.id, id) }
            log("workers \(earlier.id) and \(id) gave the same training state (after \(version) steps); settling with it")
            return install(state, from: id) ? .held : .lost
        }
        guard let only = first, install(only.state, from: only.id) else {
            return machine.heldStateVersion == version ? .held : .lost
        }
        return .held
    }

    /// `sync=sharded`: how often the driver fetches a copy of the training state from a worker —
    /// what a run goes back to when every worker holding the state is lost: every 2 s of
    /// training, and at most every 64 steps. A fetch moves 3·P values from one worker (wide64:
    /// about 31 MB, some 20 ms here); 64 steps apart it adds at most 3P/64 to a step's traffic
    /// (under 5 % of what the exchange moves), and going back costs at most 64 steps or 2 s.
    static var copyInterval: Double { 2.0 }
    static var copyMinimumSteps: Int { 64 }

    /// Takes worker `source`'s `state` as the driver's copy; false when it does not fit the model.
    private func install(_ state: WireMessage.TrainingState, from source: UInt32) -> Bool {
        guard let parameters = state.parameters.elements(as: Scalar.self), parameters.count == model.parameters.count,
              let (first, second) = state.moments(as: Scalar.self), first.count == parameters.count, second.count == parameters.count
        else { return false }
        stateBytesFetched += WireMessage.state(state).encodedByteCount
        model.parameters = parameters
        optimizer.firstMoment = first
        optimizer.secondMoment = second
        optimizer.step = Int(clamping: state.optimizerStep)
        machine.heldStateVersion = Int(state.version)
        heldStateSource = source
        encodedParameters = nil
        encodedState = nil
        return true
    }

    /// A node's value computed here, with the current parameters, exactly as a worker computes
    /// it (`GradientLanes.reduce`, one BLAS thread): the same bits on the same BLAS kernels.
    private func computeLocally(step: Int, item: Int) -> WireMessage.GradientResult {
        let plan = machine.job.plan
        if verifier == nil {
            verifier = (
                GradientLanes(configuration: model.configuration, capacity: plan.microBatchSize, lanes: 1), BatchPlanCursor(plan: plan),
                GradientSum(parameterCount: model.parameters.count))
        }
        let refs = Array(ReductionTree(plan: plan, step: step).microBatches(under: TreeNode(key: UInt64(item))!))
        let batches = refs.map { (rows: data.trainRows, positions: verifier!.cursor.positions(of: $0)) }
        verifier!.lanes.reduce(model: model, batches, shards: refs.map(\.shard), into: &verifier!.sum)
        return WireMessage.GradientResult(
            jobID: machine.job.spec.jobID, step: UInt64(step), version: UInt64(step), node: UInt64(item),
            rowCount: UInt64(verifier!.sum.rows), lossSum: verifier!.sum.lossSum, gradient: WireVector(verifier!.sum.gradient)!)
    }

    /// Folds the accepted nodes of the current step that continue the tree-order prefix in `sum`.
    private func addResultsInOrder() {
        guard options.localSteps == nil, !machine.isFinished else { return }
        let step = machine.unit
        if summed.step != step { sum.reset(); summed = (step, 0, 0) }
        while let found = machine.acceptedResult(at: summed.position) {
            add(found.result)
            summed.position += found.microBatches
            summed.nodes += 1
        }
    }

    /// Folds one node's value into `sum`, in tree order (the machine checked its node, rows,
    /// dtype and length).
    private func add(_ result: WireMessage.GradientResult) {
        guard let gradient = result.gradient.elements(as: Scalar.self), let node = TreeNode(key: result.node) else { return }
        let rows = Int(result.rowCount)
        gradient.withUnsafeBufferPointer {
            sum.add(nodeAt: node.firstShard, gradient: $0.baseAddress!, lossSum: result.lossSum, rows: rows,
                    microBatches: rows / machine.job.plan.microBatchSize)
        }
    }

    /// `sync=parameters`: θ ← Σᵤ nᵤθᵤ / Σᵤ nᵤ over the round's units (in the machine's order, in
    /// `Double`, rounded once to the job's precision). The round's loss goes to the progress
    /// report through `sum`.
    private func averageParameters(_ results: [WireMessage.LocalResult], round: Int) throws {
        let P = model.parameters.count
        if average.count != P { average = [Double](repeating: 0, count: P) }
        average.withUnsafeMutableBufferPointer { FlatVector.zero($0.baseAddress!, count: P) }
        var rows = 0.0, lossSum = 0.0
        for result in results {
            guard let values = result.parameters.elements(as: Scalar.self) else { continue }
            let weight = Double(result.rowCount)
            average.withUnsafeMutableBufferPointer { a in
                for i in 0..<P { a[i] += weight * Double(values[i]) }
            }
            rows += weight
            lossSum += result.lossSum
        }
        precondition(rows > 0, "round \(round): the machine completed a round without rows")
        model.parameters.withUnsafeMutableBufferPointer { p in
            for i in 0..<P { p[i] = Scalar(average[i] / rows) }
        }
        lastGradientNorm = 0
        lastMeanLoss = lossSum / rows
    }

    private func shardBytes(_ shard: Int) -> [UInt8] {
        if let bytes = encodedShards[shard] { return bytes }
        let range = machine.job.plan.shardRange(shard)
        let D = data.dimension
        let values = Array(data.trainRows[(range.lowerBound * D)..<(range.upperBound * D)])
        let bytes = WireMessage.shardRows(.init(
            jobID: machine.job.spec.jobID, shard: UInt32(shard), firstPosition: UInt64(range.lowerBound),
            rowCount: UInt32(range.count), dimension: UInt32(D), values: WireVector(values)!)).encoded()
        encodedShards[shard] = bytes
        return bytes
    }

    /// Mean validation NLL under the current parameters (`nil` without validation rows).
    public func validationNLL() -> Double? {
        ValidationLoss.meanNLL(model: model, rows: data.validationRows, logProbability: &validationLogProb, workspace: inference)
    }
}
