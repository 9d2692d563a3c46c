import FlowWire
import Flows
import Foundation
import Testing
@testable import FlowCluster

/// The per-chunk computation shared by single-process and cluster scoring.
struct ChunkScorerTests {
    static func model() throws -> RealNVP<Float> {
        var configuration = FlowConfiguration(dimension: 3, couplings: 2, hidden: 8, depth: 2)
        configuration.permutations = Array(repeating: [2, 1, 0], count: 2)
        var flow = try RealNVP<Float>(configuration: configuration, seed: 3)
        // Non-zero last layers, so that the flow is not the identity.
        for i in flow.parameters.indices { flow.parameters[i] = Float(sin(Double(i) * 0.7)) * 0.3 }
        return flow
    }

    @Test func statusesSayWhyARowHasNoLogProbAndItsValueIsNaN() throws {
        let scorer = ChunkScorer(model: try Self.model())
        let values: [Double] = [0.1, 0.2, 0.3, .nan, 0, 0, 1, .infinity, 2, 1e30, 1e30, 1e30, -0.5, 0.5, 0.25]
        let scored = scorer.score(scorer.encode(values), rows: 5, firstRow: 0, wantLatent: true)
        #expect(scored.statuses == [.ok, .nonFiniteInput, .nonFiniteInput, .nonFiniteResult, .ok])
        for (r, status) in scored.statuses.enumerated() {
            #expect((status == .ok) == scored.logProbs.value(at: r).isFinite, "row \(r)")
            if status != .ok { #expect(scored.logProbs.value(at: r).isNaN, "row \(r) is NaN, not ±inf") }
        }
        #expect(scored.latent?.count == 15)
        var marked = scored
        marked.markMalformed([1, 9])
        #expect(marked.statuses[1] == .malformedInput && marked.statuses[2] == .nonFiniteInput)
    }

    @Test func slicingAChunkForHeartbeatsGivesTheBitsOfOneCall() throws {
        let flow = try Self.model()
        let rows = 10_000
        let values = (0..<(rows * 3)).map { sin(Double($0) * 0.013) * 2 }
        let scorer = ChunkScorer(model: flow)
        var calls = 0
        let sliced = scorer.score(scorer.encode(values), rows: rows, firstRow: 0, wantLatent: true) { calls += 1 }
        #expect(calls == 2, "10 000 rows in slices of 4096: two breaks")
        var lp = [Float](repeating: 0, count: rows)
        var z = [Float](repeating: 0, count: rows * 3)
        let x = values.map { Float($0) }
        x.withUnsafeBufferPointer { xb in
            flow.logProbability(
                xb.baseAddress!, rows: rows, firstRow: 0, into: &lp, latent: &z,
                workspaces: [InferenceWorkspace(configuration: flow.configuration, capacity: 1024)])
        }
        #expect(sliced.logProbs == .float32(lp))
        #expect(sliced.latent == .float32(z))
        // More lanes: the same bits.
        let threaded = ChunkScorer(model: flow, threads: 3).score(scorer.encode(values), rows: rows, firstRow: 0, wantLatent: true)
        #expect(threaded == sliced)
    }
}
