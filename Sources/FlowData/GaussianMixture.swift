import FlowRandom

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mixture of Gaussians with diagonal covariances,
/// `p(x) = Σ_k w_k Π_j N(x_j; μ_kj, σ_kj²)`, with its exact log-density — the ground truth
/// against which a flow's negative log-likelihood can be compared (the best achievable mean
/// NLL is the mixture's entropy, estimated by ``meanNegativeLogDensity(_:)`` on a large sample).
public struct GaussianMixture: Sendable, Equatable {
    /// Number of coordinates D.
    public let dimension: Int
    /// Mixing weights w_k (positive, summing to 1), one per component.
    public let weights: [Double]
    /// Component means μ, K×D row-major.
    public let means: [Double]
    /// Component standard deviations σ (positive), K×D row-major.
    public let standardDeviations: [Double]

    /// Number of components K.
    public var componentCount: Int { weights.count }

    /// Creates a mixture from its parameters.
    ///
    /// - Precondition: `weights` is non-empty, positive and sums to 1 within 1e-9;
    ///   `means` and `standardDeviations` have `weights.count * dimension` entries;
    ///   every standard deviation is positive.
    public init(dimension: Int, weights: [Double], means: [Double], standardDeviations: [Double]) {
        precondition(dimension >= 1 && !weights.isEmpty, "GaussianMixture: empty mixture")
        precondition(weights.allSatisfy { $0 > 0 } && abs(weights.reduce(0, +) - 1) < 1e-9,
                     "GaussianMixture: weights must be positive and sum to 1")
        precondition(means.count == weights.count * dimension
                     && standardDeviations.count == weights.count * dimension,
                     "GaussianMixture: means and standard deviations must be K×D")
        precondition(standardDeviations.allSatisfy { $0 > 0 }, "GaussianMixture: σ must be positive")
        self.dimension = dimension
        self.weights = weights
        self.means = means
        self.standardDeviations = standardDeviations
    }

    /// The mixture behind the built-in dataset `mixture:D` for `seed`: 8 components, drawn in
    /// this order from one generator: means ~ N(0, 2²) (8×D, row-major), standard deviations
    /// ~ U(0.3, 1.0) (8×D), weights ~ Dirichlet(1, …, 1) (8 draws −log(1 − u), normalised).
    public static func builtin(dimension: Int, seed: UInt64) -> GaussianMixture {
        let k = 8
        var g = SeededGenerator(seed: seed, stream: RandomStream.mixtureParameters)
        let means = (0..<(k * dimension)).map { _ in 2.0 * g.normal() }
        let stds = (0..<(k * dimension)).map { _ in g.uniform(0.3, 1.0) }
        let draws = (0..<k).map { _ in -log(1.0 - g.uniform()) }
        let total = draws.reduce(0, +)
        var weights = draws.map { $0 / total }
        // Exp(1) draws are positive except with probability 2^-53 each; keep the contract.
        if weights.contains(where: { $0 <= 0 }) {
            weights = weights.map { ($0 + 1e-12) / (1 + Double(k) * 1e-12) }
        }
        return GaussianMixture(dimension: dimension, weights: weights, means: means, standardDeviations: stds)
    }

    /// `log p(x)` for one point of `dimension` coordinates (computed with log-sum-exp, so it is
    /// finite far from every component).
    public func logDensity<C: Collection>(_ x: C) -> Double where C.Element == Double {
        precondition(x.count == dimension, "GaussianMixture.logDensity: \(x.count) coordinates, expected \(dimension)")
        let halfLogTwoPi = 0.5 * log(2 * Double.pi)
        var terms = [Double](repeating: 0, count: componentCount)
        for c in 0..<componentCount {
            var sum = log(weights[c])
            var j = 0
            for value in x {
                let sigma = standardDeviations[c * dimension + j]
                let z = (value - means[c * dimension + j]) / sigma
                sum -= log(sigma) + halfLogTwoPi + 0.5 * z * z
                j += 1
            }
            terms[c] = sum
        }
        let top = terms.max()!
        return top + log(terms.reduce(0) { $0 + exp($1 - top) })
    }

    /// The mean of `−log p(x)` over the rows of `table` (a Monte Carlo estimate of the entropy
    /// when the rows are samples of this mixture).
    public func meanNegativeLogDensity(_ table: Table) -> Double {
        precondition(table.columns == dimension, "GaussianMixture: table has \(table.columns) columns, expected \(dimension)")
        guard table.rows > 0 else { return .nan }
        var total = 0.0
        for i in 0..<table.rows {
            total -= logDensity(table.row(i))
        }
        return total / Double(table.rows)
    }

    /// `rows` independent samples: for each row, a component c ~ Categorical(w) by inverting
    /// the cumulative weights at one uniform from `components`, then
    /// `x_j = μ_cj + σ_cj · n_j` with D standard normals from `noise`.
    public func sample(rows: Int, components: inout SeededGenerator, noise: inout SeededGenerator) -> Table {
        precondition(rows >= 0, "GaussianMixture.sample: negative row count")
        var cumulative = [Double]()
        var running = 0.0
        for w in weights {
            running += w
            cumulative.append(running)
        }
        var values = [Double]()
        values.reserveCapacity(rows * dimension)
        for _ in 0..<rows {
            let u = components.uniform() * running
            var c = 0
            while c < componentCount - 1 && u >= cumulative[c] { c += 1 }
            for j in 0..<dimension {
                values.append(means[c * dimension + j] + standardDeviations[c * dimension + j] * noise.normal())
            }
        }
        return Table(rows: rows, columns: dimension, values: values)
    }
}
