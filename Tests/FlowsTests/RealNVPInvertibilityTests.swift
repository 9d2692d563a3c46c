import FlowRandom
import Foundation
import Testing
@testable import Flows

struct RealNVPInvertibilityTests {
    @Test(arguments: [2, 3, 5, 8])
    func inverseOfForwardIsIdentityInDouble(dimension: Int) throws {
        let model = try randomFlow(Double.self, dimension: dimension, couplings: 5, hidden: 16, standardize: dimension % 2 == 1, seed: UInt64(dimension), scale: 0.2)
        let x = randomRows(Double.self, rows: 50, dimension: dimension, seed: 2)
        let (z, ldForward) = try model.forward(x)
        let (back, ldInverse) = try model.inverse(z)
        for i in x.indices { #expect(abs(back[i] - x[i]) < 1e-11 * max(1, abs(x[i])), "x[\(i)]") }
        for r in ldForward.indices { #expect(abs(ldForward[r] - ldInverse[r]) < 1e-12, "row \(r)") }
        // …and the other way round.
        let z2 = randomRows(Double.self, rows: 50, dimension: dimension, seed: 3)
        let (x2, _) = try model.inverse(z2)
        let (z2back, _) = try model.forward(x2)
        for i in z2.indices { #expect(abs(z2back[i] - z2[i]) < 1e-11 * max(1, abs(z2[i])), "z[\(i)]") }
        #expect(zip(x, z).contains { abs($0 - $1) > 0.1 }, "the flow must not be the identity")
    }

    @Test(arguments: [2, 5])
    func inverseOfForwardIsIdentityInFloat(dimension: Int) throws {
        let model = try randomFlow(Float.self, dimension: dimension, couplings: 5, hidden: 16, seed: 4, scale: 0.2)
        let x = randomRows(Float.self, rows: 100, dimension: dimension, seed: 5)
        let (back, _) = try model.inverse(try model.forward(x).latent)
        for i in x.indices { #expect(abs(back[i] - x[i]) < 2e-5 * max(1, abs(x[i])), "x[\(i)]") }
    }

    @Test(arguments: [2, 3, 5])
    func logDeterminantMatchesBruteForceJacobian(dimension: Int) throws {
        let model = try randomFlow(Double.self, dimension: dimension, couplings: 4, hidden: 12, standardize: true, seed: UInt64(10 + dimension))
        let x = randomRows(Double.self, rows: 8, dimension: dimension, seed: 6)
        let (_, logDet) = try model.forward(x)
        for r in 0..<8 {
            let row = Array(x[(r * dimension)..<((r + 1) * dimension)])
            var jacobian = [[Double]](repeating: [Double](repeating: 0, count: dimension), count: dimension)
            for j in 0..<dimension {
                let h = 1e-6
                var plus = row, minus = row
                plus[j] += h
                minus[j] -= h
                let zp = try model.forward(plus).latent, zm = try model.forward(minus).latent
                for i in 0..<dimension { jacobian[i][j] = (zp[i] - zm[i]) / (2 * h) }
            }
            let brute = logAbsDeterminant(jacobian)
            #expect(abs(brute - logDet[r]) < 1e-6, "row \(r): analytic \(logDet[r]) brute force \(brute)")
        }
        #expect(logDet.contains { abs($0) > 0.1 }, "a random flow has a non-trivial log-determinant")
    }

    @Test func freshFlowIsTheIdentityUpToPermutations() throws {
        let config = FlowConfiguration(dimension: 5, couplings: 3, hidden: 8)
        let model = try RealNVP<Double>(configuration: config, seed: 1)
        let x = randomRows(Double.self, rows: 4, dimension: 5)
        let (z, ld) = try model.forward(x)
        // Three reversals = one reversal.
        for r in 0..<4 {
            for j in 0..<5 { #expect(z[r * 5 + j] == x[r * 5 + 4 - j]) }
            #expect(ld[r] == 0)
        }
    }

    @Test func floatAndDoubleAgree() throws {
        let double = try randomFlow(Double.self, dimension: 6, couplings: 6, hidden: 32, standardize: true, seed: 12, scale: 0.3)
        let float = try RealNVP<Float>(
            configuration: double.configuration, parameters: double.parameters.map { Float($0) },
            standardization: try Standardization(mean: double.standardization!.mean.map { Float($0) }, std: double.standardization!.std.map { Float($0) }))
        let x = randomRows(Double.self, rows: 200, dimension: 6, seed: 13)
        let lpDouble = try double.logProbability(x)
        let lpFloat = try float.logProbability(x.map { Float($0) })
        for r in lpDouble.indices {
            #expect(abs(Double(lpFloat[r]) - lpDouble[r]) < 2e-4 * max(1, abs(lpDouble[r])), "row \(r)")
        }
    }

    @Test func chunkedEvaluationEqualsOneChunk() throws {
        let model = try randomFlow(Float.self, dimension: 4, couplings: 3, hidden: 16, seed: 14)
        let x = randomRows(Float.self, rows: 103, dimension: 4, seed: 15)
        var small = [Float](repeating: 0, count: 103), large = small
        let wsSmall = InferenceWorkspace<Float>(configuration: model.configuration, capacity: 10)
        let wsLarge = InferenceWorkspace<Float>(configuration: model.configuration, capacity: 200)
        model.logProbability(x, rows: 103, into: &small, latent: nil, workspace: wsSmall)
        model.logProbability(x, rows: 103, into: &large, latent: nil, workspace: wsLarge)
        for r in 0..<103 { #expect(abs(small[r] - large[r]) <= 1e-5 * max(1, abs(large[r]))) }
    }

    @Test func rejectsInputOfTheWrongWidth() throws {
        let model = try randomFlow(Double.self, dimension: 3)
        #expect(throws: FlowError.self) { try model.logProbability([1, 2, 3, 4]) }
    }

    @Test func nanStaysInItsRow() throws {
        let model = try randomFlow(Double.self, dimension: 3)
        var x = randomRows(Double.self, rows: 3, dimension: 3)
        x[4] = .nan
        let lp = try model.logProbability(x)
        #expect(lp[0].isFinite && lp[2].isFinite && lp[1].isNaN)
    }
}
