import FlowRandom
import Foundation
import Testing
@testable import Flows

/// Every parameter gradient and the input gradient against central finite differences in Double.
struct RealNVPGradientTests {
    static let cases: [(dimension: Int, depth: Int, standardize: Bool)] = [
        (2, 1, false), (2, 2, false), (3, 1, false), (3, 2, true), (5, 1, true), (5, 2, false),
    ]

    @Test(arguments: cases.indices)
    func parameterGradientMatchesFiniteDifferences(caseIndex: Int) throws {
        let c = Self.cases[caseIndex]
        let model = try randomFlow(Double.self, dimension: c.dimension, couplings: 3, hidden: 6, depth: c.depth, standardize: c.standardize, seed: UInt64(caseIndex + 1))
        let rows = 5
        let x = randomRows(Double.self, rows: rows, dimension: c.dimension, seed: UInt64(caseIndex + 11))
        let ws = GradientWorkspace<Double>(configuration: model.configuration, capacity: rows)
        var analytic = [Double](repeating: .nan, count: model.parameters.count)
        let loss = x.withUnsafeBufferPointer { xb in
            analytic.withUnsafeMutableBufferPointer { gb in
                model.negativeLogLikelihoodGradient(xb.baseAddress!, rows: rows, parameterGradient: gb.baseAddress!, inputGradient: nil, workspace: ws)
            }
        }
        #expect(abs(loss - (try summedNLL(model, x))) <= 1e-10 * max(1, abs(loss)))

        var worst = 0.0
        var worstIndex = -1
        var diffSq = 0.0, refSq = 0.0
        for i in model.parameters.indices {
            let h = 1e-5 * max(1, abs(model.parameters[i]))
            var plus = model, minus = model
            plus.parameters[i] += h
            minus.parameters[i] -= h
            let numeric = (try summedNLL(plus, x) - summedNLL(minus, x)) / (2 * h)
            let err = abs(analytic[i] - numeric) / max(1, abs(numeric))
            diffSq += (analytic[i] - numeric) * (analytic[i] - numeric)
            refSq += numeric * numeric
            if err > worst { worst = err; worstIndex = i }
        }
        let relative = (diffSq / refSq).squareRoot()
        #expect(worst < 1e-6, "D=\(c.dimension) depth=\(c.depth): worst parameter \(worstIndex) error \(worst)")
        #expect(relative < 1e-6, "D=\(c.dimension) depth=\(c.depth): relative gradient error \(relative)")
        #expect(refSq > 1e-6, "the gradient should not be trivially zero")
    }

    @Test(arguments: cases.indices)
    func inputGradientMatchesFiniteDifferences(caseIndex: Int) throws {
        let c = Self.cases[caseIndex]
        let model = try randomFlow(Double.self, dimension: c.dimension, couplings: 4, hidden: 7, depth: c.depth, standardize: c.standardize, seed: UInt64(caseIndex + 21))
        let rows = 4
        let x = randomRows(Double.self, rows: rows, dimension: c.dimension, seed: UInt64(caseIndex + 31))
        let ws = GradientWorkspace<Double>(configuration: model.configuration, capacity: rows)
        var parameterGradient = [Double](repeating: 0, count: model.parameters.count)
        var analytic = [Double](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xb in
            parameterGradient.withUnsafeMutableBufferPointer { gb in
                analytic.withUnsafeMutableBufferPointer { ib in
                    _ = model.negativeLogLikelihoodGradient(xb.baseAddress!, rows: rows, parameterGradient: gb.baseAddress!, inputGradient: ib.baseAddress!, workspace: ws)
                }
            }
        }
        for i in x.indices {
            let h = 1e-5 * max(1, abs(x[i]))
            var plus = x, minus = x
            plus[i] += h
            minus[i] -= h
            let numeric = (try summedNLL(model, plus) - summedNLL(model, minus)) / (2 * h)
            let err = abs(analytic[i] - numeric) / max(1, abs(numeric))
            #expect(err < 1e-6, "D=\(c.dimension) depth=\(c.depth) input \(i): analytic \(analytic[i]) numeric \(numeric)")
        }
    }

    @Test func microBatchGradientsSumToTheBatchGradient() throws {
        let model = try randomFlow(Double.self, dimension: 4, couplings: 3, hidden: 8, seed: 3)
        let x = randomRows(Double.self, rows: 12, dimension: 4, seed: 4)
        let P = model.parameters.count
        let ws = GradientWorkspace<Double>(configuration: model.configuration, capacity: 12)
        var whole = [Double](repeating: 0, count: P)
        var parts = [Double](repeating: 0, count: P)
        var part = [Double](repeating: 0, count: P)
        x.withUnsafeBufferPointer { xb in
            model.negativeLogLikelihoodGradient(xb.baseAddress!, rows: 12, parameterGradient: &whole, inputGradient: nil, workspace: ws)
            for m in 0..<3 {
                model.negativeLogLikelihoodGradient(xb.baseAddress! + m * 16, rows: 4, parameterGradient: &part, inputGradient: nil, workspace: ws)
                FlatVector.add(part, into: &parts, count: P)
            }
        }
        for i in 0..<P {
            #expect(abs(whole[i] - parts[i]) <= 1e-12 * max(1, abs(whole[i])), "parameter \(i)")
        }
    }

    @Test func aRepeatedComputationIsBitIdentical() throws {
        let model = try randomFlow(Float.self, dimension: 6, couplings: 4, hidden: 32, seed: 8)
        let x = randomRows(Float.self, rows: 64, dimension: 6, seed: 9)
        let ws = GradientWorkspace<Float>(configuration: model.configuration, capacity: 64)
        var first = [Float](repeating: 0, count: model.parameters.count)
        var second = first
        x.withUnsafeBufferPointer { xb in
            model.negativeLogLikelihoodGradient(xb.baseAddress!, rows: 64, parameterGradient: &first, inputGradient: nil, workspace: ws)
            model.negativeLogLikelihoodGradient(xb.baseAddress!, rows: 64, parameterGradient: &second, inputGradient: nil, workspace: ws)
        }
        #expect(first == second)
    }
}
