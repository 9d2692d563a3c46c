import FlowData
import Flows
import Foundation
import Testing
@testable import FlowCluster

/// Training end to end in one process. Run in release (`scripts/test.sh` does): 3,000 steps of
/// batch 512 take seconds there and minutes in a debug build.
struct LocalTrainerTests {
    /// Trains K=8, H=64 for `steps` steps of batch 512 on a built-in 2-D density and returns the
    /// final validation NLL.
    static func train(_ dataset: String, steps: Int, seed: UInt64 = 0) throws -> (nll: Double, trainer: LocalTrainer<Float>) {
        BLASThreads.set(1)  // tests run in parallel; a BLAS pool per test would oversubscribe the cores
        let table = try BuiltinDataset(name: dataset).generate(rows: 65536, seed: seed)
        let data = try TrainingData<Float>(table: table, validationFraction: 0.1, seed: seed)
        let config = FlowConfiguration(dimension: 2, couplings: 8, hidden: 64)
        let model = try RealNVP<Float>(configuration: config, seed: seed)
        let options = TrainingOptions(steps: steps, batch: 512, microBatch: 256, seed: seed)
        let trainer = try LocalTrainer(model: model, trainRows: data.trainRows, validationRows: data.validationRows, options: options)
        try trainer.run { _ in }
        return (trainer.validationNLL()!, trainer)
    }

    @Test(.timeLimit(.minutes(3)))
    func checkerboardReachesTheReferenceQuality() throws {
        // Uniform on area 32: the floor is ln 32 ≈ 3.466 nats; the PyTorch reference reaches 3.61.
        let (nll, _) = try Self.train("checkerboard", steps: 3000)
        #expect(nll < 3.70, "checkerboard validation NLL \(nll)")
        #expect(nll > log(32.0) - 0.02, "below the entropy floor: \(nll) — the density cannot be normalised")
    }

    @Test(.timeLimit(.minutes(3)))
    func eightGaussiansReachesTheReferenceQuality() throws {
        // Eight isotropic Gaussians of σ = 0.5/1.414: the floor is ln 8 + ln(2πe σ²) ≈ 2.838 nats; PyTorch reaches 2.99.
        let (nll, _) = try Self.train("8gaussians", steps: 3000)
        #expect(nll < 3.05, "8gaussians validation NLL \(nll)")
        #expect(nll > 2.80, "below the entropy floor: \(nll)")
    }

    @Test func trainingIsDeterministic() throws {
        let a = try Self.train("moons", steps: 30, seed: 4).trainer
        let b = try Self.train("moons", steps: 30, seed: 4).trainer
        let c = try Self.train("moons", steps: 30, seed: 5).trainer
        #expect(a.model.parameters == b.model.parameters)
        #expect(a.optimizer == b.optimizer)
        #expect(a.model.parameters != c.model.parameters)
        #expect(a.step == 30)
    }

    @Test func parametersDoNotDependOnTheThreadCount() throws {
        BLASThreads.set(1)
        let table = try BuiltinDataset(name: "mixture:5").generate(rows: 3000, seed: 2)
        let data = try TrainingData<Float>(table: table, validationFraction: 0.1, seed: 2)
        let config = FlowConfiguration(dimension: 5, couplings: 3, hidden: 32)
        let model = try RealNVP<Float>(configuration: config, seed: 2)
        let options = TrainingOptions(steps: 20, batch: 256, microBatch: 32, seed: 2, shardCount: 16)
        var results: [[Float]] = []
        for threads in [1, 2, 3, 8] {
            let trainer = try LocalTrainer(model: model, trainRows: data.trainRows, validationRows: [], options: options, threads: threads)
            try trainer.run { _ in }
            results.append(trainer.model.parameters)
        }
        #expect(results.allSatisfy { $0 == results[0] })
        #expect(results[0] != model.parameters)
    }

    @Test func aStepUsesTheMicroBatchesOfThePlanSummedInTreeOrder() throws {
        // Recompute one step by hand from the plan and the tree's additions, and compare bits.
        let table = try BuiltinDataset(name: "rings").generate(rows: 4096, seed: 1)
        let data = try TrainingData<Float>(table: table, validationFraction: 0, seed: 1)
        let config = FlowConfiguration(dimension: 2, couplings: 4, hidden: 16)
        let model = try RealNVP<Float>(configuration: config, seed: 1)
        let options = TrainingOptions(steps: 1, batch: 96, microBatch: 32, seed: 1, shardCount: 8)
        let trainer = try LocalTrainer(model: model, trainRows: data.trainRows, validationRows: [], options: options)
        try trainer.trainStep()

        // M = 3 slots over S = 8 shards: offsets ⌊8j/3⌋ = 0, 2, 5, so step 0 draws shards 0, 2 and
        // 5. The tree adds the two leaves under shards 0..<4 first, then the one under 4..<8:
        // (g₀ + g₂) + g₅ — written out here by hand.
        let refs = trainer.plan.microBatches(step: 0)
        #expect(refs.map(\.shard) == [0, 2, 5])
        var manual = model
        var adam = AdamOptimizer<Float>(parameterCount: model.parameters.count)
        let ws = GradientWorkspace<Float>(configuration: config, capacity: 32)
        var gradients: [[Float]] = []
        var losses: [Double] = []
        for ref in refs {
            var g = [Float](repeating: 0, count: model.parameters.count)
            let rows = trainer.plan.positions(of: ref).flatMap { data.trainRows[($0 * 2)..<($0 * 2 + 2)] }
            losses.append(model.negativeLogLikelihoodGradient(rows, rows: 32, parameterGradient: &g, inputGradient: nil, workspace: ws))
            gradients.append(g)
        }
        let total = gradients[0].indices.map { (gradients[0][$0] + gradients[1][$0]) + gradients[2][$0] }
        var sum = GradientSum<Float>(parameterCount: model.parameters.count)
        total.withUnsafeBufferPointer {
            sum.add(nodeAt: 0, gradient: $0.baseAddress!, lossSum: (losses[0] + losses[1]) + losses[2], rows: 96, microBatches: 3)
        }
        _ = try adam.apply(&sum, to: &manual.parameters, clipNorm: nil, step: 0)
        #expect(trainer.model.parameters == manual.parameters)
    }

    @Test func aNonFiniteGradientIsRefusedAndLeavesTheParametersAlone() throws {
        var rows = [Float](repeating: 0.5, count: 64 * 2)
        rows[10] = .infinity
        let config = FlowConfiguration(dimension: 2, couplings: 2, hidden: 8)
        var model = try RealNVP<Float>(configuration: config, seed: 0)
        for i in model.parameters.indices { model.parameters[i] += 0.01 * Float(i % 7) }
        let trainer = try LocalTrainer(
            model: model, trainRows: rows, validationRows: [],
            options: TrainingOptions(steps: 1, batch: 64, microBatch: 64, seed: 0, shardCount: 1))
        #expect(throws: FlowError.self) { try trainer.trainStep() }
        #expect(trainer.model.parameters == model.parameters)
        #expect(trainer.optimizer.step == 0)
    }

    @Test func invalidOptionsAreRejected() throws {
        let config = FlowConfiguration(dimension: 2, couplings: 1, hidden: 4)
        let model = try RealNVP<Float>(configuration: config, seed: 0)
        let rows = [Float](repeating: 1, count: 20)
        for options in [
            TrainingOptions(steps: 1, batch: 10, microBatch: 3),
            TrainingOptions(steps: 1, batch: 0, microBatch: 1),
            TrainingOptions(steps: 1, batch: 4, microBatch: 4, learningRate: -1),
            TrainingOptions(steps: 1, batch: 4, microBatch: 4, clipNorm: 0),
        ] {
            #expect(throws: TrainingError.self) {
                try LocalTrainer(model: model, trainRows: rows, validationRows: [], options: options)
            }
        }
    }
}
