import FlowData
import FlowWire
import Flows
import Foundation
import ZeroMQ

/// A worker process's runtime: connects a DEALER to the coordinator, keeps the rows and
/// parameters it is sent, computes assigned micro-batches on `threads` lanes (one BLAS thread
/// each) and returns one summed gradient per micro-batch. When the coordinator goes silent or
/// forgets it, it reconnects and says hello again; it exits when the coordinator says goodbye.
///
/// Decisions live in `WorkerStateMachine`; this class does the I/O and the math on the thread
/// that calls `run`.
public final class Worker {
    private let endpoint: String
    private let threads: Int
    private let log: (String) -> Void
    private var machine: WorkerStateMachine
    private var engine: WorkerEngine?
    private var scoring: WorkerScoringEngine?
    /// Test hook: exit the process after sending this many results (simulates a crash).
    private let crashAfterResults: Int?
    private var resultsSent = 0
    private let parentPID: Int32?
    private let security: ClusterSecurity.Client?
    private var monitor: SecureConnectionMonitor?
    /// Test hook (`--corrupt-results-every K`): every K-th gradient result (training) or scoring
    /// result sent has one value perturbed (still finite, still well-formed, wrong).
    private let corruptResultsEvery: Int?
    private var gradientResultsSent = 0
    /// Peer messages that were not segments (counted, dropped).
    private var peerMessagesDropped = 0
    private var loggedSegmentDrop = false
    /// Segments received before the job they belong to (kept until it arrives).
    private var earlySegments: [WireMessage.Segment] = []
    /// Give up when no coordinator has welcomed this worker this many seconds after start (nil: never).
    private let connectTimeout: Double?
    /// Give up after this many handshakes refused in a row (nil: never).
    private let maxRefusals: Int?
    /// SIGINT/SIGTERM: say goodbye and leave.
    private let stopSignals: StopSignals?
    private var refusals = 0
    private var lastRefusal = ""
    /// `--peer-endpoint`: where this worker's peer socket binds (`sync=sharded`); nil: none.
    private let peerEndpoint: String?
    private var peers: PeerSockets?

    /// A worker named `name` that will connect to `endpoint`.
    ///
    /// - Parameters:
    ///   - parentPID: exit when this process is gone (workers started by `train --workers`).
    ///   - crashAfterResults: test hook: exit abruptly after sending this many results.
    ///   - corruptResultsEvery: test hook: every K-th result sent has one value perturbed.
    ///   - security: CURVE keys (nil: plain, for loopback, IPC or `--insecure`).
    ///   - connectTimeout: throw ``WorkerError/noCoordinator(endpoint:seconds:)`` when no
    ///     coordinator has welcomed the worker this many seconds after `run` started (nil: wait
    ///     forever; libzmq itself retries a connection forever).
    ///   - maxRefusals: throw ``WorkerError/refused(endpoint:count:reason:)`` after this many
    ///     handshakes refused in a row (nil: retry forever).
    ///   - stopSignals: when one arrives, send `goodbye`, leave and throw ``WorkerError/stopped(signal:)``.
    ///   - peerEndpoint: where to bind the peer socket of the sharded exchange (an address the
    ///     other workers reach; port 0 picks a free one); nil: no peer socket (such a worker
    ///     cannot join a job with `--exchange sharded`).
    public init(
        endpoint: String, name: String, threads: Int = 1, parentPID: Int32? = nil, crashAfterResults: Int? = nil,
        security: ClusterSecurity.Client? = nil, corruptResultsEvery: Int? = nil, connectTimeout: Double? = nil,
        maxRefusals: Int? = nil, stopSignals: StopSignals? = nil, peerEndpoint: String? = nil, log: @escaping (String) -> Void = { _ in }
    ) {
        self.peerEndpoint = peerEndpoint
        self.connectTimeout = connectTimeout
        self.maxRefusals = maxRefusals
        self.stopSignals = stopSignals
        self.security = security
        self.corruptResultsEvery = corruptResultsEvery
        self.endpoint = endpoint
        self.parentPID = parentPID
        self.threads = max(1, threads)
        self.log = log
        self.crashAfterResults = crashAfterResults
        let hello = WireMessage.Hello(
            minimumVersion: WireMessage.protocolVersion, maximumVersion: WireMessage.protocolVersion,
            instance: UInt64.random(in: 1...UInt64.max), processID: UInt32(getpid()),
            name: WireMessage.truncatedUTF8(name), host: WireMessage.truncatedUTF8(ProcessInfo.processInfo.hostName),
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: WireMessage.truncatedUTF8(BLASThreads.coreName), maxMicroBatchRows: 1 << 20))
        machine = WorkerStateMachine(hello: hello)
    }

    /// Runs until the coordinator ends the job.
    public func run() throws {
        BLASThreads.set(1)
        let context = try ZMQContext()
        defer { context.terminate() }
        defer {
            monitor?.stop()  // its socket must be closed before the context can terminate
            monitor = nil
        }
        let clock = ContinuousClock()
        let origin = clock.now
        func now() -> Double {
            let c = (clock.now - origin).components
            return Double(c.seconds) + Double(c.attoseconds) * 1e-18
        }
        if let peerEndpoint {
            let peers = try PeerSockets(context: context, bind: peerEndpoint, security: security, log: log)
            self.peers = peers
            var hello = machine.hello
            hello.peerEndpoint = peers.endpoint
            machine = WorkerStateMachine(hello: hello)
        }
        defer {
            peers?.close()
            peers = nil
        }
        var socket = try connect(context)
        var pending = machine.start(now: now())
        /// Sends what the exchange produced: to the coordinator, or to other workers.
        func deliver(_ deliveries: [WorkerDelivery]) {
            for delivery in deliveries {
                switch delivery {
                case .coordinator(var message):
                    if case .stepReady(var report) = message, let peers {
                        report.peerBytesSent = peers.bytesSent
                        message = .stepReady(report)
                    }
                    send(socket, message.encoded())
                    machine.sent(now: now())
                case .peer(let id, let bytes):
                    peers?.send(to: id, bytes)
                }
            }
        }
        var lastTick = 0.0
        var welcomed = false
        while true {
            while !pending.isEmpty {
                let actions = pending
                pending = []
                for action in actions {
                    switch action {
                    case .send(let message):
                        send(socket, message.encoded())
                        machine.sent(now: now())
                    case .storeJob(let spec):
                        if case .scoring = spec.mode {
                            engine = nil
                            scoring = try WorkerScoringEngine(spec: spec, threads: threads)
                        } else {
                            scoring = nil
                            engine = try makeEngine(spec)
                            engine?.workerID = machine.workerID ?? 0
                            // Segments that came before their job: the exchange keeps what is
                            // of a later roster, and drops what is not of this job.
                            if let engine, !earlySegments.isEmpty {
                                let kept = earlySegments
                                earlySegments = []
                                for segment in kept { deliver(engine.exchange(.segment(segment))) }
                            }
                        }
                    case .storeShard(let rows):
                        engine?.store(rows)
                    case .storeParameters(let parameters):
                        engine?.setParameters(parameters)
                        if let scoring, !scoring.setParameters(parameters) { log("parameters do not fit the scoring job; ignored") }
                    case .score(let chunk):
                        if let scoring {
                            let corrupt = corruptResultsEvery.map { (resultsSent + 1) % $0 == 0 } ?? false
                            let result = scoring.score(chunk, corrupt: corrupt) {
                                // A long chunk must not look like a dead worker.
                                for case .send(let message) in machine.heartbeatIfDue(now: now()) {
                                    send(socket, message.encoded())
                                }
                            }
                            send(socket, result.encoded())
                            machine.sent(now: now())
                            resultsSent += 1
                            if let crashAfterResults, resultsSent >= crashAfterResults { exit(3) }
                        }
                    case .compute(let step, let version, let items):
                        if let engine {
                            engine.compute(step: step, version: version, items: items) { delivery in
                                guard case .coordinator(let result) = delivery else {
                                    deliver([delivery])
                                    return
                                }
                                send(socket, corruptedIfAsked(result).encoded())
                                resultsSent += 1
                                if let crashAfterResults, resultsSent >= crashAfterResults { exit(3) }
                            }
                        }
                        pending += machine.computeFinished(now: now())
                    case .exchange(let message):
                        guard let engine else { break }
                        if case .roster(let roster) = message, let peers, let id = machine.workerID {
                            peers.update(token: roster.token, ids: roster.workerIDs, endpoints: roster.endpoints, keys: roster.keys, selfID: id)
                        }
                        engine.workerID = machine.workerID ?? 0
                        deliver(engine.exchange(message))
                        pending += machine.holding(version: engine.heldVersion, now: now())
                    case .reconnect(let reason):
                        log("reconnecting: \(reason)")
                        socket.close()
                        engine = nil
                        scoring = nil
                        socket = try connect(context)
                        pending += machine.start(now: now())
                    case .finish(let reason):
                        socket.close()
                        if let refusal = machine.refusal { throw WorkerError.refusedHello(endpoint: endpoint, reason: refusal) }
                        log("done: \(reason)")
                        return
                    case .log(let line):
                        log(line)
                    }
                }
            }
            do {
                // Both sockets: the coordinator's and (sync=sharded) the peers'.
                var poller = ZMQPoller()
                _ = poller.add(socket)
                if let peers { _ = poller.add(peers.socket) }
                let ready = try poller.poll(timeoutMilliseconds: 20)
                if ready.contains(0), let actions = try socket.receive(timeoutMilliseconds: 0, maxFrames: 2, lending: { frames in
                    machine.messageReceived(InboundMessage(decoding: frames.last!), now: now())
                }) {
                    pending += actions
                }
                // The coordinator's messages (a job, a roster) are acted on before the peers' that
                // may depend on them; segments that come before their job wait for it (bounded).
                if pending.isEmpty, ready.contains(1), let peers {
                    // Up to a step's worth of segments at a time, then the coordinator again.
                    for _ in 0..<64 {
                        // Under CURVE the connection's ZAP user id is the sender's key: the
                        // exchange checks it against the roster's key of the worker it names.
                        guard let (message, key) = try peers.socket.receive(
                            timeoutMilliseconds: 0, maxFrames: 1, property: security == nil ? nil : "User-Id", lending: { frames, userID in
                                (InboundMessage(decoding: frames.last!), userID)
                            }) else { break }
                        guard case .message(.segment(var segment)) = message else {
                            peerMessagesDropped += 1
                            if peerMessagesDropped == 1 { log("dropped a peer message that is not a segment (counted; further ones are not logged)") }
                            continue
                        }
                        if security != nil {
                            // Kept with the segment; a plain socket's messages name no key.
                            segment.senderKey = key ?? ""
                        }
                        guard let engine else {
                            // Before the job, its size is unknown: at most 64 segments are kept.
                            if earlySegments.count < 64 { earlySegments.append(segment) } else { peerMessagesDropped += 1 }
                            continue
                        }
                        deliver(engine.exchange(.segment(segment)))
                        if engine.droppedSegments > 0, !loggedSegmentDrop {
                            loggedSegmentDrop = true
                            log("dropped a segment that is not of the current attempt (late, forged, or not from a worker of the roster); further ones are only counted")
                        }
                    }
                }
            } catch let error as ZeroMQError where error.isInterrupted || error.isTooManyFrames {
                // A signal, or a malformed multipart message (dropped by the socket layer).
            }
            let t = now()
            if t - lastTick >= 0.02 {
                lastTick = t
                pending += machine.tick(now: t)
                monitor?.poll(now: t, refusals: &refusals, lastRefusal: &lastRefusal, log: log)
                welcomed = welcomed || machine.workerID != nil
                if let signal = stopSignals?.received {
                    sayGoodbye(socket, reason: "stopped by \(WorkerError.signalName(signal))")
                    throw WorkerError.stopped(signal: signal)
                }
                if let maxRefusals, refusals >= maxRefusals {
                    throw WorkerError.refused(endpoint: endpoint, count: refusals, reason: lastRefusal)
                }
                if let connectTimeout, !welcomed, t >= connectTimeout {
                    // A coordinator that refuses the handshake is there: say so, not "no coordinator".
                    if refusals > 0 { throw WorkerError.refused(endpoint: endpoint, count: refusals, reason: lastRefusal) }
                    throw WorkerError.noCoordinator(endpoint: endpoint, seconds: connectTimeout)
                }
                if let parentPID, getppid() != parentPID {
                    log("the launching process is gone; exiting")
                    return
                }
            }
        }
    }

    private func connect(_ context: ZMQContext) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(0)
        // The worker learns the model's size only from the jobSpec, after connecting, so its
        // inbound bound is the protocol's frame limit; with CURVE only the pinned coordinator
        // can send to it at all. Queues are bounded; a send that cannot be queued within the
        // timeout is logged and the coordinator's heartbeat rules take over.
        try socket.setMaxMessageSize(WireLimits.default.zmqMaxMessageSize)
        try socket.setSendHighWaterMark(Worker.highWaterMark)
        try socket.setReceiveHighWaterMark(Worker.highWaterMark)
        try socket.setSendTimeout(Worker.sendTimeoutMilliseconds)
        try security?.protect(socket)
        monitor?.stop()
        monitor = try SecureConnectionMonitor(socket: socket, security: security)
        try socket.connect(endpoint: endpoint)
        return socket
    }

    /// Queues a `goodbye` and closes the socket, giving the message up to
    /// ``goodbyeLingerMilliseconds`` to leave (the coordinator then logs the worker as left,
    /// not as lost).
    private func sayGoodbye(_ socket: ZMQSocket, reason: String) {
        log("leaving: \(reason); saying goodbye to the coordinator")
        send(socket, WireMessage.goodbye(.init(reason: reason)).encoded())
        try? socket.setLinger(Worker.goodbyeLingerMilliseconds)
        socket.close()
    }

    /// How long a goodbye may take to leave when the worker stops.
    static let goodbyeLingerMilliseconds = 500

    /// The test hook `corruptResultsEvery`: flips the lowest bit of the first gradient value of
    /// every K-th `gradientResult` (`sync=sharded`: the engine moves the first value of every K-th
    /// partial up by one ulp, before its segments and digest are made).
    private func corruptedIfAsked(_ message: WireMessage) -> WireMessage {
        guard let k = corruptResultsEvery, case .gradientResult(var result) = message, result.gradient.count > 0 else { return message }
        gradientResultsSent += 1
        guard gradientResultsSent % k == 0 else { return message }
        switch result.gradient {
        case .float32(var v): v[0] = Float(bitPattern: v[0].bitPattern ^ 1); result.gradient = .float32(v)
        case .float64(var v): v[0] = Double(bitPattern: v[0].bitPattern ^ 1); result.gradient = .float64(v)
        }
        return .gradientResult(result)
    }

    /// Messages queued per direction (a step's results, with room to spare).
    static let highWaterMark = 4096
    /// How long a send may wait for room in the queue.
    static let sendTimeoutMilliseconds = 2_000

    private func send(_ socket: ZMQSocket, _ bytes: [UInt8]) {
        do {
            if try !socket.send(frames: [ZMQFrame(bytes)], dontWait: false) {
                log("send dropped: the queue to the coordinator stayed full for \(Worker.sendTimeoutMilliseconds / 1000) s")
            }
        } catch {
            log("send failed: \(error)")
        }
    }

    private func makeEngine(_ spec: WireMessage.JobSpec) throws -> WorkerEngine {
        switch spec.dtype {
        case .float32: return try Engine<Float>(spec: spec, threads: threads, corruptPartialsEvery: corruptResultsEvery)
        case .float64: return try Engine<Double>(spec: spec, threads: threads, corruptPartialsEvery: corruptResultsEvery)
        }
    }
}

/// The math of a worker for one job, in the job's precision.
protocol WorkerEngine: AnyObject {
    func store(_ rows: WireMessage.ShardRows)
    func setParameters(_ parameters: WireMessage.Parameters)
    /// Computes the items (tree nodes, or a round's micro-batches) and hands each result (or
    /// error) — and, with the sharded exchange, each partial's segments for their owners — to
    /// `deliver`, which encodes and sends it.
    func compute(step: UInt64, version: UInt64, items: [UInt64], deliver: (WorkerDelivery) -> Void)
    /// `sync=sharded`: a coordinator's `roster`, `reduce`, `stateRequest` or `state`, or a peer's
    /// `segment`; returns what to send.
    func exchange(_ message: WireMessage) -> [WorkerDelivery]
    /// `sync=sharded`: the parameter version held (nil: none, or another exchange).
    var heldVersion: UInt64? { get }
    /// `sync=sharded`: segments dropped (not of the current attempt, forged, wrong shape).
    var droppedSegments: Int { get }
    /// This worker's id (set once welcomed).
    var workerID: UInt32 { get set }
}

final class Engine<Scalar: FlowScalar>: WorkerEngine {
    let spec: WireMessage.JobSpec
    let configuration: FlowConfiguration
    let standardization: Standardization<Scalar>?
    let plan: BatchPlan
    var cursor: BatchPlanCursor
    let lanes: GradientLanes<Scalar>
    var shards: [Int: [Scalar]] = [:]
    var model: RealNVP<Scalar>?
    /// `sync=parameters`: the running sum of one local step (reused across rounds; allocated on
    /// first use). Optional, not `lazy`: an `inout` access to a lazy property goes through its
    /// getter and setter, so every write would copy the P-value buffers (a profile showed one
    /// copy per step).
    var roundSum: GradientSum<Scalar>?
    /// The value of the node being computed (allocated on first use; see `roundSum`).
    var nodeSum: GradientSum<Scalar>?
    /// `sync=sharded`: this worker's part of the exchange.
    let sharded: ShardedWorkerExchange<Scalar>?
    /// Test hook (`--corrupt-results-every K`, `sync=sharded`): every K-th partial computed has
    /// its first value moved up by one ulp.
    private let corruptPartialsEvery: Int?
    private var partialsComputed = 0
    var workerID: UInt32 {
        get { sharded?.workerID ?? 0 }
        set { sharded?.workerID = newValue }
    }

    init(spec: WireMessage.JobSpec, threads: Int, corruptPartialsEvery: Int? = nil) throws {
        guard case .training(let training) = spec.mode else { throw TrainingError.invalidData("not a training job") }
        self.corruptPartialsEvery = corruptPartialsEvery
        self.spec = spec
        configuration = try spec.flowConfiguration()
        if let s = spec.standardization, let mean = s.mean.elements(as: Scalar.self), let std = s.std.elements(as: Scalar.self) {
            standardization = try Standardization(mean: mean, std: std)
        } else {
            standardization = nil
        }
        plan = try BatchPlan(
            seed: training.seed, rowCount: Int(training.rowCount), microBatchSize: Int(training.microBatchSize),
            batchSize: Int(training.batchSize), shardCount: Int(training.shardCount))
        cursor = BatchPlanCursor(plan: plan)
        lanes = GradientLanes(configuration: configuration, capacity: plan.microBatchSize, lanes: threads)
        if case .sharded(let settings) = training.sync {
            sharded = ShardedWorkerExchange(
                jobID: spec.jobID, parameterCount: configuration.parameterCount, microBatchSize: plan.microBatchSize,
                batchSize: plan.batchSize, settings: settings, digests: training.digestResults)
        } else {
            sharded = nil
        }
    }

    var heldVersion: UInt64? { sharded?.version }
    var droppedSegments: Int { sharded?.dropped ?? 0 }

    func exchange(_ message: WireMessage) -> [WorkerDelivery] {
        guard let sharded else { return [] }
        switch message {
        case .state(let state):
            guard let values = state.parameters.elements(as: Scalar.self) else { return [] }
            if model == nil { model = try? RealNVP(configuration: configuration, parameters: values, standardization: standardization) }
            guard model != nil, sharded.install(state, into: &model!.parameters) else {
                return [.coordinator(.error(.init(code: .badMessage, jobID: state.jobID, message: "the state does not fit the job")))]
            }
            return []
        case .stateRequest(let request):
            guard model != nil else {
                return [.coordinator(.error(.init(code: .missingParameters, jobID: request.jobID, message: "this worker holds no state yet")))]
            }
            return [.coordinator(sharded.state(for: request, parameters: &model!.parameters))]
        case .roster(let roster):
            guard model != nil else { return [] }
            return sharded.setRoster(roster, parameters: &model!.parameters)
        case .reduce(let order):
            return sharded.receive(order)
        case .segment(let segment):
            return sharded.receive(segment)
        default:
            return []
        }
    }

    func store(_ rows: WireMessage.ShardRows) {
        guard let values = rows.values.elements(as: Scalar.self) else { return }
        shards[Int(rows.shard)] = values
    }

    func setParameters(_ parameters: WireMessage.Parameters) {
        guard let values = parameters.values.elements(as: Scalar.self) else { return }
        model = try? RealNVP(configuration: configuration, parameters: values, standardization: standardization)
    }

    func compute(step: UInt64, version: UInt64, items: [UInt64], deliver: (WorkerDelivery) -> Void) {
        withoutActuallyEscaping(deliver) { deliver in
            computeNodes(step: step, version: version, items: items, deliver: deliver)
        }
    }

    private func computeNodes(step: UInt64, version: UInt64, items: [UInt64], deliver: @escaping (WorkerDelivery) -> Void) {
        let send: (WireMessage) -> Void = { deliver(.coordinator($0)) }
        var items = items
        if let sharded {
            // Nodes computed in an earlier attempt of this step are sent again, not recomputed.
            for key in items where sharded.hasCached(step: step, node: key) {
                for delivery in sharded.partial(step: step, node: key, rows: 0, lossSum: 0, gradient: nil, computeSeconds: 0) { deliver(delivery) }
            }
            items.removeAll { sharded.hasCached(step: step, node: $0) }
            guard !items.isEmpty else { return }
        }
        if case .training(let training) = spec.mode, case .parameters(let settings) = training.sync {
            computeRound(round: step, version: version, microBatches: items, settings: settings, send: send)
            return
        }
        func failure(_ code: WireErrorCode, _ key: UInt64, _ message: String) -> WireMessage {
            .error(.init(code: code, jobID: spec.jobID, step: step, item: key, message: message))
        }
        guard let model else {
            for key in items { send(failure(.missingParameters, key, "no parameters of version \(version)")) }
            return
        }
        // Every node's micro-batches, in tree order, computed in waves across node boundaries
        // (all lanes busy even when nodes are small), each node folded on its own.
        let tree = ReductionTree(plan: plan, step: Int(step))
        var nodes: [(key: UInt64, node: TreeNode)] = []
        var nodeEnds: [Int] = []
        var batches: [GradientLanes<Scalar>.MicroBatch] = []
        var batchShards: [Int] = []
        for key in items {
            // The state machine checked the nodes against the plan.
            guard let node = TreeNode(key: key) else { continue }
            let refs = tree.microBatches(under: node)
            if let missing = refs.first(where: { shards[$0.shard] == nil }) {
                send(failure(.missingRows, key, "rows of shard \(missing.shard) were not received"))
                continue
            }
            guard !refs.isEmpty else {
                send(failure(.missingRows, key, "\(node) holds no micro-batch of step \(step)"))
                continue
            }
            for ref in refs {
                batches.append(microBatch(ref)!)
                batchShards.append(ref.shard)
            }
            nodes.append((key, node))
            nodeEnds.append(batches.count)
        }
        guard !nodes.isEmpty else { return }
        // Each result carries the compute time since the previous one was handed over: summed
        // per worker, its busy time, never its sending.
        var handedOver = MonotonicClock.seconds()
        if nodeSum == nil { nodeSum = GradientSum(parameterCount: configuration.parameterCount) }
        lanes.reduce(model: model, batches, shards: batchShards, nodeEnds: nodeEnds, into: &nodeSum!) { k, sum in
            let computeSeconds = max(0, MonotonicClock.seconds() - handedOver)
            defer { handedOver = MonotonicClock.seconds() }
            let (key, node) = nodes[k]
            let loss = sum.lossSum
            // Known from the additions that wrote the node's value (no extra pass) when it holds
            // more than one micro-batch.
            if !loss.isFinite || !sum.isFinite() {
                send(failure(.nonFinite, key, "the loss or gradient of \(node) in step \(step) is not finite"))
                return
            }
            let gradient = sum.gradient
            if let sharded {
                var gradient = gradient
                partialsComputed += 1
                if let k = corruptPartialsEvery, partialsComputed % k == 0 {
                    gradient[0] = gradient[0].nextUp
                }
                for delivery in sharded.partial(
                    step: step, node: key, rows: UInt64(sum.rows), lossSum: loss, gradient: gradient, computeSeconds: computeSeconds) {
                    deliver(delivery)
                }
                return
            }
            send(WireMessage.gradientResult(.init(
                jobID: spec.jobID, step: step, version: version, node: key, rowCount: UInt64(sum.rows),
                lossSum: loss, gradient: WireVector(gradient)!, computeSeconds: computeSeconds)))
        }
    }

    /// The rows of micro-batch `ref` from the shard that holds them, or nil when that shard's
    /// rows were not received.
    func microBatch(_ ref: MicroBatchRef) -> GradientLanes<Scalar>.MicroBatch? {
        guard let rows = shards[ref.shard] else { return nil }
        let first = plan.shardRange(ref.shard).lowerBound
        return (rows, cursor.positions(of: ref).map { $0 - first })
    }
}
