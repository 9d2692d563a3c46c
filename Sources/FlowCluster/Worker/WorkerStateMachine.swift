import FlowData
import FlowWire

/// A worker's decisions, as a pure state machine: it says hello, stores what the coordinator
/// sends (job, shard rows, parameters), computes an assignment once it has the rows and the
/// parameter version it names, heartbeats, and starts over when the coordinator goes silent or
/// no longer knows it. The driver holds the socket, the rows and the math.
public struct WorkerStateMachine: Sendable {
    /// What the driver must do.
    public enum Action: Sendable, Equatable {
        /// Send `message` to the coordinator.
        case send(WireMessage)
        /// Keep the job (build the model and plan from it); forget rows and parameters of any other job.
        case storeJob(WireMessage.JobSpec)
        /// Keep these rows.
        case storeShard(WireMessage.ShardRows)
        /// Keep this parameter version.
        case storeParameters(WireMessage.Parameters)
        /// Compute these items of `step` with parameter version `version` — nodes of the step's
        /// reduction tree (`sync=gradients`: send one `gradientResult` per node) or global
        /// micro-batches (`sync=parameters`: take the local steps of round `step` on them and
        /// send one `localResult`) — then call `computeFinished`.
        case compute(step: UInt64, version: UInt64, items: [UInt64])
        /// Score this chunk with the job's parameters and send the `scoreResult` (scoring jobs).
        case score(WireMessage.ScoreChunk)
        /// Drop the connection and everything received, open a new one, then call `start`.
        case reconnect(reason: String)
        /// The coordinator ended the job: exit.
        case finish(reason: String)
        /// Something worth a log line.
        case log(String)
        /// `sync=sharded`: hand this coordinator message (`roster`, `reduce`, `stateRequest`,
        /// `state`) to the exchange, then report the version held with `holding(version:now:)`.
        case exchange(WireMessage)
    }

    /// Who this worker is (sent in `hello`).
    public let hello: WireMessage.Hello
    /// Heartbeat interval (s) and liveness before the coordinator's `welcome` says otherwise.
    public private(set) var heartbeatInterval: Double
    public private(set) var heartbeatLiveness: Int
    /// The id the coordinator gave this worker, once welcomed.
    public private(set) var workerID: UInt32?
    /// Invalid messages received from the coordinator (counted, dropped).
    public private(set) var invalidMessages = 0
    /// Why the coordinator refused this worker at the door (protocol, dtype, no peer endpoint),
    /// once it has: the worker ends, and retrying would not help.
    public private(set) var refusal: String?

    private var job: WireMessage.JobSpec?
    private var plan: BatchPlan?
    private var shards: Set<Int> = []
    private var version: UInt64?
    /// Assignments waiting for their parameters or rows, with the shards each needs.
    private var queue: [(assignment: WireMessage.Assignment, shards: Set<Int>)] = []
    private var computing = false
    private var lastHeard: Double = 0
    private var lastSent: Double = 0
    private var sequence: UInt64 = 0
    private var currentStep: UInt64?
    private var finished = false

    public init(hello: WireMessage.Hello, heartbeatInterval: Double = 0.5, heartbeatLiveness: Int = 8) {
        self.hello = hello
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatLiveness = heartbeatLiveness
    }

    /// A (new) connection is open: say hello.
    public mutating func start(now: Double) -> [Action] {
        workerID = nil
        job = nil
        plan = nil
        shards = []
        version = nil
        queue = []
        computing = false
        lastHeard = now
        lastSent = now
        return [.send(.hello(hello))]
    }

    /// A message from the coordinator, decoded by the driver (`InboundMessage`).
    public mutating func messageReceived(_ inbound: InboundMessage, now: Double) -> [Action] {
        let message: WireMessage
        switch inbound {
        case .message(let m):
            message = m
        case .undecodable(let reason, _):
            invalidMessages += 1
            return invalidMessages == 1 ? [.log("invalid message from the coordinator: \(reason)")] : []
        }
        lastHeard = now
        switch message {
        case .welcome(let welcome):
            guard welcome.workerInstance == hello.instance else { return [.log("ignored a welcome for another instance")] }
            workerID = welcome.workerID
            heartbeatInterval = max(0.01, Double(welcome.heartbeatIntervalMilliseconds) / 1000)
            heartbeatLiveness = max(2, Int(welcome.heartbeatLiveness))
            return [.log("joined as worker \(welcome.workerID)")]
        case .jobSpec(let spec):
            guard workerID != nil else { return [] }
            if case .scoring = spec.mode {
                job = spec
                plan = nil
                shards = []
                version = nil
                queue = []
                return [.storeJob(spec)]
            }
            guard case .training(let training) = spec.mode else {
                return [.send(.error(.init(code: .unknownJob, jobID: spec.jobID, message: "this worker computes training and scoring jobs only")))]
            }
            do {
                guard let rows = Int(exactly: training.rowCount) else {
                    throw TrainingError.invalidData("row count \(training.rowCount) is out of range")
                }
                plan = try BatchPlan(
                    seed: training.seed, rowCount: rows, microBatchSize: Int(training.microBatchSize),
                    batchSize: Int(training.batchSize), shardCount: Int(training.shardCount))
            } catch {
                return [.send(.error(.init(code: .badMessage, jobID: spec.jobID, message: "bad plan: \(error)")))]
            }
            job = spec
            shards = []
            version = nil
            queue = []
            return [.storeJob(spec)]
        case .shardRows(let rows):
            guard let job, rows.jobID == job.jobID, let plan else { return [] }
            guard Int(rows.shard) < plan.shardCount else {
                invalidMessages += 1
                return [.log("rows for shard \(rows.shard) of a plan with \(plan.shardCount) shards; dropped")]
            }
            let range = plan.shardRange(Int(rows.shard))
            guard Int(exactly: rows.firstPosition) == range.lowerBound, Int(rows.rowCount) == range.count,
                  rows.dimension == job.architecture.dimension, rows.values.dtype == job.dtype
            else {
                invalidMessages += 1
                return [.log("shard \(rows.shard) rows do not match the plan; dropped")]
            }
            shards.insert(Int(rows.shard))
            return [.storeShard(rows)] + startIfReady(now: now)
        case .parameters(let parameters):
            guard let job, parameters.jobID == job.jobID, parameters.values.dtype == job.dtype else { return [] }
            version = parameters.version
            return [.storeParameters(parameters)] + startIfReady(now: now)
        case .assignment(let assignment):
            guard let job, assignment.jobID == job.jobID, let plan else { return [] }
            guard let needs = Self.shardsNeeded(by: assignment, plan: plan, job: job) else {
                invalidMessages += 1
                return [.log("an assignment names items beyond the plan's range; dropped")]
            }
            queue.append((assignment, needs))
            return startIfReady(now: now)
        case .scoreChunk(let chunk):
            guard let job, chunk.jobID == job.jobID, case .scoring = job.mode else { return [] }
            guard version != nil else {
                return [.send(.error(.init(code: .missingParameters, jobID: job.jobID, item: chunk.chunk, message: "no parameters received")))]
            }
            return [.score(chunk)]
        case .roster, .reduce, .stateRequest, .state:
            guard let job, case .training(let training) = job.mode, case .sharded = training.sync else {
                invalidMessages += 1
                return invalidMessages == 1 ? [.log("\(message.kind) outside a job with the sharded exchange; dropped")] : []
            }
            return [.exchange(message)]
        case .heartbeat:
            return []
        case .error(let report):
            if report.code == .notRegistered {
                return [.reconnect(reason: "the coordinator does not know this worker (\(report.message))")]
            }
            if workerID == nil, report.code == .unsupportedVersion || report.code == .unsupportedDType || report.code == .noPeerEndpoint {
                // Refused at the door: retrying would be refused again, forever.
                finished = true
                refusal = report.message
                return [.finish(reason: "the coordinator refused this worker: \(report.message)")]
            }
            return [.log("coordinator error \(report.code): \(report.message)")]
        case .goodbye(let goodbye):
            finished = true
            return [.finish(reason: goodbye.reason)]
        default:
            invalidMessages += 1
            return invalidMessages == 1 ? [.log("the coordinator may not send \(message.kind)")] : []
        }
    }

    /// `sync=sharded`: the exchange holds parameter version `held` (after a `state`, or a step
    /// it applied when the coordinator committed it): assignments of that version can start.
    public mutating func holding(version held: UInt64?, now: Double) -> [Action] {
        guard let held, held != version else { return [] }
        version = held
        return startIfReady(now: now)
    }

    /// The driver sent every result of the last `compute`.
    public mutating func computeFinished(now: Double) -> [Action] {
        computing = false
        lastSent = now
        return startIfReady(now: now)
    }

    /// Time passed: heartbeat, and give up on a silent coordinator.
    public mutating func tick(now: Double) -> [Action] {
        guard !finished else { return [] }
        if now - lastHeard > heartbeatInterval * Double(heartbeatLiveness) {
            return [.reconnect(reason: "no word from the coordinator for \(Int((now - lastHeard) * 1000)) ms")]
        }
        guard now - lastSent >= heartbeatInterval else { return [] }
        lastSent = now
        sequence += 1
        return [.send(.heartbeat(.init(sequence: sequence, pendingWork: UInt32(queue.count), currentStep: currentStep)))]
    }

    /// During a long computation (the coordinator is not being read): a heartbeat when one is
    /// due, and nothing else — the coordinator's silence is judged only between computations.
    public mutating func heartbeatIfDue(now: Double) -> [Action] {
        guard !finished, now - lastSent >= heartbeatInterval else { return [] }
        lastSent = now
        sequence += 1
        return [.send(.heartbeat(.init(sequence: sequence, pendingWork: 1, currentStep: currentStep)))]
    }

    /// The driver sent something (results count as liveness for the coordinator).
    public mutating func sent(now: Double) { lastSent = now }

    /// Starts the oldest assignment whose parameters and rows are here. Assignments for older
    /// versions than the one held are dropped (the coordinator has moved on).
    private mutating func startIfReady(now: Double) -> [Action] {
        guard !computing, plan != nil, let version else { return [] }
        queue.removeAll { $0.assignment.version < version }
        guard let index = queue.firstIndex(where: { $0.assignment.version == version && $0.shards.isSubset(of: shards) }) else { return [] }
        let assignment = queue.remove(at: index).assignment
        computing = true
        currentStep = assignment.step
        return [.compute(step: assignment.step, version: assignment.version, items: assignment.items)]
    }

    /// The shards whose rows `assignment` reads, or nil when it names items outside the plan:
    /// nodes beyond the tree, or steps so far on that stream positions would overflow.
    static func shardsNeeded(by assignment: WireMessage.Assignment, plan: BatchPlan, job: WireMessage.JobSpec) -> Set<Int>? {
        // Step s reads stream positions below (s·M/S + 2M)·m: refuse steps that would overflow.
        let M = UInt64(plan.microBatchesPerStep)
        let stepLimit = UInt64(Int.max / 4) / UInt64(plan.microBatchSize) / M
        if case .training(let training) = job.mode, case .parameters = training.sync {
            guard assignment.items.allSatisfy({ $0 / M < stepLimit }) else { return nil }
            return Set(assignment.items.map { plan.microBatch(globalIndex: Int($0)).shard })
        }
        guard assignment.step < stepLimit else { return nil }
        let tree = ReductionTree(plan: plan, step: Int(assignment.step))
        var needs: Set<Int> = []
        for key in assignment.items {
            guard let node = TreeNode(key: key), node.firstShard < plan.shardCount, tree.root.contains(node) else { return nil }
            needs.formUnion(tree.shards(under: node))
        }
        return needs
    }
}
