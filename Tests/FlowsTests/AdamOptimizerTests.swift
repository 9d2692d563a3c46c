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

/// The vectorised update gives the bits of the scalar rule, element by element, for both
/// precisions and for lengths that leave a scalar tail.
struct AdamVectorKernelTests {
    static func check<T: FlowScalar, V: SIMD>(_: T.Type, _ vector: V.Type, count: Int, decay: T? = nil) where V.Scalar == T {
        var generator = SystemRandomNumberGenerator()
        func random(_ range: ClosedRange<Double>) -> T { T(Double.random(in: range, using: &generator)) }
        // Values over many magnitudes, with exact zeros.
        func spread() -> T { T(Double.random(in: -1...1, using: &generator) * Foundation.pow(10, Double.random(in: -12...3, using: &generator))) }
        let parameters = (0..<count).map { _ in random(-2...2) }
        let m = (0..<count).map { i in i % 5 == 0 ? 0 : spread() }
        let v = (0..<count).map { i in i % 5 == 0 ? 0 : abs(spread()) }
        let gradient = (0..<count).map { i in i % 7 == 0 ? 0 : spread() }
        var (p1, m1, v1) = (parameters, m, v)
        var (p2, m2, v2) = (parameters, m, v)
        let (step, root, b1, b2, eps) = (T(0.0031), T(0.0447), T(0.9), T(0.999), T(1e-8))
        gradient.withUnsafeBufferPointer { g in
            AdamOptimizer<T>.vectorKernel(V.self, &p1, &m1, &v1, g.baseAddress!, count, step, root, b1, b2, eps, decay != nil, decay ?? 1)
            AdamOptimizer<T>.kernel(&p2, &m2, &v2, g.baseAddress!, count, step, root, b1, b2, eps, decay != nil, decay ?? 1)
        }
        for (name, a, b) in [("parameters", p1, p2), ("first moment", m1, m2), ("second moment", v1, v2)] {
            func same(_ x: T, _ y: T) -> Bool {
                x.sign == y.sign && x.exponentBitPattern == y.exponentBitPattern && x.significandBitPattern == y.significandBitPattern
            }
            let first = a.indices.first { !same(a[$0], b[$0]) }
            #expect(first == nil, "\(T.self) × \(count): \(name)[\(first ?? -1)] differs")
        }
    }

    @Test(arguments: [0, 1, 15, 16, 17, 1000, 4099])
    func floatLanesMatchTheScalarRule(count: Int) {
        Self.check(Float.self, SIMD16<Float>.self, count: count)
        Self.check(Float.self, SIMD16<Float>.self, count: count, decay: Float(1 - 0.0031 * 0.05))
    }

    @Test(arguments: [0, 1, 7, 8, 9, 1000, 4099])
    func doubleLanesMatchTheScalarRule(count: Int) {
        Self.check(Double.self, SIMD8<Double>.self, count: count)
        Self.check(Double.self, SIMD8<Double>.self, count: count, decay: 1 - 0.0031 * 0.05)
    }
}

/// The gradient norm's fixed summation order (docs/model.md, gradient clipping).
struct FlatVectorNormTests {
    @Test(arguments: [0, 1, 7, 8, 9, 23, 1000])
    func eightPartialSumsCombinedInAFixedOrder(count: Int) {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<count).map { _ in Float.random(in: -3...3, using: &generator) }
        var s = [Double](repeating: 0, count: 8)
        for (i, x) in values.enumerated() { s[i % 8] += Double(x) * Double(x) }
        let expected = (((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))).squareRoot()
        let norm = values.withUnsafeBufferPointer { FlatVector.norm($0.baseAddress!, count: count) }
        #expect(norm.bitPattern == expected.bitPattern, "\(norm) vs \(expected)")
        // And it is the norm: within rounding of a plain sum.
        let plain = values.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(norm - plain) <= 1e-12 * max(plain, 1))
    }
}

/// The fused division of `GradientSum.apply` equals its three separate passes, bit for bit.
struct DivideAndMeasureTests {
    @Test(arguments: [0, 1, 7, 8, 9, 23, 1000])
    func matchesDivideThenScanThenNorm(count: Int) {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<count).map { _ in Float.random(in: -300...300, using: &generator) }
        var fused = values, separate = values
        let (norm, bad) = fused.withUnsafeMutableBufferPointer { FlatVector.divideAndMeasure($0.baseAddress!, count: count, by: 7) }
        separate.withUnsafeMutableBufferPointer { FlatVector.divide($0.baseAddress!, count: count, by: 7) }
        let expectedNorm = separate.withUnsafeBufferPointer { FlatVector.norm($0.baseAddress!, count: count) }
        #expect(fused.map(\.bitPattern) == separate.map(\.bitPattern))
        #expect(norm.bitPattern == expectedNorm.bitPattern)
        #expect(bad == nil)
    }

    @Test(arguments: [(9, 3), (9, 8), (1000, 517)])
    func findsTheFirstNonFiniteResult(count: Int, at index: Int) {
        var values = [Double](repeating: 1, count: count)
        values[index] = .infinity
        values[count - 1] = .nan
        let (_, bad) = values.withUnsafeMutableBufferPointer { FlatVector.divideAndMeasure($0.baseAddress!, count: count, by: 2) }
        #expect(bad == index)
    }
}

/// The step's gradient norm measured segment by segment (docs/model.md, gradient clipping).
struct ParameterSegmentsTests {
    @Test(arguments: [0, 1, 63, 64, 65, 1000, 4744])
    func theSegmentsPartitionTheVector(count: Int) {
        var next = 0
        for g in 0..<ParameterSegments.count {
            let r = ParameterSegments.range(g, of: count)
            #expect(r.lowerBound == next)
            next = r.upperBound
        }
        #expect(next == count)
    }

    @Test(arguments: [0, 1, 9, 64, 100, 4744])
    func theNormAddsTheSegmentsSquaresInOrder(count: Int) {
        var generator = SystemRandomNumberGenerator()
        let values = (0..<count).map { _ in Float.random(in: -300...300, using: &generator) * Float(1 << Int.random(in: 0...12, using: &generator)) }
        var measured = values
        let (norm, bad) = measured.withUnsafeMutableBufferPointer { ParameterSegments.divideAndMeasure($0.baseAddress!, count: count, by: 3) }
        #expect(bad == nil)
        // By hand: divide, then each segment's eight partial sums, then the segments left to right.
        let divided = values.map { $0 / 3 }
        #expect(measured.map(\.bitPattern) == divided.map(\.bitPattern))
        var total = 0.0
        for g in 0..<ParameterSegments.count {
            var s = [Double](repeating: 0, count: 8)
            for (i, x) in divided[ParameterSegments.range(g, of: count)].enumerated() { s[i % 8] += Double(x) * Double(x) }
            total += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
        }
        #expect(norm.bitPattern == total.squareRoot().bitPattern, "\(norm) vs \(total.squareRoot())")
        let plain = divided.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
        #expect(abs(norm - plain) <= 1e-12 * max(plain, 1))
        // Segment by segment, in a shuffled order, out of place (as the owners' folds arrive at a
        // worker of the sharded exchange, each copied out of its message): the same bits.
        var shares = ParameterSegments.Shares(parameterCount: count)
        var gathered = [Float](repeating: .nan, count: count)
        for g in (0..<ParameterSegments.count).shuffled(using: &generator) {
            let offset = ParameterSegments.range(g, of: count).lowerBound
            values.withUnsafeBufferPointer { source in
                gathered.withUnsafeMutableBufferPointer { target in
                    guard let from = source.baseAddress, let to = target.baseAddress else { return }
                    shares.measure(g, from: from + offset, into: to + offset, by: 3)
                }
            }
        }
        #expect(shares.norm.bitPattern == norm.bitPattern && shares.firstNonFinite == nil)
        #expect(gathered.map(\.bitPattern) == divided.map(\.bitPattern))
        shares.reset()
        #expect(shares.norm == 0 && shares.firstNonFinite == nil)
    }

    @Test func theFirstNonFiniteEntryIsFoundInAnySegment() {
        var values = [Double](repeating: 1, count: 1000)
        values[517] = .infinity
        values[999] = .nan
        let (_, bad) = values.withUnsafeMutableBufferPointer { ParameterSegments.divideAndMeasure($0.baseAddress!, count: 1000, by: 2) }
        #expect(bad == 517)
        // Gathered from the last segment to the first: still the first entry of the vector.
        var shares = ParameterSegments.Shares(parameterCount: 1000)
        values.withUnsafeMutableBufferPointer { v in
            for g in (0..<ParameterSegments.count).reversed() {
                let offset = ParameterSegments.range(g, of: 1000).lowerBound
                shares.measure(g, from: UnsafePointer(v.baseAddress! + offset), into: v.baseAddress! + offset, by: 2)
            }
        }
        #expect(shares.firstNonFinite == 517)
    }
}
