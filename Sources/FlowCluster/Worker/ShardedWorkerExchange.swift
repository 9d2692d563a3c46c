import FlowData
import FlowWire
import Flows

/// Where a worker sends something: the coordinator, or another worker's peer socket (the bytes
/// already encoded, so that one fold is encoded once for all its receivers).
enum WorkerDelivery {
    case coordinator(WireMessage)
    case peer(UInt32, [UInt8])
}

/// A worker's part of the sharded exchange (`sync=sharded`; docs/protocol.md).
///
/// It holds the training state (the model's parameters are the engine's, Adam's moments are
/// here) at ``version``, and for the step under way:
/// - the partials this worker computed (kept for the step, so that a new attempt after a change
///   of membership sends them again instead of recomputing them);
/// - as an owner of a range of parameter segments, the partials' values for that range
///   (`SegmentOwner`), folded in tree order run by run once the coordinator's `reduce` order
///   names the accepted ones, each run sent to every worker of the roster as soon as it is folded;
/// - the step's whole gradient as the owners' folds arrive; once complete, it is turned into the
///   mean (clipped) gradient exactly as one process does (`AdamOptimizer.prepareMeanGradient`) and
///   `stepReady` goes to the coordinator. The update is applied when the coordinator commits the
///   step by naming the next version (in a `roster` or `stateRequest`): until then nothing has
///   changed, so any attempt can be redone.
///
/// Messages of a later attempt or step than the roster in hand are kept (bounded) until their
/// roster arrives; anything else that does not fit is dropped and counted.
final class ShardedWorkerExchange<Scalar: FlowScalar> {
    private let jobID: UInt64
    private let parameterCount: Int
    private let microBatchSize: Int
    /// B, the rows of a step: a fold carries exactly these, a partial at most these.
    private let batchSize: Int
    /// Values held in `early` (bounded: a few parameter vectors).
    private var earlyValues = 0
    private let clipNorm: Double?
    /// Whether results carry the digest of their partial (`jobSpec.digestResults`).
    private let digests: Bool
    private let schedule: LearningRateSchedule
    private var optimizer: AdamOptimizer<Scalar>
    /// The parameter version the engine's model holds (nil: no state received yet).
    private(set) var version: UInt64?
    private var roster: WireMessage.Roster?
    /// This worker's index in the roster (nil: not in it).
    private var myIndex: Int?
    /// This worker's id.
    var workerID: UInt32 = 0

    /// Partials computed in step `cachedStep`, by node key.
    private var cachedStep: UInt64?
    private var cache: [UInt64: (rows: UInt64, lossSum: Double, gradient: [Scalar], digest: UInt64)] = [:]

    /// Owner: the partials' values for the segments owned, and the coordinator's order.
    private var owner: SegmentOwner<Scalar>
    private var order: WireMessage.ReduceOrder?

    /// The step's mean gradient, filled by the owners' folds (each divided by the step's rows and
    /// measured as it arrives, `shares`).
    private var reduced: [Scalar]
    /// The segments' shares of the step's gradient norm, from the folds in so far.
    private var shares: ParameterSegments.Shares
    /// The segments whose fold is in `reduced`, and how many of the non-empty ones that is.
    private var reducedSegments = [Bool](repeating: false, count: ParameterSegments.count)
    private var reducedCount = 0
    /// Segments with at least one value (all 64 unless P < 64): the folds a step needs.
    private let nonEmptySegments: Int
    private var reducedTotals: (rows: UInt64, lossSum: Double)?
    /// The step whose mean gradient `reduced` holds, ready to apply.
    private var ready: (step: UInt64, epoch: UInt64)?

    /// Peer messages of a later attempt or step, kept until their roster comes.
    private var early: [WireMessage.Segment] = []
    /// Peer messages dropped (not of the attempt, from outside the roster, wrong shape).
    private(set) var dropped = 0

    private var dtype: WireDType { Scalar.self == Float.self ? .float32 : .float64 }

    /// Most peer messages kept ahead of their roster.
    static var earlyLimit: Int { 4096 }

    init(
        jobID: UInt64, parameterCount: Int, microBatchSize: Int, batchSize: Int, settings: WireMessage.JobSpec.LocalOptimizer,
        digests: Bool = false
    ) {
        self.digests = digests
        self.batchSize = batchSize
        self.jobID = jobID
        self.parameterCount = parameterCount
        self.microBatchSize = microBatchSize
        clipNorm = settings.clipNorm
        schedule = LearningRateSchedule(
            kind: settings.schedule == .cosine ? .cosine : .constant, baseRate: settings.learningRate,
            warmupSteps: Int(clamping: settings.warmupSteps), totalSteps: Int(clamping: settings.totalSteps),
            minimumRate: settings.minimumLearningRate)
        optimizer = AdamOptimizer(
            parameterCount: parameterCount, learningRate: settings.learningRate, beta1: settings.beta1, beta2: settings.beta2,
            epsilon: settings.epsilon, weightDecay: settings.weightDecay)
        reduced = [Scalar](repeating: 0, count: parameterCount)
        shares = ParameterSegments.Shares(parameterCount: parameterCount)
        owner = SegmentOwner(parameterCount: parameterCount, microBatchSize: microBatchSize)
        nonEmptySegments = (0..<ParameterSegments.count).filter { !ParameterSegments.range($0, of: parameterCount).isEmpty }.count
    }

    // MARK: State

    /// Takes the coordinator's `state`: parameters into `parameters`, Adam's state here.
    /// Returns false when it does not fit the job.
    func install(_ state: WireMessage.TrainingState, into parameters: inout [Scalar]) -> Bool {
        guard state.jobID == jobID, let p = state.parameters.elements(as: Scalar.self), p.count == parameterCount,
              let (m, v) = state.moments(as: Scalar.self), m.count == parameterCount, v.count == parameterCount
        else { return false }
        parameters = p
        optimizer.firstMoment = m
        optimizer.secondMoment = v
        optimizer.step = Int(clamping: state.optimizerStep)
        version = state.version
        ready = nil
        resetStep()
        return true
    }

    /// Applies the ready step when `next` names the version after the one held (the
    /// coordinator committed it). Returns the version held afterwards.
    @discardableResult
    func commit(upTo next: UInt64, parameters: inout [Scalar]) -> UInt64? {
        guard let held = version, next == held + 1, let ready, ready.step == held else { return version }
        let rate = schedule.rate(atStep: Int(clamping: held))
        reduced.withUnsafeBufferPointer { optimizer.update(parameters: &parameters, gradient: $0.baseAddress!, learningRate: rate) }
        version = next
        self.ready = nil
        return version
    }

    /// The answer to `stateRequest`: the state at `request.version` (committing the ready step
    /// first when it names the next version), or an error when this worker does not hold it.
    func state(for request: WireMessage.StateRequest, parameters: inout [Scalar]) -> WireMessage {
        commit(upTo: request.version, parameters: &parameters)
        guard request.jobID == jobID, version == request.version else {
            return .error(.init(code: .missingParameters, jobID: request.jobID, message: "this worker holds version \(version.map(String.init) ?? "none"), not \(request.version)"))
        }
        return .state(.init(
            jobID: jobID, version: request.version, optimizerStep: UInt64(optimizer.step), parameters: WireVector(parameters)!,
            firstMoment: WireVector(optimizer.firstMoment)!, secondMoment: WireVector(optimizer.secondMoment)!))
    }

    // MARK: Roster and order

    /// A new attempt (or the next step): commits the ready step when the roster names the next
    /// version, forgets what belonged to another attempt, and replays peer messages kept for this one.
    func setRoster(_ new: WireMessage.Roster, parameters: inout [Scalar]) -> [WorkerDelivery] {
        guard new.jobID == jobID else { return [] }
        commit(upTo: new.version, parameters: &parameters)
        if cachedStep != new.version {
            cache.removeAll()
            cachedStep = new.version
        }
        roster = new
        myIndex = new.workerIDs.firstIndex(of: workerID)
        ready = nil
        owner.reset(owning: myIndex.map { new.segments(ownedBy: $0) } ?? 0..<0)
        resetStep()
        let kept = early
        early = []
        earlyValues = 0
        var out: [WorkerDelivery] = []
        for segment in kept { out += receive(segment) }
        return out
    }

    /// The coordinator's order to fold.
    func receive(_ reduce: WireMessage.ReduceOrder) -> [WorkerDelivery] {
        guard reduce.jobID == jobID, let roster, reduce.epoch == roster.epoch, reduce.step == roster.version else {
            dropped += 1
            return []
        }
        order = reduce
        return foldIfComplete()
    }

    private func resetStep() {
        owner.reset(owning: owner.segments)
        order = nil
        for g in reducedSegments.indices { reducedSegments[g] = false }
        reducedCount = 0
        reducedTotals = nil
        shares.reset()
    }

    // MARK: Partials

    /// Whether node `node` of step `step` was computed here already (in an earlier attempt).
    func hasCached(step: UInt64, node: UInt64) -> Bool { cachedStep == step && cache[node] != nil }

    /// A node this worker computed (or had computed, when `gradient` is nil: from the cache):
    /// its segments to their owners, then the result, without the gradient, to the coordinator.
    func partial(
        step: UInt64, node: UInt64, rows: UInt64, lossSum: Double, gradient: [Scalar]?, computeSeconds: Double
    ) -> [WorkerDelivery] {
        if cachedStep != step {
            cache.removeAll()
            cachedStep = step
        }
        if let gradient {
            // The digest of exactly the values the segments carry (verification compares it).
            let digest = digests ? gradient.withUnsafeBufferPointer { XXH64.hash(values: $0) } : 0
            cache[node] = (rows, lossSum, gradient, digest)
        }
        guard let entry = cache[node], let roster, roster.version == step else { return [] }
        // Every other owner's runs first (their transfer overlaps everything after), then this
        // worker's own, kept as slices of the cached partial, no copy.
        var out: [WorkerDelivery] = []
        let owners = min(roster.workerIDs.count, WireMessage.Roster.segmentCount)
        func header(_ run: Range<Int>) -> WireMessage.Segment {
            WireMessage.Segment(
                jobID: jobID, step: step, epoch: roster.epoch, token: roster.token, sender: workerID, isReduced: false, node: node,
                firstSegment: UInt32(run.lowerBound), segmentCount: UInt32(run.count), rowCount: entry.rows,
                lossSum: entry.lossSum, values: WireVector(empty: dtype))
        }
        for index in 0..<owners where index != myIndex {
            for run in ParameterSegments.messageRuns(roster.segments(ownedBy: index), of: parameterCount) {
                let range = ParameterSegments.range(of: run, in: parameterCount)
                let bytes = entry.gradient.withUnsafeBufferPointer { header(run).encoded(values: UnsafeBufferPointer(rebasing: $0[range])) }
                out.append(.peer(roster.workerIDs[index], bytes))
            }
        }
        var own: [WorkerDelivery] = []
        if let myIndex {
            for run in ParameterSegments.messageRuns(roster.segments(ownedBy: myIndex), of: parameterCount) {
                own += acceptPartial(header(run), values: entry.gradient[ParameterSegments.range(of: run, in: parameterCount)])
            }
        }
        out.append(.coordinator(.gradientResult(.init(
            jobID: jobID, step: step, version: step, node: node, rowCount: entry.rows, lossSum: entry.lossSum,
            gradient: WireVector(empty: Scalar.self == Float.self ? .float32 : .float64), computeSeconds: computeSeconds,
            digest: entry.digest))))
        return out + own
    }

    // MARK: Segments

    /// A peer's (or this worker's own) segment message.
    func receive(_ segment: WireMessage.Segment) -> [WorkerDelivery] {
        // What any segment of this job must be, checked before it is kept: the dtype, a length
        // that matches its segments of P, and rows a step can have (a fold: the step's B rows;
        // a partial: a positive multiple of m up to B).
        let rows = segment.rowCount
        let segments = Int(segment.firstSegment)..<Int(segment.firstSegment + segment.segmentCount)
        guard segment.jobID == jobID, segment.values.dtype == dtype,
              segment.values.count == ParameterSegments.range(of: segments, in: parameterCount).count,
              segment.isReduced ? rows == UInt64(batchSize) : rows <= UInt64(batchSize) && rows % UInt64(microBatchSize) == 0
        else {
            dropped += 1
            return []
        }
        guard let roster else {
            keepEarly(segment)
            return []
        }
        if segment.epoch > roster.epoch || (segment.epoch == roster.epoch && segment.step > roster.version) {
            keepEarly(segment)
            return []
        }
        guard segment.epoch == roster.epoch, segment.step == roster.version, segment.token == roster.token,
              let senderIndex = roster.workerIDs.firstIndex(of: segment.sender),
              segment.senderKey.map({ $0 == roster.keys[senderIndex] }) ?? true
        else {
            dropped += 1
            return []
        }
        guard let values = segment.values.elements(as: Scalar.self) else {
            dropped += 1
            return []
        }
        if segment.isReduced {
            return values.withUnsafeBufferPointer { acceptFold(segment, values: $0, from: senderIndex) }
        }
        return acceptPartial(segment, values: values[...])
    }

    /// A run of a partial's values for segments this worker owns (`segment`'s other fields
    /// describe it).
    private func acceptPartial(_ segment: WireMessage.Segment, values: ArraySlice<Scalar>) -> [WorkerDelivery] {
        let run = Int(segment.firstSegment)..<Int(segment.firstSegment + segment.segmentCount)
        guard myIndex != nil, TreeNode(key: segment.node) != nil, owner.accept(
            node: segment.node, sender: segment.sender, rows: segment.rowCount, lossSum: segment.lossSum, run: run, values: values)
        else {
            dropped += 1
            return []
        }
        return foldIfComplete()
    }

    /// A run of an owner's fold (the owner at `senderIndex` of the roster): segments of that
    /// owner's range, each once, with the same totals as the others'.
    private func acceptFold(_ segment: WireMessage.Segment, values: UnsafeBufferPointer<Scalar>, from senderIndex: Int) -> [WorkerDelivery] {
        guard let roster else { return [] }
        let run = Int(segment.firstSegment)..<Int(segment.firstSegment + segment.segmentCount)
        let owned = roster.segments(ownedBy: senderIndex)
        guard run.lowerBound >= owned.lowerBound, run.upperBound <= owned.upperBound,
              values.count == ParameterSegments.range(of: run, in: parameterCount).count, !run.contains(where: { reducedSegments[$0] }),
              agreesWithTotals(rows: segment.rowCount, lossSum: segment.lossSum)
        else {
            dropped += 1
            return []
        }
        // Copied out of the message, divided by the step's rows and measured in one pass per
        // segment — while the other runs are still on their way.
        let start = ParameterSegments.range(of: run, in: parameterCount).lowerBound
        for g in run {
            let offset = ParameterSegments.range(g, of: parameterCount).lowerBound - start
            measureFold(g, from: values.baseAddress.map { $0 + offset }, rows: segment.rowCount)
        }
        return completeIfWhole()
    }

    /// Whether a fold's rows and loss sum are the step's (the first fold sets them).
    private func agreesWithTotals(rows: UInt64, lossSum: Double) -> Bool {
        if let totals = reducedTotals { return totals.rows == rows && totals.lossSum.bitPattern == lossSum.bitPattern }
        reducedTotals = (rows, lossSum)
        return true
    }

    /// Segment `g` of the step's gradient from a fold (`source`: its first value; nil: an empty
    /// segment), divided by the step's rows and measured into `reduced`.
    private func measureFold(_ g: Int, from source: UnsafePointer<Scalar>?, rows: UInt64) {
        reducedSegments[g] = true
        let offset = ParameterSegments.range(g, of: parameterCount).lowerBound
        if let source, !ParameterSegments.range(g, of: parameterCount).isEmpty {
            reducedCount += 1
            reduced.withUnsafeMutableBufferPointer { r in
                shares.measure(g, from: source, into: r.baseAddress! + offset, by: Scalar(Int(rows)))
            }
        }
    }

    private func keepEarly(_ segment: WireMessage.Segment) {
        guard early.count < Self.earlyLimit, earlyValues + segment.values.count <= 4 * parameterCount else {
            dropped += 1
            return
        }
        earlyValues += segment.values.count
        early.append(segment)
    }

    /// Owner: once the order is here, folds in tree order every run that the accepted partials
    /// cover, and sends each to every other worker of the roster as soon as it is folded (this
    /// worker measures its own from where the fold lies).
    private func foldIfComplete() -> [WorkerDelivery] {
        guard let order, let roster, myIndex != nil, !owner.isDone else { return [] }
        var out: [WorkerDelivery] = []
        let peers = roster.workerIDs.filter { $0 != workerID }
        var encoder: WireMessage.Segment.Encoder<Scalar>?
        var agreed = false, rowCount: UInt64 = 0
        owner.foldCovered(nodes: order.nodes, sources: order.sources, begin: { run, lossSum, rows in
            rowCount = UInt64(rows)
            agreed = agreesWithTotals(rows: rowCount, lossSum: lossSum)
            if !agreed { dropped += 1 }
            let header = WireMessage.Segment(
                jobID: jobID, step: order.step, epoch: order.epoch, token: roster.token, sender: workerID, isReduced: true, node: 0,
                firstSegment: UInt32(run.lowerBound), segmentCount: UInt32(run.count), rowCount: rowCount,
                lossSum: lossSum, values: WireVector(empty: dtype))
            encoder = peers.isEmpty ? nil : .init(header, valueCount: ParameterSegments.range(of: run, in: parameterCount).count)
        }, segment: { g, values in
            encoder?.append(values)
            if agreed { measureFold(g, from: values.baseAddress!, rows: rowCount) }
        }, end: { _ in
            if let bytes = encoder?.bytes { out += peers.map { .peer($0, bytes) } }
        })
        return out + completeIfWhole()
    }

    /// Once every owner's fold is in: the mean (clipped) gradient, and `stepReady`.
    private func completeIfWhole() -> [WorkerDelivery] {
        guard let roster, let totals = reducedTotals, reducedCount == nonEmptySegments else { return [] }
        let step = roster.version
        var report = WireMessage.StepReady(jobID: jobID, step: step, epoch: roster.epoch, rowCount: totals.rows, meanLoss: 0, gradientNorm: 0)
        do {
            // What one process's `prepareMeanGradient` does, its pass already made fold by fold.
            let count = parameterCount, clip = clipNorm, norm = shares.norm, bad = shares.firstNonFinite
            let meanLoss = try AdamOptimizer<Scalar>.meanLoss(lossSum: totals.lossSum, rows: Int(totals.rows), step: Int(clamping: step))
            let outcome = try reduced.withUnsafeMutableBufferPointer { (g) throws(FlowError) -> StepOutcome in
                try AdamOptimizer<Scalar>.finishMeanGradient(
                    g.baseAddress!, count: count, meanLoss: meanLoss, norm: norm, firstNonFinite: bad, clipNorm: clip, step: Int(clamping: step))
            }
            report.meanLoss = outcome.meanLoss
            report.gradientNorm = outcome.gradientNorm
            ready = (step, roster.epoch)
        } catch {
            report.problem = WireMessage.truncatedUTF8("\(error)")
            ready = nil
        }
        return [.coordinator(.stepReady(report))]
    }
}
