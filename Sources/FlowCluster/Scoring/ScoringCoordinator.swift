import FlowData
import FlowWire
import Flows
import Foundation
import ZeroMQ

/// How a scoring run went.
public struct ScoringSummary: Sendable {
    /// Rows in the input.
    public var rows: Int
    /// Chunks in the input.
    public var chunks: Int
    /// Chunks computed in this run.
    public var computedChunks: Int
    /// Rows in the chunks computed in this run.
    public var computedRows: Int
    /// Chunks found done in the journal.
    public var journaledChunks: Int
    /// Rows not scored, per status.
    public var unscored: [WireRowStatus: Int]
    /// Rows accepted from each worker (by name).
    public var rowsPerWorker: [String: Int]
    /// Wall time of the run, seconds.
    public var seconds: Double
    /// Results dropped as duplicates or late.
    public var droppedMessages: Int
    /// Invalid messages received.
    public var invalidMessages: Int
    /// Verified chunks decided in this run, those that needed a third computation, and the
    /// workers quarantined.
    public var verifiedChunks: Int
    public var mismatches: Int
    public var quarantinedWorkers: Int
}

/// A snapshot for progress lines.
public struct ScoringProgress: Sendable {
    /// Rows done (journaled chunks included).
    public var rowsDone: Int
    /// Rows in all.
    public var rowCount: Int
    /// Rows done in this run.
    public var rowsThisRun: Int
    /// Seconds since the run started.
    public var elapsed: Double
    /// Each live worker's own rate (rows per busy second), share and straggler mark since the
    /// previous report.
    public var perWorker: [WorkerFigures.Figure]
}

/// The coordinator of a scoring job: binds a ROUTER, hands chunks to workers (at most
/// `inFlightPerWorker` each), makes every accepted result durable in the journal, and when all
/// chunks are done assembles the outputs in chunk order through ``ScoreOutputWriter`` — the
/// writer `tributary score` uses in one process, so the bytes are the same.
///
/// Memory: a chunk's rows are read only when it is sent (and its mapped pages released after),
/// a result is kept only until it is written to its part file, and assembling reads one part at
/// a time — so the coordinator's memory is bounded by a few chunks, whatever the input's size.
///
/// The decisions live in ``ScoringStateMachine``; this class does the I/O on the thread that
/// calls `run`.
public final class ScoringCoordinator {
    /// The state machine (for inspection).
    public private(set) var machine: ScoringStateMachine
    /// The endpoint actually bound.
    public private(set) var boundEndpoint: String?

    private let input: ScoringInput
    private let parameters: WireVector
    private let journal: ScoreJournal
    private let output: ScoreOutputWriter
    private let endpoint: String
    private let log: (String) -> Void
    private let security: ClusterSecurity.Server?
    private var encodedParameters: [UInt8]?
    /// Malformed-row reasons of chunks sent and not yet stored.
    private var reasons: [Int: [Int: String]] = [:]
    private var names: [UInt32: String] = [:]
    private var figures = WorkerFigures()
    /// The router while `run` serves (for the byte counters).
    private var router: CoordinatorRouter?

    /// A coordinator for `job` on `input`, continuing `journal` (its done chunks are skipped).
    public init(
        job: ScoringStateMachine.Job, input: ScoringInput, parameters: WireVector, journal: ScoreJournal,
        output: ScoreOutputWriter, bind endpoint: String, security: ClusterSecurity.Server? = nil,
        log: @escaping (String) -> Void = { _ in }
    ) {
        self.security = security
        machine = ScoringStateMachine(job: job, alreadyDone: journal.done)
        self.input = input
        self.parameters = parameters
        self.journal = journal
        self.output = output
        self.endpoint = endpoint
        self.log = log
    }

    /// Bytes sent and received when the router closed.
    private var bytes = (sent: 0, received: 0)

    /// The run's counters so far (monitoring).
    public var counters: ClusterCounters {
        ClusterCounters(
            membership: machine.membership, reassigned: machine.reassignedChunks, dropped: machine.droppedMessages,
            bytes: router.map { ($0.bytesSent, $0.bytesReceived) } ?? bytes)
    }

    /// The limits of the job's ROUTER socket (`CoordinatorRouter` makes it). Nothing a
    /// worker legitimately sends is larger than a full chunk's result, and a worker holds at
    /// most `inFlightPerWorker` chunks, so frames and queues are bounded by the job
    /// (`ClusterLimits`, docs/security.md); CURVE is applied by `run` before it binds.
    static func configure(_ router: ZMQSocket, job: ScoringStateMachine.Job) throws {
        var wantLatent = false
        if case .scoring(let scoring) = job.spec.mode { wantLatent = scoring.wantLatent }
        try router.setMaxMessageSize(ClusterLimits.largestScoringWorkerMessage(
            chunkRows: job.chunkRows, dimension: Int(job.spec.architecture.dimension), dtype: job.spec.dtype, wantLatent: wantLatent))
        try router.setSendHighWaterMark(4 * job.inFlightPerWorker + 64)
        try router.setReceiveHighWaterMark(4 * job.inFlightPerWorker + 64)
    }

    private static func seconds(since start: ContinuousClock.Instant) -> Double {
        let c = (ContinuousClock.now - start).components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }

    /// The loop of `run`: messages and ticks in, actions out, until every chunk is done.
    private func serve(_ router: CoordinatorRouter, progress: (ScoringProgress) -> Void, watch: () throws -> Void) throws {
        let now = router.now
        var lastProgress = 0.0
        let rowsBefore = machine.rowsDone
        func report(_ t: Double) {
            lastProgress = t
            let m = machine
            progress(ScoringProgress(
                rowsDone: m.rowsDone, rowCount: m.job.rowCount, rowsThisRun: m.rowsDone - rowsBefore, elapsed: t,
                perWorker: figures.figures(live: m.liveWorkerIDs, activity: m.activity, names: m.workers.mapValues(\.name))))
        }
        while !machine.isFinished {
            if let actions = try router.receive(handle: { identity, message, userID in
                machine.messageReceived(message, from: identity, userID: userID, now: now())
            }) {
                try perform(actions, router: router)
                // Done: the workers leave now, and `watch` must not mistake that for a failure.
                if machine.isFinished { break }
            }
            if let t = router.tickDue() {
                try watch()
                try perform(machine.tick(now: t), router: router)
            }
            let t = now()
            if t - lastProgress >= 0.5 { report(t) }
        }
        report(now())
    }

    /// Runs the job to its end and assembles the outputs. `ready` is called once the socket is
    /// bound, `progress` about twice a second, `watch` about every 20 ms (it may throw to abandon
    /// the run).
    public func run(
        ready: (String) -> Void = { _ in }, progress: (ScoringProgress) -> Void = { _ in }, watch: () throws -> Void = {}
    ) throws -> ScoringSummary {
        let start = ContinuousClock.now
        let journaled = machine.doneCount
        if !machine.isFinished {
            try CoordinatorRouter.serve(bind: endpoint, security: security, log: log, configure: { router in
                try Self.configure(router, job: machine.job)
            }) { router in
                boundEndpoint = router.endpoint
                self.router = router
                defer { self.router = nil; bytes = (router.bytesSent, router.bytesReceived) }
                ready(router.endpoint)
                try serve(router, progress: progress, watch: watch)
            }
        }
        // Every chunk is durable in the journal: assemble the outputs in chunk order.
        for k in 0..<machine.job.chunkCount {
            let part = try journal.part(k)
            let r = part.result
            try output.append(
                firstRow: Int(r.firstRow),
                result: ScoredChunk(statuses: r.statuses, logProbs: r.logProbs, latent: r.latent?.values),
                reasons: part.reasons, line: input.lineNumber(ofRow:))
        }
        try output.finish()
        journal.remove()
        var perWorker: [String: Int] = [:]
        for (id, rows) in machine.acceptedRows { perWorker[names[id] ?? "worker \(id)", default: 0] += rows }
        return ScoringSummary(
            rows: machine.job.rowCount, chunks: machine.job.chunkCount, computedChunks: machine.acceptedChunks,
            computedRows: machine.acceptedRows.values.reduce(0, +),
            journaledChunks: journaled, unscored: output.unscored, rowsPerWorker: perWorker, seconds: Self.seconds(since: start),
            droppedMessages: machine.droppedMessages, invalidMessages: machine.membership.invalidMessageCount,
            verifiedChunks: machine.verifiedChunks, mismatches: machine.mismatches, quarantinedWorkers: machine.quarantined.count)
    }

    private func perform(_ actions: [ScoringStateMachine.Action], router: CoordinatorRouter) throws {
        for action in actions {
            switch action {
            case .send(let identity, let message):
                router.send(identity, message.encoded())
            case .sendParameters(let identity):
                if encodedParameters == nil {
                    encodedParameters = WireMessage.parameters(.init(jobID: machine.job.spec.jobID, version: 0, values: parameters)).encoded()
                }
                router.send(identity, encodedParameters!)
            case .sendChunk(let identity, let k):
                let chunk = try input.read(chunk: k)
                input.release(chunk: k)
                reasons[k] = Dictionary(chunk.malformed.map { ($0.row, $0.reason) }, uniquingKeysWith: { a, _ in a })
                let message = WireMessage.scoreChunk(.init(
                    jobID: machine.job.spec.jobID, chunk: UInt64(k), firstRow: UInt64(chunk.firstRow), rowCount: UInt32(chunk.rows),
                    dimension: UInt32(input.columns), values: ChunkScorer.encode(chunk.values, dtype: machine.job.spec.dtype)))
                router.send(identity, message.encoded())
            case .storeResult(var result, let worker):
                let k = Int(result.chunk)
                if reasons[k] == nil {
                    let chunk = try input.read(chunk: k)
                    input.release(chunk: k)
                    reasons[k] = Dictionary(chunk.malformed.map { ($0.row, $0.reason) }, uniquingKeysWith: { a, _ in a })
                }
                let malformed = reasons.removeValue(forKey: k) ?? [:]
                for row in malformed.keys where row < result.statuses.count { result.statuses[row] = .malformedInput }
                try journal.record(ScorePart(result: result, reasons: malformed))
                if names[worker] == nil { names[worker] = machine.workers[worker]?.name }
            case .finished:
                break
            case .failed(let reason):
                throw ClusterError.jobFailed(reason)
            case .revokeKey(let z85):
                router.revoke(z85)
            case .log(let event):
                if case .workerJoined(let id, let name) = event { names[id] = name }
                log(describe(event))
            }
        }
    }

    private func describe(_ event: ScoringStateMachine.LogEvent) -> String {
        switch event {
        case .workerJoined(let id, let name): return "worker \(id) (\(name)) joined"
        case .workerLost(let id, let name, let n): return "worker \(id) (\(name)) lost; \(n) chunks reassigned"
        case .workerLeft(let id, let name, let n): return "worker \(id) (\(name)) left; \(n) chunks reassigned"
        case .chunkStalled(let chunk, let id): return "chunk \(chunk) stalled at worker \(id); also given to another worker"
        case .verificationMismatch(let chunk, let ids):
            return "chunk \(chunk): workers \(ids.map(String.init).joined(separator: " and ")) computed different results; a third worker decides"
        case .workerQuarantined(let id, let name, let chunk):
            return "worker \(id) (\(name)) quarantined: its result of chunk \(chunk) disagreed with two other workers'"
        case .invalidMessage(let peer, let reason): return CoordinatorRouter.describe(invalidMessageFrom: peer, reason: reason)
        case .ignored(let peer, let reason): return CoordinatorRouter.describe(ignoredMessageFrom: peer, reason: reason)
        case .helloRefused(let peer, let reason, let total):
            return CoordinatorRouter.describe(refusedHelloFrom: peer, reason: reason, total: total)
        }
    }
}
