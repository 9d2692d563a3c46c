/// What the coordinator does about a worker that is alive but slow (`sync=gradients`): backups
/// of its outstanding work items to idle workers, and demotion after several beaten steps.
///
/// - Backups: once some live worker has nothing pending in the step and the step has run longer
///   than `max(minimumBackupDelay, 2 × share)` — `share` being the shortest time an idle worker
///   took for its part of this step, or, when no idle worker had a part, the previous step's
///   duration (none: no backups) — every outstanding work item not yet backed up is also sent
///   to an idle worker (round robin, lowest ids first). Ownership does not move and the original
///   stays pending: the first of the two results counts (both are the same bits).
/// - Demotion: an owner beaten by backups `slowStepsBeforeDemotion` steps in a row owns no
///   shards for a number of steps that doubles each time (within `demotionSteps`), then gets a
///   share again: a worker that was only briefly slow comes back.
struct StragglerPolicy: Sendable {
    /// The least time (s) a step runs before a slow worker's work items are backed up.
    let minimumBackupDelay: Double
    let slowStepsBeforeDemotion: Int
    let demotionSteps: ClosedRange<Int>

    /// Backup copies sent since the coordinator started.
    private(set) var backupsSent = 0
    /// Demoted workers and the step from which they may own shards again.
    private(set) var demotedUntil: [UInt32: Int] = [:]

    // Of the current step (cleared by `reset`):
    /// When the step was handed out.
    private var stepStartedAt = 0.0
    /// When each worker's last result of the step was accepted.
    private var lastResultAt: [UInt32: Double] = [:]
    /// Micro-batches already sent to a backup worker.
    private var backedUp: Set<Int> = []
    /// Workers given work items as owners (not as backups).
    private var stepOwners: Set<UInt32> = []
    /// Owners some of whose work items were answered first by another worker.
    private var beatenOwners: Set<UInt32> = []

    // Across steps:
    /// How long the previous step took, from hand-out to its last result.
    private var previousStepDuration: Double?
    /// Consecutive steps in which each worker was beaten.
    private var slowStreak: [UInt32: Int] = [:]
    private var slowSteps: [UInt32: [Int]] = [:]
    /// When set (`sync=sharded`), a worker is demoted after `slowStepsBeforeDemotion` beaten
    /// steps within this many steps rather than in a row: there a slow owner holds up every
    /// reduce, so the steps between its stalls run at its pace and are never "beaten".
    var slowWindow: Int?
    /// How long each worker's next demotion lasts.
    private var nextDemotion: [UInt32: Int] = [:]

    init(minimumBackupDelay: Double, slowStepsBeforeDemotion: Int, demotionSteps: ClosedRange<Int>) {
        self.minimumBackupDelay = minimumBackupDelay
        self.slowStepsBeforeDemotion = slowStepsBeforeDemotion
        self.demotionSteps = demotionSteps
    }

    /// Whether worker `id` is demoted (owns no shards while others can take them).
    func isDemoted(_ id: UInt32) -> Bool { demotedUntil[id] != nil }

    /// Step `step` is handed out at `now`: demotions that end by it end.
    mutating func stepStarted(_ step: Int, now: Double) {
        stepStartedAt = now
        for (id, until) in demotedUntil where until <= step { demotedUntil[id] = nil }
    }

    /// Worker `id` was given work items of the step as their shard's owner.
    mutating func ownerGiven(_ id: UInt32) { stepOwners.insert(id) }

    /// A result of worker `id` was accepted at `now` for a work item owned by `owner`.
    mutating func resultAccepted(from id: UInt32, owner: UInt32?, now: Double) {
        lastResultAt[id] = now
        if let owner, owner != id { beatenOwners.insert(owner) }
    }

    /// The backups due at `now`, by idle worker: `pending` maps the step's outstanding
    /// work items to their workers; `live` are the live workers' ids, sorted.
    /// `sync=sharded`: worker `id` held up the step's reduce (its fold or report came long after
    /// everyone else's): it counts as beaten in this step.
    mutating func heldUpReduce(_ id: UInt32) { beatenOwners.insert(id) }

    mutating func backups(pending: [Int: UInt32], live: [UInt32], now: Double) -> [(to: UInt32, microBatches: [Int])] {
        let busy = Set(pending.values)
        let idle = live.filter { !busy.contains($0) && !isDemoted($0) }
        guard !idle.isEmpty else { return [] }
        let shares = idle.compactMap { lastResultAt[$0] }.map { $0 - stepStartedAt }
        guard let share = shares.min() ?? previousStepDuration,
              now - stepStartedAt > max(minimumBackupDelay, 2 * share)
        else { return [] }
        let outstanding = pending.keys.sorted().filter { !backedUp.contains($0) }
        guard !outstanding.isEmpty else { return [] }
        var byWorker: [UInt32: [Int]] = [:]
        for (i, g) in outstanding.enumerated() {
            byWorker[idle[i % idle.count], default: []].append(g)
            backedUp.insert(g)
        }
        backupsSent += outstanding.count
        return byWorker.keys.sorted().map { ($0, byWorker[$0]!) }
    }

    /// Step `step` is complete at `now`: counts, per owner of its work still live, the steps in a
    /// row it was beaten, and demotes one that reaches `slowStepsBeforeDemotion` (unless no other
    /// worker could take its shards). Returns the demotions: who, after how many slow steps,
    /// until which step.
    mutating func stepCompleted(_ step: Int, live: [UInt32], now: Double) -> [(id: UInt32, slowSteps: Int, until: Int)] {
        previousStepDuration = now - stepStartedAt
        var demotions: [(id: UInt32, slowSteps: Int, until: Int)] = []
        for id in stepOwners.sorted() where live.contains(id) {
            let streak: Int
            if let window = slowWindow {
                // Beaten steps within the last `window` steps.
                var steps = (slowSteps[id] ?? []).filter { $0 > step - window }
                if beatenOwners.contains(id) { steps.append(step) }
                slowSteps[id] = steps
                guard beatenOwners.contains(id) else { continue }
                streak = steps.count
            } else {
                guard beatenOwners.contains(id) else {
                    slowStreak[id] = 0
                    continue
                }
                streak = slowStreak[id, default: 0] + 1
            }
            slowStreak[id] = streak
            let others = live.filter { $0 != id && !isDemoted($0) }
            guard streak >= slowStepsBeforeDemotion, !others.isEmpty else { continue }
            let length = nextDemotion[id] ?? demotionSteps.lowerBound
            nextDemotion[id] = min(length * 2, demotionSteps.upperBound)
            demotedUntil[id] = step + 1 + length
            slowStreak[id] = 0
            slowSteps[id] = nil
            demotions.append((id, streak, step + 1 + length))
        }
        return demotions
    }

    /// Worker `id` went: nothing of it is remembered.
    mutating func forget(_ id: UInt32) {
        slowStreak[id] = nil
        slowSteps[id] = nil
        demotedUntil[id] = nil
        nextDemotion[id] = nil
    }

    /// The step was applied: what was about it goes.
    mutating func reset() {
        lastResultAt.removeAll(keepingCapacity: true)
        backedUp.removeAll(keepingCapacity: true)
        stepOwners.removeAll(keepingCapacity: true)
        beatenOwners.removeAll(keepingCapacity: true)
    }
}
