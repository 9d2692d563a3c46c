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
/// - as an owner of a range of parameter segments, the partials' values for that range, by node
///   and sender, folded in tree order once the coordinator's `reduce` order names the accepted
///   ones, then sent to every worker of the roster;
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

    /// Owner: the parameter range owned, the partials' values for it by (node, sender), the order.
    private var ownedRange: Range<Int> = 0..<0
    private var ownedSegments: Range<Int> = 0..<0
    private var inbox: [PartialKey: (rows: UInt64, lossSum: Double, values: ArraySlice<Scalar>)] = [:]
    private var order: WireMessage.ReduceOrder?
    private var folded = false
    private var ownerSum: GradientSum<Scalar>?

    /// The step's mean gradient, filled by the owners' folds (each divided by the step's rows and
    /// measured as it arrives, `shares`).
    private var reduced: [Scalar]
    /// The segments' shares of the step's gradient norm, from the folds in so far.
    private var shares: ParameterSegments.Shares
    private var reducedFrom: Set<Int> = []
    private var reducedTotals: (rows: UInt64, lossSum: Double)?
    /// The step whose mean gradient `reduced` holds, ready to apply.
    private var ready: (step: UInt64, epoch: UInt64)?

    /// Peer messages of a later attempt or step, kept until their roster comes.
    private var early: [WireMessage.Segment] = []
    /// Peer messages dropped (not of the attempt, from outside the roster, wrong shape).
    private(set) var dropped = 0

    private var dtype: WireDType { Scalar.self == Float.self ? .float32 : .float64 }

    private struct PartialKey: Hashable {
        var node: UInt64
        var sender: UInt32
    }

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
        resetStep()
        if let myIndex {
            ownedSegments = new.segments(ownedBy: myIndex)
            ownedRange = Self.parameterRange(ownedSegments, of: parameterCount)
        } else {
            ownedSegments = 0..<0
            ownedRange = 0..<0
        }
        if ownerSum == nil || ownedRange.count != ownerSumCount {
            ownerSum = ownedRange.isEmpty ? nil : GradientSum(parameterCount: ownedRange.count)
            ownerSumCount = ownedRange.count
        }
        let kept = early
        early = []
        earlyValues = 0
        var out: [WorkerDelivery] = []
        for segment in kept { out += receive(segment) }
        return out
    }
    private var ownerSumCount = 0

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
        inbox.removeAll()
        order = nil
        folded = false
        reducedFrom.removeAll()
        reducedTotals = nil
        shares.reset()
    }

    /// Parameters `[first of segments.lowerBound, end of segments.upperBound − 1)`.
    static func parameterRange(_ segments: Range<Int>, of count: Int) -> Range<Int> {
        guard let first = segments.first, let last = segments.last else { return 0..<0 }
        return ParameterSegments.range(first, of: count).lowerBound..<ParameterSegments.range(last, of: count).upperBound
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
        var out: [WorkerDelivery] = []
        let owners = min(roster.workerIDs.count, WireMessage.Roster.segmentCount)
        for index in 0..<owners {
            let segments = roster.segments(ownedBy: index)
            let range = Self.parameterRange(segments, of: parameterCount)
            let header = WireMessage.Segment(
                jobID: jobID, step: step, epoch: roster.epoch, token: roster.token, sender: workerID, isReduced: false, node: node,
                firstSegment: UInt32(segments.lowerBound), segmentCount: UInt32(segments.count), rowCount: entry.rows,
                lossSum: entry.lossSum, values: WireVector(empty: dtype))
            if index == myIndex {
                // Its own range: kept as a slice of the cached partial, no copy.
                out += acceptPartial(header, values: entry.gradient[range])
            } else {
                let bytes = entry.gradient.withUnsafeBufferPointer { header.encoded(values: UnsafeBufferPointer(rebasing: $0[range])) }
                out.append(.peer(roster.workerIDs[index], bytes))
            }
        }
        out.append(.coordinator(.gradientResult(.init(
            jobID: jobID, step: step, version: step, node: node, rowCount: entry.rows, lossSum: entry.lossSum,
            gradient: WireVector(empty: Scalar.self == Float.self ? .float32 : .float64), computeSeconds: computeSeconds,
            digest: entry.digest))))
        return out
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
              segment.values.count == Self.parameterRange(segments, of: parameterCount).count,
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

    /// A partial's values for the range this worker owns (`segment`'s other fields describe it).
    private func acceptPartial(_ segment: WireMessage.Segment, values: ArraySlice<Scalar>) -> [WorkerDelivery] {
        let segments = Int(segment.firstSegment)..<Int(segment.firstSegment + segment.segmentCount)
        guard myIndex != nil, segments == ownedSegments, values.count == ownedRange.count, !folded, TreeNode(key: segment.node) != nil else {
            dropped += 1
            return []
        }
        inbox[PartialKey(node: segment.node, sender: segment.sender)] = (segment.rowCount, segment.lossSum, values)
        return foldIfComplete()
    }

    /// An owner's fold (the owner at `senderIndex` of the roster): it must be that owner's whole
    /// range, once, with the same totals as the others'.
    private func acceptFold(_ segment: WireMessage.Segment, values: UnsafeBufferPointer<Scalar>, from senderIndex: Int) -> [WorkerDelivery] {
        guard let roster else { return [] }
        let segments = Int(segment.firstSegment)..<Int(segment.firstSegment + segment.segmentCount)
        let range = Self.parameterRange(segments, of: parameterCount)
        guard segments == roster.segments(ownedBy: senderIndex), values.count == range.count, !reducedFrom.contains(senderIndex) else {
            dropped += 1
            return []
        }
        if let totals = reducedTotals, totals.rows != segment.rowCount || totals.lossSum.bitPattern != segment.lossSum.bitPattern {
            dropped += 1
            return []
        }
        reducedTotals = (segment.rowCount, segment.lossSum)
        // Copied out of the message, divided by the step's rows and measured in one pass per
        // segment — while the other owners' folds are still on their way.
        let divisor = Scalar(Int(segment.rowCount))
        if let source = values.baseAddress {  // nil: a range of empty segments
            reduced.withUnsafeMutableBufferPointer { r in
                for g in segments {
                    let offset = ParameterSegments.range(g, of: parameterCount).lowerBound
                    shares.measure(g, from: source + (offset - range.lowerBound), into: r.baseAddress! + offset, by: divisor)
                }
            }
        }
        reducedFrom.insert(senderIndex)
        return completeIfWhole()
    }

    private func keepEarly(_ segment: WireMessage.Segment) {
        guard early.count < Self.earlyLimit, earlyValues + segment.values.count <= 4 * parameterCount else {
            dropped += 1
            return
        }
        earlyValues += segment.values.count
        early.append(segment)
    }

    /// Owner: once the order is here and every accepted partial with it, folds them in tree
    /// order and sends the result to every worker of the roster (this one included).
    private func foldIfComplete() -> [WorkerDelivery] {
        guard !folded, let order, let roster, myIndex != nil else { return [] }
        var parts: [(node: TreeNode, entry: (rows: UInt64, lossSum: Double, values: ArraySlice<Scalar>))] = []
        for (node, source) in zip(order.nodes, order.sources) {
            guard let entry = inbox[PartialKey(node: node, sender: source)], let tree = TreeNode(key: node) else { return [] }
            parts.append((tree, entry))
        }
        folded = true
        guard var sum = ownerSum else { return [] }
        ownerSum = nil  // one owner of the buffers while they are written (no copy on write)
        defer { ownerSum = sum }
        // The partials are read where they lie (the decoded messages, this worker's cache).
        let nodes = parts.map {
            GradientSum<Scalar>.BorrowedNode(
                firstShard: $0.node.firstShard, values: $0.entry.values, lossSum: $0.entry.lossSum,
                rows: Int($0.entry.rows), microBatches: Int($0.entry.rows) / microBatchSize)
        }
        var out: [WorkerDelivery] = []
        let peers = roster.workerIDs.filter { $0 != workerID }
        let me = myIndex!
        sum.fold(borrowing: nodes) { folded, lossSum, rows in
            let header = WireMessage.Segment(
                jobID: jobID, step: order.step, epoch: order.epoch, token: roster.token, sender: workerID, isReduced: true, node: 0,
                firstSegment: UInt32(ownedSegments.lowerBound), segmentCount: UInt32(ownedSegments.count), rowCount: UInt64(rows),
                lossSum: lossSum, values: WireVector(empty: dtype))
            if !peers.isEmpty {
                let bytes = header.encoded(values: folded)
                out = peers.map { .peer($0, bytes) }
            }
            out += acceptFold(header, values: folded, from: me)
        }
        inbox.removeAll()
        return out
    }

    /// Once every owner's fold is in: the mean (clipped) gradient, and `stepReady`.
    private func completeIfWhole() -> [WorkerDelivery] {
        guard let roster, let totals = reducedTotals,
              reducedFrom.count == min(roster.workerIDs.count, WireMessage.Roster.segmentCount)
        else { return [] }
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
