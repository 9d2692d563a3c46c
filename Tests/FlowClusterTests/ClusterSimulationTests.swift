import Testing
@testable import FlowCluster

/// The step-time model of `tributary simulate`, against cases worked out by hand.
struct ClusterSimulationTests {
    static func model(
        t: Double = 1, n: Int = 8, bytes: Double = 1, bandwidth: Double = .infinity, latency: Double = 0,
        add: Double = 0, apply: Double = 0, localSteps: Int? = nil, efficiency: Double = 1
    ) -> ClusterSimulation {
        ClusterSimulation(
            microBatchSeconds: t, microBatchesPerStep: n, messageBytes: bytes, bandwidth: bandwidth, latency: latency,
            addSeconds: add, applySeconds: apply, localSteps: localSteps, linkEfficiency: efficiency)
    }

    @Test func withAFreeNetworkAStepIsTheBusiestWorkersComputePlusTheUpdate() {
        let m = Self.model(add: 0.01, apply: 0.5)
        for (workers, perWorker) in [(1, 8), (2, 4), (3, 3), (4, 2), (8, 1), (20, 1)] {
            let p = m.project(workers: workers)
            // The last results are ready after perWorker · t, one per worker with a full share;
            // the coordinator adds them one after another, then applies the update.
            let busy = min(workers, 8)
            let last = 8 - (perWorker - 1) * busy
            #expect(abs(p.stepSeconds - (Double(perWorker) + Double(last) * 0.01 + 0.5)) < 1e-9, "\(workers) workers: \(p)")
            #expect(p.computeSeconds == Double(perWorker))
            #expect(p.busyWorkers == min(workers, 8))
        }
    }

    @Test func theCoordinatorsLinkCarriesEveryMessageAndTheParametersGoOutTogether() {
        // Compute is free: the step is W parameter messages out, then 8 results in, back to back.
        let m = Self.model(t: 0, bytes: 10, bandwidth: 100)
        for workers in [1, 2, 4, 8] {
            let p = m.project(workers: workers)
            // The W parameter messages share the outgoing link (as W TCP connections through one
            // bottleneck do: measured on emulated hosts, docs/operations.md), so every worker has
            // its parameters after W·0.1 s — not the first after 0.1 s — and the 8 results follow.
            let expected = Double(workers) * 0.1 + 8 * 0.1
            #expect(abs(p.stepSeconds - expected) < 1e-9, "\(workers) workers: \(p.stepSeconds) vs \(expected)")
            #expect(abs(p.linkSeconds - 0.8) < 1e-12)
        }
    }

    @Test func framingStretchesEveryTransfer() {
        // Half of the link's rate left for message bytes: each 0.1 s transfer takes 0.2 s.
        let p = Self.model(t: 0, n: 2, bytes: 10, bandwidth: 100, efficiency: 0.5).project(workers: 1)
        #expect(abs(p.stepSeconds - 3 * 0.2) < 1e-12, "\(p)")
        #expect(abs(p.linkSeconds - 2 * 0.2) < 1e-12)
    }

    @Test func latencyIsPaidOnceEachWay() {
        let m = Self.model(t: 1, n: 4, latency: 0.25)
        #expect(abs(m.project(workers: 4).stepSeconds - 1.5) < 1e-12)
        #expect(abs(m.project(workers: 1).stepSeconds - 4.5) < 1e-12)
    }

    @Test func speedUpNeverExceedsTheWorkerCountAndTheStarStopsScalingWhenTheLinkIsFull() {
        let m = Self.model(t: 0.004, n: 64, bytes: 1e6, bandwidth: 1.25e9, latency: 5e-5, add: 1e-4, apply: 1e-3)
        let one = m.project(workers: 1).stepSeconds
        var steps: [Int: Double] = [:]
        for workers in [2, 4, 8, 16, 32, 64] {
            let p = m.project(workers: workers)
            #expect(one / p.stepSeconds <= Double(workers) + 1e-9)
            // Never below what the links need: W parameter messages out, then every result in.
            #expect(p.stepSeconds >= p.linkSeconds + Double(workers) * 0.0008 - 1e-12)
            steps[workers] = p.stepSeconds
        }
        // Up to 8 workers compute dominates and each doubling helps; beyond, the coordinator's
        // link carries W parameter messages before anyone computes, and more workers are slower.
        #expect(steps[2]! > steps[4]! && steps[4]! > steps[8]!, "\(steps)")
        #expect(steps[64]! > steps[16]!, "\(steps)")
    }

    @Test func parameterSyncExchangesOncePerRound() {
        // Compute-free, link-bound: gradients move 8 results in per step, parameters 2 per round.
        let gradients = Self.model(t: 0, bytes: 10, bandwidth: 100)
        let rounds = Self.model(t: 0, bytes: 10, bandwidth: 100, localSteps: 8)
        let g = gradients.project(workers: 2), r = rounds.project(workers: 2)
        // A round: 2 parameter messages out (arriving at 0.1 and 0.2 s), and back on the other
        // direction of the link (both arrive at 0.2 s, go back 0.2…0.3 and 0.3…0.4 s): 0.4 s for 8 steps.
        #expect(abs(r.stepSeconds - 0.4 / 8) < 1e-12, "\(r)")
        #expect(r.stepSeconds < g.stepSeconds / 10)
        // With a free link, a round is H times a worker's share plus H local updates.
        let free = Self.model(t: 1, n: 4, apply: 0.5, localSteps: 4).project(workers: 2)
        #expect(abs(free.stepSeconds - (2 + 0.5)) < 1e-12)
    }
}
