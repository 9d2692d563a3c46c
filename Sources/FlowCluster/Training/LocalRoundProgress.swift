import FlowWire

/// The units of the current round (`sync=parameters`): each worker's units not yet returned,
/// in the order they were sent (a unit is a sorted list of global micro-batches); the returned
/// units' results by first micro-batch; and how many micro-batches of the round are done.
/// Results of a worker arrive in the order its units were sent.
struct LocalRoundProgress: Sendable {
    private var outstanding: [UInt32: [[Int]]] = [:]
    private var returned: [Int: WireMessage.LocalResult] = [:]
    /// Micro-batches of the round whose unit has returned.
    private(set) var microBatchesDone = 0

    /// Unit `microBatches` was sent to worker `id`.
    mutating func sent(_ microBatches: [Int], to id: UInt32) { outstanding[id, default: []].append(microBatches) }

    /// The oldest unit worker `id` has not returned.
    func oldestUnit(of id: UInt32) -> [Int]? { outstanding[id]?.first }

    /// Worker `id` returned its oldest unit with `result`.
    mutating func returnOldest(of id: UInt32, _ result: WireMessage.LocalResult) {
        let unit = outstanding[id]!.removeFirst()
        returned[unit[0]] = result
        microBatchesDone += unit.count
    }

    /// Takes back worker `id`'s unit that starts with micro-batch `g` (it must be computed again).
    mutating func takeBack(unitStarting g: Int, from id: UInt32) -> [Int]? {
        guard let index = outstanding[id]?.firstIndex(where: { $0.first == g }) else { return nil }
        return outstanding[id]!.remove(at: index)
    }

    /// Worker `id` went: its units are the pending micro-batches the machine reassigns.
    mutating func forget(_ id: UInt32) { outstanding[id] = nil }

    /// The returned units' results, ordered by their first micro-batch.
    var results: [WireMessage.LocalResult] { returned.keys.sorted().map { returned[$0]! } }

    /// The round was averaged: what was about it goes.
    mutating func reset() {
        outstanding.removeAll(keepingCapacity: true)
        returned.removeAll(keepingCapacity: true)
        microBatchesDone = 0
    }
}
