import Foundation
import Testing
import FlowRandom
import FlowData

struct GaussianMixtureTests {
    @Test func singleComponentIsTheNormalDensity() {
        let m = GaussianMixture(dimension: 2, weights: [1], means: [1, -2], standardDeviations: [0.5, 3])
        let x = [0.3, 1.7]
        let expected = -log(0.5) - log(3.0) - log(2 * Double.pi)
            - 0.5 * (pow((0.3 - 1) / 0.5, 2) + pow((1.7 + 2) / 3, 2))
        #expect(abs(m.logDensity(x) - expected) < 1e-12)
    }

    @Test func twoComponentsAddTheirWeightedDensities() {
        let m = GaussianMixture(dimension: 1, weights: [0.25, 0.75], means: [-1, 2], standardDeviations: [1, 0.5])
        func normal(_ x: Double, _ mu: Double, _ s: Double) -> Double {
            exp(-0.5 * pow((x - mu) / s, 2)) / (s * (2 * Double.pi).squareRoot())
        }
        for x in [-3.0, 0, 0.7, 2.2] {
            let expected = log(0.25 * normal(x, -1, 1) + 0.75 * normal(x, 2, 0.5))
            #expect(abs(m.logDensity([x]) - expected) < 1e-12, "x = \(x)")
        }
        // Far away the log-sum-exp keeps the value finite.
        #expect(m.logDensity([1e6]).isFinite)
    }

    @Test func builtinParametersFollowTheConstruction() {
        let m = GaussianMixture.builtin(dimension: 16, seed: 0)
        #expect(m.componentCount == 8 && m.dimension == 16)
        #expect(m.means.count == 128 && m.standardDeviations.count == 128)
        #expect(abs(m.weights.reduce(0, +) - 1) < 1e-12)
        #expect(m.standardDeviations.allSatisfy { $0 >= 0.3 && $0 < 1.0 })
        // Means ~ N(0, 2²): their sample standard deviation over 128 draws is near 2.
        let mean = m.means.reduce(0, +) / 128
        let sd = (m.means.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / 127).squareRoot()
        #expect(sd > 1.6 && sd < 2.4, "sd of means \(sd)")
        #expect(m == GaussianMixture.builtin(dimension: 16, seed: 0))
        #expect(m != GaussianMixture.builtin(dimension: 16, seed: 1))
    }

    @Test func densityIntegratesToOne() {
        // Riemann sum over a grid wide enough for means ~ N(0, 4) and σ ≤ 1.
        let m = GaussianMixture.builtin(dimension: 2, seed: 3)
        let h = 0.05
        var total = 0.0
        var x = -16.0
        while x < 16 {
            var y = -16.0
            while y < 16 {
                total += exp(m.logDensity([x, y])) * h * h
                y += h
            }
            x += h
        }
        #expect(abs(total - 1) < 1e-3, "integral \(total)")
    }

    @Test func samplingUsesTheWeights() {
        let m = GaussianMixture(dimension: 1, weights: [0.2, 0.8], means: [-100, 100], standardDeviations: [1, 1])
        var components = SeededGenerator(seed: 1, stream: 1)
        var noise = SeededGenerator(seed: 1, stream: 2)
        let t = m.sample(rows: 20_000, components: &components, noise: &noise)
        let left = t.values.filter { $0 < 0 }.count
        #expect(abs(Double(left) / 20_000 - 0.2) < 0.015)
    }
}
