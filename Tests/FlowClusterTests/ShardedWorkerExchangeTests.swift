import FlowData
import FlowRandom
import FlowWire
import Flows
import Foundation
import Testing
@testable import FlowCluster

/// The workers' side of the sharded exchange without sockets: three `ShardedWorkerExchange`s
/// (one per worker of a roster) pass their messages to each other through the wire encoding, in
/// shuffled orders and cut into runs of segments in several ways. Whatever the order and the
/// cut, every worker must end the step with the parameters one process computes, bit for bit.
struct ShardedWorkerExchangeTests {
    static let jobID: UInt64 = 42
    /// Segments of 3,000 or 3,001 values: `ParameterSegments.messageRuns` puts ten in a message.
    static let parameterCount = 64 * 3000 + 17
    static let microBatchSize = 4
    /// Eight shards of one micro-batch each.
    static let batchSize = 32
    /// The roster's workers: each owns a third of the segments and computed one node.
    static let ids: [UInt32] = [1, 2, 3]
    static let nodes = [TreeNode(level: 2, index: 0), TreeNode(level: 1, index: 2), TreeNode(level: 1, index: 3)]

    /// How the test cuts the partials it sends (the exchange's own cut, or another one a
    /// receiver must take as well).
    enum Cut: CaseIterable {
        case asSent, wholeRange, singleSegments
    }

    struct Step {
        var gradients: [[Float]]
        var lossSums: [Double]
        var rows: [UInt64]
        var parameters: [Float]
    }

    static func step(seed: UInt64) -> Step {
        var generator = SeededGenerator(seed: seed)
        let gradients = nodes.map { _ in (0..<parameterCount).map { _ in Float.random(in: -1...1, using: &generator) } }
        let parameters = (0..<parameterCount).map { _ in Float.random(in: -0.1...0.1, using: &generator) }
        let rows = nodes.map { UInt64($0.shards.count * microBatchSize) }
        return Step(gradients: gradients, lossSums: [3.25, 1.5, 2.125].map { $0 + Double(seed) }, rows: rows, parameters: parameters)
    }

    /// One process's update of the same step.
    static func reference(_ step: Step, clipNorm: Double?) throws -> (parameters: [Float], outcome: StepOutcome) {
        var sum = GradientSum<Float>(parameterCount: parameterCount)
        for (i, node) in nodes.enumerated() {
            step.gradients[i].withUnsafeBufferPointer {
                sum.add(nodeAt: node.firstShard, gradient: $0.baseAddress!, lossSum: step.lossSums[i], rows: Int(step.rows[i]),
                        microBatches: Int(step.rows[i]) / microBatchSize)
            }
        }
        var optimizer = AdamOptimizer<Float>(parameterCount: parameterCount)
        var parameters = step.parameters
        let outcome = try optimizer.apply(&sum, to: &parameters, clipNorm: clipNorm, step: 0, learningRate: 1e-3)
        return (parameters, outcome)
    }

    static func roster(version: UInt64, epoch: UInt64) -> WireMessage.Roster {
        .init(jobID: jobID, epoch: epoch, version: version, token: 99, workerIDs: ids,
              endpoints: ids.map { "ipc:///tmp/unused-\($0)" }, keys: ids.map { _ in "" })
    }

    /// A partial's values for `run`, as worker `index` would send them.
    static func message(_ step: Step, from index: Int, run: Range<Int>) -> WireMessage.Segment {
        let range = ParameterSegments.range(of: run, in: parameterCount)
        return .init(
            jobID: jobID, step: 0, epoch: 1, token: 99, sender: ids[index], isReduced: false, node: nodes[index].key,
            firstSegment: UInt32(run.lowerBound), segmentCount: UInt32(run.count), rowCount: step.rows[index],
            lossSum: step.lossSums[index], values: .float32(Array(step.gradients[index][range])))
    }

    /// Runs one step through three exchanges; returns each worker's parameters afterwards and the
    /// `stepReady` reports.
    static func run(
        _ step: Step, clipNorm: Double?, cut: Cut, seed: UInt64
    ) throws -> (parameters: [[Float]], reports: [WireMessage.StepReady], dropped: Int) {
        var generator = SeededGenerator(seed: seed)
        let settings = WireMessage.JobSpec.LocalOptimizer(localSteps: 1, clipNorm: clipNorm)
        var parameters = ids.map { _ in step.parameters }
        let exchanges = ids.map { id in
            let exchange = ShardedWorkerExchange<Float>(
                jobID: jobID, parameterCount: parameterCount, microBatchSize: microBatchSize, batchSize: batchSize, settings: settings)
            exchange.workerID = id
            return exchange
        }
        let zeros = WireVector([Float](repeating: 0, count: parameterCount))!
        for i in ids.indices {
            #expect(exchanges[i].install(
                .init(jobID: jobID, version: 0, optimizerStep: 0, parameters: WireVector(step.parameters)!, firstMoment: zeros, secondMoment: zeros),
                into: &parameters[i]))
        }
        var pending: [(to: Int, message: WireMessage)] = []
        var reports: [WireMessage.StepReady] = []
        func route(_ deliveries: [WorkerDelivery]) throws {
            for delivery in deliveries {
                switch delivery {
                case .peer(let id, let bytes):
                    // Through the wire, as a peer socket receives it; at a random place in the queue.
                    let message = try WireMessage.decode(bytes)
                    pending.insert((ids.firstIndex(of: id)!, message), at: Int.random(in: 0...pending.count, using: &generator))
                case .coordinator(.stepReady(let report)):
                    reports.append(report)
                case .coordinator:
                    break
                }
            }
        }
        for i in ids.indices { try route(exchanges[i].setRoster(roster(version: 0, epoch: 1), parameters: &parameters[i])) }
        for i in ids.indices {
            let out = exchanges[i].partial(
                step: 0, node: nodes[i].key, rows: step.rows[i], lossSum: step.lossSums[i], gradient: step.gradients[i], computeSeconds: 0)
            // Another cut of the same partial replaces what the exchange sent its peers.
            let kept = cut == .asSent ? out : out.filter { if case .peer = $0 { return false } else { return true } }
            try route(kept)
            if cut != .asSent {
                for owner in ids.indices where owner != i {
                    let owned = roster(version: 0, epoch: 1).segments(ownedBy: owner)
                    let runs = cut == .wholeRange ? [owned] : owned.map { $0..<($0 + 1) }
                    for run in runs {
                        pending.insert((owner, .segment(message(step, from: i, run: run))), at: Int.random(in: 0...pending.count, using: &generator))
                    }
                }
            }
        }
        // The coordinator's order, at a random moment for each worker.
        let order = WireMessage.ReduceOrder(jobID: jobID, step: 0, epoch: 1, nodes: nodes.map(\.key), sources: ids)
        for i in ids.indices { pending.insert((i, .reduce(order)), at: Int.random(in: 0...pending.count, using: &generator)) }
        while !pending.isEmpty {
            let (to, message) = pending.removeFirst()
            switch message {
            case .segment(let segment): try route(exchanges[to].receive(segment))
            case .reduce(let order): try route(exchanges[to].receive(order))
            default: Issue.record("unexpected \(message)")
            }
        }
        // The commit: the next roster names the next version.
        for i in ids.indices { _ = exchanges[i].setRoster(roster(version: 1, epoch: 2), parameters: &parameters[i]) }
        return (parameters, reports, exchanges.reduce(0) { $0 + $1.dropped })
    }

    @Test("every worker ends the step with one process's parameters, whatever the order and cut of the messages",
          arguments: Cut.allCases, [nil, 0.5] as [Double?])
    func sameBitsAsOneProcess(cut: Cut, clipNorm: Double?) throws {
        let step = Self.step(seed: 7)
        let (expected, outcome) = try Self.reference(step, clipNorm: clipNorm)
        for seed: UInt64 in 1...4 {
            let (parameters, reports, dropped) = try Self.run(step, clipNorm: clipNorm, cut: cut, seed: seed)
            #expect(dropped == 0)
            #expect(reports.count == 3)
            #expect(reports.allSatisfy { $0.gradientNorm.bitPattern == outcome.gradientNorm.bitPattern })
            #expect(reports.allSatisfy { $0.meanLoss.bitPattern == outcome.meanLoss.bitPattern })
            #expect(reports.allSatisfy { $0.problem.isEmpty && $0.rowCount == UInt64(Self.batchSize) })
            for p in parameters {
                let differing = zip(p, expected).filter { $0.bitPattern != $1.bitPattern }.count
                #expect(differing == 0, "cut \(cut), order \(seed): \(differing) parameters differ from one process's")
            }
        }
    }

    @Test("the exchange sends a partial in runs of whole segments of at most valuesPerMessage values")
    func runsOfSegments() {
        let runs = ParameterSegments.messageRuns(0..<22, of: Self.parameterCount)
        #expect(runs == [0..<10, 10..<20, 20..<22])
        #expect(ParameterSegments.messageRuns(5..<5, of: Self.parameterCount).isEmpty)
        // Segments larger than a message go one per message; tiny ones all in one.
        #expect(ParameterSegments.messageRuns(0..<3, of: 64 * 40_000) == [0..<1, 1..<2, 2..<3])
        #expect(ParameterSegments.messageRuns(0..<64, of: 6400) == [0..<64])
        for run in runs {
            #expect(ParameterSegments.range(of: run, in: Self.parameterCount).count <= ParameterSegments.valuesPerMessage)
        }
    }

    @Test("an owner keeps each segment of a partial once, within its segments, with one set of totals")
    func ownerRefusals() {
        var owner = SegmentOwner<Float>(parameterCount: Self.parameterCount, microBatchSize: Self.microBatchSize)
        owner.reset(owning: 10..<30)
        func values(_ run: Range<Int>) -> ArraySlice<Float> {
            ArraySlice([Float](repeating: 1, count: ParameterSegments.range(of: run, in: Self.parameterCount).count))
        }
        let node = Self.nodes[0].key
        func take(_ sender: UInt32, rows: UInt64 = 16, lossSum: Double = 1, _ run: Range<Int>, count: Range<Int>? = nil) -> Bool {
            owner.accept(node: node, sender: sender, rows: rows, lossSum: lossSum, run: run, values: values(count ?? run))
        }
        #expect(take(1, 10..<12))
        // The same segment again, a run outside the owned ones, the wrong length, other totals.
        #expect(!take(1, 11..<13))
        #expect(!take(1, 29..<31))
        #expect(!take(1, 12..<14, count: 12..<13))
        #expect(!take(1, rows: 8, 12..<14))
        #expect(!take(1, lossSum: 2, 12..<14))
        // Another sender of the same node is another partial.
        #expect(take(2, lossSum: 2, 10..<30))
        // Folding what sender 1 covers (runs 10..<20 need 12..<20 still): nothing yet.
        var folded: [Range<Int>] = []
        owner.foldCovered(nodes: [node], sources: [1], begin: { _, _, _ in }, segment: { _, _ in }, end: { folded.append($0) })
        #expect(folded.isEmpty)
        #expect(take(1, 12..<30))
        owner.foldCovered(nodes: [node], sources: [1], begin: { _, _, _ in }, segment: { _, _ in }, end: { folded.append($0) })
        #expect(folded == [10..<20, 20..<30])
        #expect(owner.isDone)
        // A folded segment is not taken again.
        #expect(!take(3, 10..<11))
    }
}
