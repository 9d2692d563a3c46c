import Testing
@testable import FlowCluster

/// The step-time model of `tributary simulate`, against cases worked out by hand.
struct ClusterSimulationTests {
    static func model(
        t: Double = 1, n: Int = 8, bytes: Double = 1, bandwidth: Double = .infinity, latency: Double = 0,
        add: Double = 0, apply: Double = 0, localSteps: Int? = nil
    ) -> ClusterSimulation {
        ClusterSimulation(
            microBatchSeconds: t, microBatchesPerStep: n, messageBytes: bytes, bandwidth: bandwidth, latency: latency,
            addSeconds: add, applySeconds: apply, localSteps: localSteps)
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

    @Test func theCoordinatorsLinkCarriesEveryMessage() {
        // Compute is free: the step is W parameter messages out, then 8 results in, back to back.
        let m = Self.model(t: 0, bytes: 10, bandwidth: 100)
        for workers in [1, 2, 4, 8] {
            let p = m.project(workers: workers)
            // Results of worker k are ready when its parameters arrive, at (k+1)·0.1 s; the incoming
            // link is free by then for all but the last batch of results, so the step ends 8
            // transfers after the first parameters arrive, or right after the last results are.
            let expected = max(0.1 + 8 * 0.1, Double(workers) * 0.1 + Double(8 / workers) * 0.1)
            #expect(abs(p.stepSeconds - expected) < 1e-9, "\(workers) workers: \(p.stepSeconds) vs \(expected)")
            #expect(abs(p.linkSeconds - 0.8) < 1e-12)
        }
    }

    @Test func latencyIsPaidOnceEachWay() {
        let m = Self.model(t: 1, n: 4, latency: 0.25)
        #expect(abs(m.project(workers: 4).stepSeconds - 1.5) < 1e-12)
        #expect(abs(m.project(workers: 1).stepSeconds - 4.5) < 1e-12)
    }

    @Test func speedUpNeverExceedsTheWorkerCountAndStopsGrowingWhenTheLinkIsFull() {
        let m = Self.model(t: 0.004, n: 64, bytes: 1e6, bandwidth: 1.25e9, latency: 5e-5, add: 1e-4, apply: 1e-3)
        let one = m.project(workers: 1).stepSeconds
        var previous = one
        for workers in [2, 4, 8, 16, 32, 64] {
            let p = m.project(workers: workers)
            #expect(one / p.stepSeconds <= Double(workers) + 1e-9)
            #expect(p.stepSeconds <= previous + 1e-12, "more workers never slower here")
            // Never below what the incoming link needs for all results.
            #expect(p.stepSeconds >= p.linkSeconds)
            previous = p.stepSeconds
        }
        // 64 results of 0.8 ms each on the link: with many workers the link, not compute, sets
        // the pace (busy about 90 % of the step).
        #expect(m.project(workers: 64).linkUtilisation > 0.85)
    }

    @Test func parameterSyncExchangesOncePerRound() {
        // Compute-free, link-bound: gradients move 8 results in per step, parameters 2 per round.
        let gradients = Self.model(t: 0, bytes: 10, bandwidth: 100)
        let rounds = Self.model(t: 0, bytes: 10, bandwidth: 100, localSteps: 8)
        let g = gradients.project(workers: 2), r = rounds.project(workers: 2)
        // A round: 2 parameter messages out (arriving at 0.1 and 0.2 s), and back on the other
        // direction of the link (0.1…0.2 and 0.2…0.3 s): 0.3 s for 8 steps.
        #expect(abs(r.stepSeconds - 0.3 / 8) < 1e-12, "\(r)")
        #expect(r.stepSeconds < g.stepSeconds / 10)
        // With a free link, a round is H times a worker's share plus H local updates.
        let free = Self.model(t: 1, n: 4, apply: 0.5, localSteps: 4).project(workers: 2)
        #expect(abs(free.stepSeconds - (2 + 0.5)) < 1e-12)
    }
}
