import Foundation
import Testing
@testable import Flows

struct AdamOptimizerTests {
    @Test func matchesTheReferenceRule() {
        var adam = AdamOptimizer<Double>(parameterCount: 3, learningRate: 0.01)
        var parameters = [1.0, -2.0, 0.5]
        var m = [0.0, 0, 0], v = [0.0, 0, 0], reference = parameters
        let gradients: [[Double]] = [[0.1, -0.3, 2.0], [0.2, 0.1, -1.0], [-0.5, 0.0, 0.3]]
        for (t, g) in gradients.enumerated() {
            adam.update(parameters: &parameters, gradient: g)
            for i in 0..<3 {
                m[i] = 0.9 * m[i] + 0.1 * g[i]
                v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mHat = m[i] / (1 - Foundation.pow(0.9, Double(t + 1)))
                let vHat = v[i] / (1 - Foundation.pow(0.999, Double(t + 1)))
                reference[i] -= 0.01 * mHat / (vHat.squareRoot() + 1e-8)
            }
        }
        for i in 0..<3 { #expect(abs(parameters[i] - reference[i]) < 1e-9, "parameter \(i)") }
        #expect(adam.step == 3)
    }

    @Test func clippingBoundsTheNorm() {
        var g: [Float] = [3, 4]
        let before = FlatVector.clipNorm(&g, count: 2, maxNorm: 1)
        #expect(abs(before - 5) < 1e-6)
        #expect(abs(FlatVector.norm(g, count: 2) - 1) < 1e-5)
        var small: [Float] = [0.3, 0.4]
        FlatVector.clipNorm(&small, count: 2, maxNorm: 1)
        #expect(small == [0.3, 0.4])
    }

    @Test func findsNonFiniteEntries() {
        #expect(FlatVector.firstNonFinite([1.0, 2, 3], count: 3) == nil)
        #expect(FlatVector.firstNonFinite([1.0, .nan, 3], count: 3) == 1)
        #expect(FlatVector.firstNonFinite([Float](repeating: 0, count: 10) + [.infinity], count: 11) == 10)
    }
}
