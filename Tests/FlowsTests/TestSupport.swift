import FlowRandom
@testable import Flows

/// A flow whose every parameter — including the zero-initialised last layers — is random, so
/// that couplings are far from the identity (a zero coupling proves nothing).
func randomFlow<S: FlowScalar>(
    _: S.Type = S.self, dimension: Int, couplings: Int = 3, hidden: Int = 8, depth: Int = 2,
    standardize: Bool = false, seed: UInt64 = 1, scale: Double = 0.5
) throws -> RealNVP<S> {
    var config = FlowConfiguration(dimension: dimension, couplings: couplings, hidden: hidden, depth: depth, standardize: standardize)
    var rng = SeededGenerator(seed: seed, stream: 99)
    // Mix in non-reverse permutations too, so the permutation bookkeeping is exercised.
    if couplings > 1 { config.permutations[1] = rng.permutation(dimension) }
    var standardization: Standardization<S>? = nil
    if standardize {
        standardization = try Standardization(
            mean: (0..<dimension).map { _ in S(rng.normal()) },
            std: (0..<dimension).map { _ in S(rng.uniform(0.5, 2.0)) })
    }
    var model = try RealNVP<S>(configuration: config, seed: seed, standardization: standardization)
    for i in model.parameters.indices {
        model.parameters[i] += S(rng.normal() * scale)
    }
    return model
}

/// Row-major standard normal data.
func randomRows<S: FlowScalar>(_: S.Type = S.self, rows: Int, dimension: Int, seed: UInt64 = 7, scale: Double = 1) -> [S] {
    var rng = SeededGenerator(seed: seed, stream: 5)
    return (0..<(rows * dimension)).map { _ in S(rng.normal() * scale) }
}

/// The summed NLL `−Σ log p(x_i)` in `Double`.
func summedNLL(_ model: RealNVP<Double>, _ x: [Double]) throws -> Double {
    try model.logProbability(x).reduce(0) { $0 - $1 }
}

/// log|det A| by Gaussian elimination with partial pivoting.
func logAbsDeterminant(_ matrix: [[Double]]) -> Double {
    var a = matrix
    let n = a.count
    var result = 0.0
    for c in 0..<n {
        var pivot = c
        for r in (c + 1)..<max(n, c + 1) where abs(a[r][c]) > abs(a[pivot][c]) { pivot = r }
        a.swapAt(c, pivot)
        let v = a[c][c]
        if v == 0 { return -.infinity }
        result += log(abs(v))
        for r in (c + 1)..<max(n, c + 1) {
            let f = a[r][c] / v
            for k in c..<n { a[r][k] -= f * a[c][k] }
        }
    }
    return result
}

import Foundation
