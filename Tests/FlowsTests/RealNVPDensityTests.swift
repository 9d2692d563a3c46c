import FlowRandom
import Foundation
import Testing
@testable import Flows

struct RealNVPDensityTests {
    @Test func samplingReturnsTheLogProbabilityOfEachSample() throws {
        let model = try randomFlow(Double.self, dimension: 5, couplings: 4, hidden: 16, standardize: true, seed: 21, scale: 0.3)
        let (x, lp) = model.sample(count: 300, seed: 5)
        let direct = try model.logProbability(x)
        for r in 0..<300 { #expect(abs(lp[r] - direct[r]) < 1e-9 * max(1, abs(direct[r])), "sample \(r)") }
        // Same seed, same samples; another seed, other samples.
        #expect(model.sample(count: 300, seed: 5).data == x)
        #expect(model.sample(count: 300, seed: 6).data != x)
    }

    @Test func densityIntegratesToOneIn2D() throws {
        let model = try randomFlow(Double.self, dimension: 2, couplings: 6, hidden: 16, seed: 22, scale: 0.15)
        // Midpoint rule on [−L, L]²; the flow's mass outside is checked to be negligible by sampling.
        let L = 12.0, n = 600
        let h = 2 * L / Double(n)
        var grid = [Double]()
        grid.reserveCapacity(n * n * 2)
        for i in 0..<n {
            for j in 0..<n {
                grid.append(-L + (Double(i) + 0.5) * h)
                grid.append(-L + (Double(j) + 0.5) * h)
            }
        }
        let lp = try model.logProbability(grid)
        let mass = lp.reduce(0) { $0 + exp($1) } * h * h
        let (samples, _) = model.sample(count: 20_000, seed: 1)
        let outside = stride(from: 0, to: samples.count, by: 2).filter { abs(samples[$0]) > L || abs(samples[$0 + 1]) > L }.count
        #expect(outside < 20, "too many samples outside the grid: \(outside)")
        #expect(abs(mass - 1) < 0.01, "∫p = \(mass)")
    }

    @Test func sampleStatisticsMatchTheDensity() throws {
        // TFP's check: E_{x~p}[log p(x)] estimated from samples equals the same expectation
        // computed on the grid, −H(p) = ∫ p log p.
        let model = try randomFlow(Double.self, dimension: 2, couplings: 4, hidden: 16, seed: 23, scale: 0.3)
        let (_, lp) = model.sample(count: 40_000, seed: 2)
        let mean = lp.reduce(0, +) / Double(lp.count)
        let variance = lp.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(lp.count - 1)
        let L = 12.0, n = 500
        let h = 2 * L / Double(n)
        var grid = [Double]()
        for i in 0..<n { for j in 0..<n { grid += [-L + (Double(i) + 0.5) * h, -L + (Double(j) + 0.5) * h] } }
        let glp = try model.logProbability(grid)
        let negEntropy = glp.reduce(0) { $0 + exp($1) * $1 } * h * h
        let standardError = (variance / Double(lp.count)).squareRoot()
        #expect(abs(mean - negEntropy) < 5 * standardError + 1e-3, "sample mean \(mean) vs grid \(negEntropy) (se \(standardError))")
    }
}
