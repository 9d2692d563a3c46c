import FlowData
import FlowWire
import Flows

extension Engine {
    /// `sync=parameters`: one round of local SGD. Starting from the parameters of `version`
    /// and a fresh Adam (zero moments, the job's local settings), takes one local step per plan
    /// step among `microBatches` — in step order, each step's micro-batches summed in
    /// tree order (by shard, then slot) and divided by their rows, as single-process training does — and sends
    /// one `localResult` with the parameters after the last step.
    ///
    /// The result is a function of the starting parameters and the micro-batches alone (never of
    /// this worker's history or thread count), so a unit recomputed elsewhere after a failure
    /// gives the same bits. Errors name the unit by its first micro-batch.
    func computeRound(
        round: UInt64, version: UInt64, microBatches: [UInt64], settings: WireMessage.JobSpec.LocalOptimizer,
        send: (WireMessage) -> Void
    ) {
        let started = MonotonicClock.seconds()
        let unit = microBatches.sorted()
        let key = unit.first ?? 0
        func failure(_ code: WireErrorCode, _ message: String) -> WireMessage {
            .error(.init(code: code, jobID: spec.jobID, step: round, item: key, message: message))
        }
        guard let model else {
            send(failure(.missingParameters, "no parameters of version \(version)"))
            return
        }
        var local = model
        var adam = AdamOptimizer<Scalar>(
            parameterCount: local.parameters.count, learningRate: settings.learningRate, beta1: settings.beta1,
            beta2: settings.beta2, epsilon: settings.epsilon, weightDecay: settings.weightDecay)
        let schedule = LearningRateSchedule(
            kind: settings.schedule == .cosine ? .cosine : .constant, baseRate: settings.learningRate,
            warmupSteps: Int(clamping: settings.warmupSteps), totalSteps: Int(clamping: settings.totalSteps),
            minimumRate: settings.minimumLearningRate)
        let perStep = plan.microBatchesPerStep
        var rowCount = 0
        var lossSum = 0.0
        var index = 0
        while index < unit.count {
            let step = Int(clamping: unit[index]) / perStep
            var end = index
            while end < unit.count, Int(clamping: unit[end]) / perStep == step { end += 1 }
            // This step's micro-batches of the unit, in tree order (by shard, then slot).
            let refs = unit[index..<end].map { plan.microBatch(globalIndex: Int(clamping: $0)) }
                .sorted { ($0.shard, $0.globalIndex) < ($1.shard, $1.globalIndex) }
            var batches: [GradientLanes<Scalar>.MicroBatch] = []
            for ref in refs {
                guard let batch = microBatch(ref) else {
                    send(failure(.missingRows, "rows of shard \(ref.shard) were not received"))
                    return
                }
                batches.append(batch)
            }
            if roundSum == nil { roundSum = GradientSum(parameterCount: configuration.parameterCount) }
            lanes.reduce(model: local, batches, shards: refs.map(\.shard), into: &roundSum!)
            lossSum += roundSum!.lossSum
            rowCount += roundSum!.rows
            do {
                _ = try adam.apply(
                    &roundSum!, to: &local.parameters, clipNorm: settings.clipNorm, step: step, learningRate: schedule.rate(atStep: step))
            } catch {
                send(failure(.nonFinite, "round \(round), local step \(step): \(error)"))
                return
            }
            index = end
        }
        let bad = local.parameters.withUnsafeBufferPointer { FlatVector.firstNonFinite($0.baseAddress!, count: $0.count) }
        guard bad == nil, lossSum.isFinite, rowCount > 0 else {
            send(failure(.nonFinite, "round \(round): the local parameters or loss are not finite"))
            return
        }
        send(WireMessage.localResult(.init(
            jobID: spec.jobID, round: round, baseVersion: version, rowCount: UInt64(rowCount), lossSum: lossSum,
            parameters: WireVector(local.parameters)!, computeSeconds: max(0, MonotonicClock.seconds() - started))))
    }
}
