import Testing
@testable import FlowCluster

/// The exchanges `tributary simulate` compares, against cases worked out by hand.
struct ClusterSimulationExchangeTests {
    static func model(t: Double = 1, n: Int = 8, bytes: Double = 1, bandwidth: Double = .infinity, latency: Double = 0, add: Double = 0, apply: Double = 0) -> ClusterSimulation {
        ClusterSimulation(
            microBatchSeconds: t, microBatchesPerStep: n, messageBytes: bytes, bandwidth: bandwidth, latency: latency,
            addSeconds: add, applySeconds: apply)
    }

    @Test func aWorkersRunOfLeavesIsCoveredByItsAlignedSubtrees() {
        #expect(ClusterSimulation.subtrees(of: 0..<64) == 1)
        #expect(ClusterSimulation.subtrees(of: 32..<64) == 1)
        #expect(ClusterSimulation.subtrees(of: 0..<22) == 3)   // 0..<16, 16..<20, 20..<22
        #expect(ClusterSimulation.subtrees(of: 22..<43) == 5)  // 22..<24, 24..<32, 32..<40, 40..<42, 42
        #expect(ClusterSimulation.subtrees(of: 5..<6) == 1)
        #expect(ClusterSimulation.subtrees(of: 7..<7) == 0)
        // Balanced runs of a power-of-two step over a power-of-two worker count: one partial each.
        for workers in [1, 2, 4, 8] {
            #expect((0..<workers).allSatisfy { ClusterSimulation.subtrees(of: ClusterSimulation.leaves(of: $0, busy: workers, n: 64)) == 1 })
        }
    }

    @Test func withAFreeNetworkEveryExchangeIsComputeThenAddsThenTheUpdate() {
        let m = Self.model(t: 1, n: 8, add: 0.01, apply: 0.5)
        // Two workers, four leaves each, one subtree each: 3 pre-reduce adds on the workers.
        let star = m.project(workers: 2, exchange: .star)
        #expect(abs(star.stepSeconds - (4 + 3 * 0.01 + 0.01 + 0.5)) < 1e-9, "\(star)")  // + one add at the coordinator
        let sharded = m.project(workers: 2, exchange: .sharded, segments: 64)
        // Each owner adds the two partials of its half; every worker updates all parameters.
        #expect(abs(sharded.stepSeconds - (4 + 3 * 0.01 + 0.01 * 0.5 + 0.5)) < 1e-9, "\(sharded)")
        let ring = m.project(workers: 2, exchange: .ring)
        #expect(abs(ring.stepSeconds - (4 + 3 * 0.01 + 0.5 * 0.01 + 0.5)) < 1e-9, "\(ring)")
    }

    @Test func shardedMovesTwiceTheGradientTimesWMinusOneOverWPerWorkerWhateverW() {
        // Compute-free and link-bound: 1 byte of gradient, 1 byte/s per link.
        let m = Self.model(t: 0, n: 64, bytes: 1, bandwidth: 1)
        for workers in [2, 4, 8, 16, 32, 64] {
            let p = m.project(workers: workers, exchange: .sharded, segments: 64)
            let expected = 2 * Double(workers - 1) / Double(workers)
            #expect(abs(p.stepSeconds - expected) < 1e-9, "\(workers) workers: \(p.stepSeconds) vs \(expected)")
            #expect(abs(p.linkSeconds - expected) < 1e-9)
        }
        // The ring moves the same bytes in 2(W−1) hops (here without latency: the same time).
        #expect(abs(m.project(workers: 4, exchange: .ring).stepSeconds - 1.5) < 1e-9)
    }

    @Test func theStarWithPreReductionCarriesOnePartialPerWorkerButStillAllParameters() {
        // Compute-free: W parameter messages out together, then W partials in.
        let m = Self.model(t: 0, n: 64, bytes: 1, bandwidth: 1)
        for workers in [1, 2, 4, 8] {
            let p = m.project(workers: workers, exchange: .star)
            #expect(abs(p.stepSeconds - 2 * Double(workers)) < 1e-9, "\(workers) workers: \(p)")
            #expect(abs(p.linkSeconds - Double(workers)) < 1e-12)
        }
        // Three workers hold 22, 21 and 21 leaves: 3 + 5 + 3 partials, not 3.
        #expect(abs(m.project(workers: 3, exchange: .star).linkSeconds - 11) < 1e-12)
    }

    @Test func latencyCountsOncePerPhaseAndOncePerRingHop() {
        let m = Self.model(t: 1, n: 4, latency: 0.25)
        // Sharded: reduce-scatter, the coordinator's order, all-gather, and the commit's round trip.
        #expect(abs(m.project(workers: 4, exchange: .sharded).stepSeconds - (1 + 5 * 0.25)) < 1e-12)
        // Ring: 2(W − 1) hops.
        #expect(abs(m.project(workers: 4, exchange: .ring).stepSeconds - (1 + 6 * 0.25)) < 1e-12)
        // Star: parameters out and partials in.
        #expect(abs(m.project(workers: 4, exchange: .star).stepSeconds - (1 + 2 * 0.25)) < 1e-12)
    }
}
