import FlowWire

/// `--verify-fraction` in a training step (`sync=gradients` or `sharded`): the checked work items — leaves of
/// the step's reduction tree (`TreeNode.key`), whose ids `step·S + shard` the shared
/// `VerificationSampler` picks; the machine asks with the leaf id, and keys its bookkeeping
/// here by the item — are computed by two sources — workers, or the
/// coordinator itself (source 0) — and accepted only when the bits agree. The coordinator's own
/// result is the truth: a worker that disagrees with it is quarantined, and its unverified
/// results of the step are redone.
struct StepVerification: Sendable {
    /// Which leaves are checked (by leaf id `step·S + shard`).
    let sampler: VerificationSampler

    /// Results of checked work items by source (a worker id; 0 = the coordinator), not yet accepted.
    private var candidates: [Int: [UInt32: WireMessage.GradientResult]] = [:]
    /// Checked work item → the workers computing further copies of it (besides its owner).
    private var verifying: [Int: Set<UInt32>] = [:]
    /// Micro-batches the coordinator computes itself.
    private var coordinatorComputing: Set<Int> = []
    /// Accepted but unverified work item → the worker that computed it.
    private var computedBy: [Int: UInt32] = [:]

    /// What a checked work item's sources say, once compared.
    enum Verdict: Equatable {
        /// Fewer than two sources have answered, or the coordinator is already asked.
        case undecided
        /// Accept `result`, the value of worker `source` (0: only the coordinator's has these
        /// bits); `liars` (workers that disagreed with the coordinator) are quarantined.
        case accept(WireMessage.GradientResult, source: UInt32, liars: [UInt32])
        /// Two workers disagree: the coordinator computes it (`workers` for the log line).
        case askCoordinator(workers: [UInt32])
    }

    init(sampler: VerificationSampler) {
        self.sampler = sampler
    }

    /// Whether verification is on at all.
    var isOn: Bool { sampler.fraction > 0 }

    /// Whether the leaf with id `g` (`step·S + shard`) is checked.
    func isChecked(_ g: Int) -> Bool { sampler.contains(g) }

    /// The sources that have answered or are computing `g`: candidates, live verifying workers
    /// (`isLive`), the coordinator (0) and the worker it is pending at (`pending`, if live).
    func sources(of g: Int, pending: UInt32?, isLive: (UInt32) -> Bool) -> Set<UInt32> {
        var sources = Set(candidates[g]?.keys ?? [:].keys)
        sources.formUnion(verifying[g, default: []].filter(isLive))
        if coordinatorComputing.contains(g) { sources.insert(0) }
        if let pending, isLive(pending) { sources.insert(pending) }
        return sources
    }

    /// Worker `id` computes a further copy of `g`.
    mutating func addVerifier(_ id: UInt32, of g: Int) { verifying[g, default: []].insert(id) }

    /// Whether worker `id` computes a further copy of `g`.
    func isVerifying(_ id: UInt32, _ g: Int) -> Bool { verifying[g]?.contains(id) == true }

    /// Worker `id` no longer computes a copy of `g` (it answered, or must be asked again).
    mutating func removeVerifier(_ id: UInt32, of g: Int) { verifying[g]?.remove(id) }

    /// Workers `gone` went: the checked work items some of them were copying, which need a
    /// source again.
    mutating func orphaned(by gone: Set<UInt32>) -> [Int] {
        let orphaned = verifying.filter { !$0.value.isDisjoint(with: gone) }.keys
        for g in orphaned { verifying[g]?.subtract(gone) }
        return Array(orphaned)
    }

    /// Asks the coordinator to compute `g`; false when it already does.
    mutating func askCoordinator(_ g: Int) -> Bool { coordinatorComputing.insert(g).inserted }

    /// The coordinator answered `g`; false when it was not asked (or answered already).
    mutating func coordinatorAnswered(_ g: Int) -> Bool { coordinatorComputing.remove(g) != nil }

    /// The workers (not the coordinator) that gave a result for `g`.
    func answeredWorkers(of g: Int) -> Set<UInt32> { Set(candidates[g]?.keys.filter { $0 != 0 } ?? []) }

    /// Whether `source` already gave a result for `g`.
    func hasCandidate(_ g: Int, from source: UInt32) -> Bool { candidates[g]?[source] != nil }

    /// `source` gave `result` for `g`.
    mutating func addCandidate(_ result: WireMessage.GradientResult, for g: Int, from source: UInt32) {
        candidates[g, default: [:]][source] = result
    }

    /// An unchecked work item `g` accepted from worker `id`: redone if `id` is quarantined.
    mutating func acceptedUnverified(_ g: Int, from id: UInt32) {
        if isOn { computedBy[g] = id }
    }

    /// Compares the sources of `g` once two have answered: the coordinator's result is the truth;
    /// two workers with the same bits decide it; different bits ask the coordinator (once).
    mutating func verdict(on g: Int) -> Verdict {
        guard let found = candidates[g], found.count >= 2 else { return .undecided }
        if let truth = found[0] {
            let workers = found.filter { $0.key != 0 }
            let agreeing = workers.filter { Self.sameBits($0.value, truth) }.keys.sorted()
            return .accept(truth, source: agreeing.first ?? 0, liars: workers.filter { !Self.sameBits($0.value, truth) }.keys.sorted())
        }
        let sorted = found.sorted { $0.key < $1.key }
        if sorted.allSatisfy({ Self.sameBits($0.value, sorted[0].value) }) {
            return .accept(sorted[0].value, source: sorted[0].key, liars: [])
        }
        guard askCoordinator(g) else { return .undecided }
        return .askCoordinator(workers: sorted.map(\.key))
    }

    /// Worker `id` is quarantined: forgets what it computed. Returns the work items whose
    /// accepted result was its (to redo and un-accept) and those that lost a candidate of it.
    mutating func discard(_ id: UInt32) -> (unverified: [Int], lostCandidates: [Int]) {
        let unverified = computedBy.filter { $0.value == id }.keys.sorted()
        for g in unverified { computedBy[g] = nil }
        var lost: [Int] = []
        for (g, sources) in candidates where sources[id] != nil {
            candidates[g]![id] = nil
            lost.append(g)
        }
        return (unverified, lost.sorted())
    }

    /// The step was applied: what was about it goes.
    mutating func reset() {
        candidates.removeAll()
        verifying.removeAll()
        coordinatorComputing.removeAll()
        computedBy.removeAll()
    }

    /// Whether two results are the same bits (loss included; `sync=sharded`: by the partials'
    /// digests, the gradients having gone to the owners).
    static func sameBits(_ a: WireMessage.GradientResult, _ b: WireMessage.GradientResult) -> Bool {
        a.rowCount == b.rowCount && a.lossSum.bitPattern == b.lossSum.bitPattern && a.gradient == b.gradient && a.digest == b.digest
    }
}
