import FlowRandom

/// A RealNVP normalising flow with affine couplings `y_b = b ⊙ exp(tanh(s̃)) + t` (DESIGN §1).
///
/// The flow maps data `x ∈ R^D` to latents `z = f(x)` with a standard normal base density, so
///
///     log p(x) = −½‖z‖² − (D/2)·log 2π + log|det ∂f/∂x|.
///
/// All trainable numbers live in one flat vector, `parameters` (layout: `ParameterLayout`);
/// the optional standardisation is fixed data, not a parameter. A value of this type is cheap
/// to copy until it is mutated (copy-on-write arrays) and is safe to share between threads;
/// the work buffers live in separate workspaces (`InferenceWorkspace`, `GradientWorkspace`),
/// one per thread.
public struct RealNVP<Scalar: FlowScalar>: Sendable, Equatable {
    /// The architecture.
    public let configuration: FlowConfiguration
    /// Where each layer's weights and biases sit inside `parameters`.
    public let layout: ParameterLayout
    /// The flat parameter vector, length `configuration.parameterCount`.
    public var parameters: [Scalar]
    /// The fixed standardisation applied before the first coupling, if the configuration has one.
    public private(set) var standardization: Standardization<Scalar>?
    /// `inversePermutations[l][c]` is the output column that input column `c` of coupling `l`'s
    /// permutation is written to (`permutations[l][inversePermutations[l][c]] == c`).
    let inversePermutations: [[Int]]

    /// A freshly initialised flow: every hidden Linear layer like PyTorch's `nn.Linear` default
    /// (weights and biases uniform in `±1/√fan_in`), every last layer zero, so the flow starts as
    /// the identity up to the permutations. Seeded: the same seed gives the same parameters.
    ///
    /// - Parameter standardization: required exactly when `configuration.standardize` is true.
    public init(configuration: FlowConfiguration, seed: UInt64, standardization: Standardization<Scalar>? = nil) throws(FlowError) {
        try configuration.validate()
        let layout = ParameterLayout(configuration)
        var parameters = [Scalar](repeating: 0, count: layout.count)
        var rng = SeededGenerator(seed: seed, stream: 0x5041_5241_4D53)  // "PARAMS"
        for coupling in layout.layers {
            for linear in coupling.dropLast() {
                let bound = 1.0 / Double(linear.input).squareRoot()
                for i in 0..<linear.weightCount {
                    parameters[linear.weightOffset + i] = Scalar(rng.uniform(-bound, bound))
                }
                for i in 0..<linear.output {
                    parameters[linear.biasOffset + i] = Scalar(rng.uniform(-bound, bound))
                }
            }
        }
        try self.init(configuration: configuration, parameters: parameters, standardization: standardization)
    }

    /// A flow with the given parameters (checked for length and finiteness).
    public init(configuration: FlowConfiguration, parameters: [Scalar], standardization: Standardization<Scalar>?) throws(FlowError) {
        try configuration.validate()
        let layout = ParameterLayout(configuration)
        guard parameters.count == layout.count else {
            throw .shapeMismatch(what: "parameter vector length", expected: layout.count, found: parameters.count)
        }
        // FlatVector's scan runs as concrete Float/Double code even when this initialiser is
        // called from generic code in another module (a worker rebuilds the model every step).
        if let i = parameters.withUnsafeBufferPointer({ FlatVector.firstNonFinite($0.baseAddress!, count: $0.count) }) {
            throw .invalidConfiguration(field: "parameters[\(i)]", reason: "is not finite (\(parameters[i]))")
        }
        switch (configuration.standardize, standardization) {
        case (true, nil):
            throw .invalidConfiguration(field: "standardize", reason: "is on but no mean/std were given")
        case (false, .some):
            throw .invalidConfiguration(field: "standardize", reason: "is off but mean/std were given")
        case (true, .some(let s)) where s.mean.count != configuration.dimension:
            throw .shapeMismatch(what: "standardization length", expected: configuration.dimension, found: s.mean.count)
        default:
            break
        }
        self.configuration = configuration
        self.layout = layout
        self.parameters = parameters
        self.standardization = standardization
        self.inversePermutations = configuration.permutations.map { p in
            var inv = [Int](repeating: 0, count: p.count)
            for (j, c) in p.enumerated() { inv[c] = j }
            return inv
        }
    }

    /// Data dimension `D`.
    public var dimension: Int { configuration.dimension }

    /// `−(D/2)·log 2π`, the constant term of the standard normal log-density.
    var baseLogNormalizer: Scalar {
        -Scalar(Double(configuration.dimension) * 0.918_938_533_204_672_741_780_329_736_4)  // ½·log 2π = 0.9189…
    }
}
