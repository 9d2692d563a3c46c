import Foundation
import Testing

@testable import FlowCluster
@testable import Flows

struct ValidationMonitorTests {
    static let options = TrainingOptions(steps: 100, batch: 8, microBatch: 8, keepBest: true, earlyStop: 2)

    @Test func keepsTheBestAndStopsAfterThePatience() {
        var m = ValidationMonitor<Float>(options: Self.options)
        #expect(m.observe(step: 10, validationNLL: 3, parameters: [1, 1]) == .improved)
        #expect(m.observe(step: 20, validationNLL: 2, parameters: [2, 2]) == .improved)
        #expect(m.observe(step: 30, validationNLL: 2, parameters: [3, 3]) == .notImproved(count: 1), "equal is not better")
        #expect(m.bestParameters == [2, 2] && m.state.bestStep == 20 && m.state.bestNLL == 2)
        #expect(m.observe(step: 40, validationNLL: .nan, parameters: [4, 4]) == .stop, "NaN never improves")
        #expect(m.hasStopped && m.state.stoppedAt == 40)
        #expect(m.bestParameters == [2, 2])
        // Once stopped, nothing changes.
        #expect(m.observe(step: 50, validationNLL: 0, parameters: [5, 5]) == .improved)
        #expect(m.state.bestStep == 20)
    }

    @Test func aNonFiniteFirstEvaluationIsNotABest() {
        var m = ValidationMonitor<Double>(options: TrainingOptions(steps: 10, batch: 1, microBatch: 1, keepBest: true))
        #expect(m.observe(step: 1, validationNLL: .infinity, parameters: [9]) == .notImproved(count: 1))
        #expect(m.bestParameters == nil && m.state.bestNLL == nil)
        #expect(m.observe(step: 2, validationNLL: 5, parameters: [1]) == .improved)
        #expect(m.bestParameters == [1])
    }

    @Test func withoutTheControlsItDoesNothing() {
        var m = ValidationMonitor<Float>(options: TrainingOptions(steps: 10, batch: 1, microBatch: 1))
        #expect(!m.isActive)
        m.observe(step: 1, validationNLL: 1, parameters: [1])
        #expect(m.state == .init() && m.bestParameters == nil)
    }

    /// A checkpoint keeps the monitor's state and best parameters, bit for bit.
    @Test func aCheckpointRoundTripsTheMonitor() throws {
        let model = try RealNVP<Float>(configuration: FlowConfiguration(dimension: 2, couplings: 2, hidden: 4), seed: 3)
        var monitor = ValidationMonitor<Float>(options: Self.options)
        let best = model.parameters.map { $0 + 0.25 }
        monitor.observe(step: 20, validationNLL: 1.2345678901234567, parameters: best)
        monitor.observe(step: 40, validationNLL: 1.5, parameters: model.parameters)
        let optimizer: AdamOptimizer<Float> = Self.options.makeOptimizer(parameterCount: model.parameters.count)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("monitor-\(UUID()).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TrainingCheckpoint(model: model, optimizer: optimizer, step: 40, options: Self.options, monitor: monitor).write(to: path)
        let read = try TrainingCheckpoint<Float>.read(from: path)
        #expect(read.monitor == monitor)
        #expect(read.monitor.bestParameters?.map(\.bitPattern) == best.map(\.bitPattern))
        #expect(read.options == Self.options)
    }

    /// Options stored by checkpoints written before the controls existed still decode, with the
    /// controls off.
    @Test func optionsWithoutTheControlsDecode() throws {
        let old = #"{"batch":8,"evaluateEvery":100,"learningRate":0.001,"microBatch":8,"seed":0,"shardCount":64,"steps":100}"#
        let options = try JSONDecoder().decode(TrainingOptions.self, from: Data(old.utf8))
        #expect(options == TrainingOptions(steps: 100, batch: 8, microBatch: 8))
    }
}

/// One process, interrupted and resumed from its checkpoint, ends with the bits of an
/// uninterrupted run with every control on.
struct LocalTrainerResumeTests {
    @Test func resumingFromACheckpointGivesTheBitsOfAStraightRun() throws {
        var options = TrainingOptions(
            steps: 120, batch: 32, microBatch: 16, learningRate: 0.01, seed: 5, shardCount: 4, evaluateEvery: 10,
            scheduleKind: .cosine, warmupSteps: 15, minimumLearningRate: 1e-4, weightDecay: 0.05, keepBest: true, earlyStop: 4)
        options.clipNorm = 5
        let configuration = FlowConfiguration(dimension: 2, couplings: 3, hidden: 16)
        // Fixed data (a noisy circle), so that the run is the same every time.
        func circle(_ n: Int, offset: Int) -> [Float] {
            (0..<n).flatMap { i -> [Float] in
                let a = Double(i + offset) * 2.399963, r = 1 + 0.2 * sin(Double(i + offset) * 12.9898)
                return [Float(r * cos(a)), Float(r * sin(a))]
            }
        }
        let rows = circle(200, offset: 0)
        let validation = circle(40, offset: 1000)
        func trainer(_ checkpoint: CheckpointPolicy?, resume: TrainingCheckpoint<Float>? = nil) throws -> LocalTrainer<Float> {
            try LocalTrainer(
                model: try RealNVP<Float>(configuration: configuration, seed: 5), trainRows: rows, validationRows: validation,
                options: options, checkpoint: checkpoint, resume: resume)
        }
        let straight = try trainer(nil)
        try straight.run(progress: { _ in })
        try #require(straight.step > 60, "the straight run stopped at step \(straight.step), before the interruption")

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let policy = CheckpointPolicy(directory: directory, every: 25)
        struct Stop: Error {}
        let first = try trainer(policy)
        #expect(throws: Stop.self) { try first.run(progress: { _ in }, watch: { if first.step == 60 { throw Stop() } }) }
        #expect(first.lastCheckpointStep == 50)
        let resumed = try trainer(policy, resume: try TrainingCheckpoint<Float>.read(from: policy.path))
        #expect(resumed.step == 50)
        try resumed.run(progress: { _ in })
        #expect(resumed.step == straight.step)
        #expect(resumed.model.parameters.map(\.bitPattern) == straight.model.parameters.map(\.bitPattern))
        #expect(resumed.monitor == straight.monitor)
    }
}
