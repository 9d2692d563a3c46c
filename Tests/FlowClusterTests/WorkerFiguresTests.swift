import FlowWire
import Testing
@testable import FlowCluster

/// Per-worker figures: each worker's own rate from the compute times its results report, its
/// share since the last report, and the straggler mark; and the compute time stays out of every
/// comparison of results.
struct WorkerFiguresTests {
    @Test func ratesComeFromReportedComputeTimeAndStragglersFromTheMedian() {
        var tracker = WorkerFigures()
        var activity: [UInt32: WorkerActivity] = [
            1: WorkerActivity(rows: 1000, computeSeconds: 1), 2: WorkerActivity(rows: 1000, computeSeconds: 1.2),
            3: WorkerActivity(rows: 500, computeSeconds: 2.5),
        ]
        let first = tracker.figures(live: [1, 2, 3], activity: activity, names: [1: "a", 2: "b", 3: "c"])
        #expect(first.map(\.rowsPerSecond) == [1000, 1000 / 1.2, 200])
        #expect(first.map(\.share) == [0.4, 0.4, 0.2])
        #expect(first.map(\.straggler) == [false, false, true])  // 200 < median 833 / 2
        // The next report measures the window since this one: worker 3 caught up.
        activity[1]!.add(rows: 100, seconds: 0.1)
        activity[3]!.add(rows: 100, seconds: 0.1)
        let second = tracker.figures(live: [1, 2, 3], activity: activity, names: [1: "a", 2: "b", 3: "c"], demoted: [2])
        #expect(second.map(\.share) == [0.5, 0, 0.5])
        #expect(abs((second[2].rowsPerSecond ?? 0) - 1000) < 1e-6 && !second[2].straggler)
        // No rows in the window: the whole run's rate; demoted is a straggler whatever its rate.
        #expect(second[1].rowsPerSecond == 1000 / 1.2 && second[1].straggler)
        #expect(second.map(\.rows) == [1100, 1000, 600])
        // One worker alone is never a straggler by rate.
        var alone = WorkerFigures()
        #expect(alone.figures(live: [3], activity: activity, names: [:]).first?.straggler == false)
    }

    @Test func computeTimeIsNotPartOfAScoringResultsBits() {
        let a = WireMessage.ScoreResult(
            jobID: 1, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.ok], logProbs: .float64([-1.5]), latent: nil, computeSeconds: 0.1)
        var b = a
        b.computeSeconds = 9
        #expect(ScoringStateMachine.sameBits(a, b))
        b.logProbs = .float64([-1.5.nextUp])
        #expect(!ScoringStateMachine.sameBits(a, b))
    }
}
