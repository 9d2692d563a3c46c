import FlowRandom
import Testing
@testable import Flows

/// Threads change who computes a chunk, never the chunk: results are the same bits.
struct ParallelEvaluationTests {
    @Test(arguments: [2, 3, 5])
    func logProbabilityDoesNotDependOnTheThreadCount(threads: Int) throws {
        BLASThreads.set(1)
        let model = try randomFlow(Float.self, dimension: 6, couplings: 4, hidden: 32, standardize: true, seed: 31, scale: 0.2)
        let rows = 1000
        let x = randomRows(Float.self, rows: rows, dimension: 6, seed: 32)
        let one = [InferenceWorkspace<Float>(configuration: model.configuration, capacity: 64)]
        let many = (0..<threads).map { _ in InferenceWorkspace<Float>(configuration: model.configuration, capacity: 64) }
        var a = [Float](repeating: 0, count: rows), b = a
        var za = [Float](repeating: 0, count: rows * 6), zb = za
        model.logProbability(x, rows: rows, into: &a, latent: &za, workspaces: one)
        model.logProbability(x, rows: rows, into: &b, latent: &zb, workspaces: many)
        #expect(a == b)
        #expect(za == zb)
    }

    @Test(arguments: [2, 4])
    func samplingDoesNotDependOnTheThreadCount(threads: Int) throws {
        BLASThreads.set(1)
        let model = try randomFlow(Float.self, dimension: 3, couplings: 4, hidden: 16, seed: 33, scale: 0.2)
        let rows = 700
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        let one = [InferenceWorkspace<Float>(configuration: model.configuration, capacity: 128)]
        let many = (0..<threads).map { _ in InferenceWorkspace<Float>(configuration: model.configuration, capacity: 128) }
        var xa = [Float](repeating: 0, count: rows * 3), xb = xa
        var la = [Float](repeating: 0, count: rows), lb = la
        model.sample(rows: rows, generator: &g1, into: &xa, logProbability: &la, workspaces: one)
        model.sample(rows: rows, generator: &g2, into: &xb, logProbability: &lb, workspaces: many)
        #expect(xa == xb)
        #expect(la == lb)
        #expect(g1.next() == g2.next(), "both drew the same amount of noise")
    }
}
