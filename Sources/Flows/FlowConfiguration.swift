/// The architecture of a RealNVP flow: everything needed to rebuild it except the numbers.
///
/// A flow on data of dimension `D` is `couplings` affine coupling layers. Coupling `l` keeps the
/// first `d = ⌊D/2⌋` coordinates of its input, feeds them to an MLP with `depth` hidden layers of
/// width `hidden` (ReLU), and uses the MLP's `2(D−d)` outputs as log-scale pre-activations `s̃`
/// (first half) and shifts `t` (second half) for the remaining `D−d` coordinates. After coupling
/// `l` the fixed permutation `permutations[l]` mixes the coordinates: output column `j` is input
/// column `permutations[l][j]` (the default is the reversal `j ↦ D−1−j`, PyTorch's `flip(1)`).
public struct FlowConfiguration: Sendable, Equatable, Codable {
    /// Data dimension `D` (at least 2).
    public var dimension: Int
    /// Number of coupling layers `K` (at least 1).
    public var couplings: Int
    /// Width `H` of every hidden layer of each coupling's MLP.
    public var hidden: Int
    /// Number of hidden layers of each coupling's MLP (1 or more); the MLP has `depth + 1` Linear layers.
    public var depth: Int
    /// One permutation of `0..<D` per coupling; output column `j` of the permutation is input column `p[j]`.
    public var permutations: [[Int]]
    /// Whether the flow starts with a fixed standardisation `x ↦ (x − μ)/σ` fitted on the data.
    public var standardize: Bool

    /// A configuration with reverse permutations after every coupling (DESIGN §1's default).
    public init(dimension: Int, couplings: Int, hidden: Int, depth: Int = 2, standardize: Bool = false) {
        self.dimension = dimension
        self.couplings = couplings
        self.hidden = hidden
        self.depth = depth
        // Only build the default permutations for sizes `validate()` can accept: a hostile model
        // file or option must produce an error, not a multi-gigabyte allocation.
        let sane = (2...Self.maximumDimension).contains(dimension) && (1...Self.maximumCouplings).contains(couplings)
        self.permutations = sane ? Array(repeating: Array((0..<dimension).reversed()), count: couplings) : []
        self.standardize = standardize
    }

    /// The largest accepted data dimension.
    public static let maximumDimension = 1 << 20
    /// The largest accepted number of couplings.
    public static let maximumCouplings = 10_000

    /// The sizes `validate()` accepts, field by field: the one range table. The wire codec
    /// (`JobSpec`'s checked ranges, in `FlowWire`, which depends on nothing) holds the same
    /// numbers; `FlowClusterTests.RangeTableTests` ties the two.
    public enum Ranges {
        public static let dimension = 2...maximumDimension
        public static let couplings = 1...maximumCouplings
        public static let hidden = 1...(1 << 16)
        public static let depth = 1...64
    }

    /// Width of the unchanged (conditioning) half, `d = ⌊D/2⌋`.
    public var conditionerWidth: Int { dimension / 2 }
    /// Width of the transformed half, `D − d`.
    public var transformedWidth: Int { dimension - dimension / 2 }

    /// `(in, out)` of each Linear layer of one coupling's MLP, in order.
    public var linearShapes: [(input: Int, output: Int)] {
        var shapes: [(input: Int, output: Int)] = []
        var width = conditionerWidth
        for _ in 0..<depth {
            shapes.append((width, hidden))
            width = hidden
        }
        shapes.append((width, 2 * transformedWidth))
        return shapes
    }

    /// Number of trainable scalars `P` (the length of the flat parameter vector).
    public var parameterCount: Int {
        couplings * linearShapes.reduce(0) { $0 + $1.output * $1.input + $1.output }
    }

    /// Checks every field; throws `FlowError.invalidConfiguration` naming the first bad one.
    public func validate() throws(FlowError) {
        func bad(_ field: String, _ reason: String) -> FlowError { .invalidConfiguration(field: field, reason: reason) }
        guard dimension >= 2 else { throw bad("dimension", "must be at least 2, found \(dimension)") }
        guard dimension <= Self.maximumDimension else { throw bad("dimension", "must be at most \(Self.maximumDimension), found \(dimension)") }
        guard couplings >= 1, couplings <= Self.maximumCouplings else { throw bad("couplings", "must be in 1...\(Self.maximumCouplings), found \(couplings)") }
        guard Ranges.hidden.contains(hidden) else { throw bad("hidden", "must be in \(Ranges.hidden), found \(hidden)") }
        guard Ranges.depth.contains(depth) else { throw bad("depth", "must be in \(Ranges.depth), found \(depth)") }
        guard permutations.count == couplings else {
            throw bad("permutations", "\(permutations.count) permutations for \(couplings) couplings")
        }
        for (l, p) in permutations.enumerated() {
            guard p.count == dimension else {
                throw bad("permutations[\(l)]", "has \(p.count) entries, expected \(dimension)")
            }
            var seen = [Bool](repeating: false, count: dimension)
            for v in p {
                guard v >= 0, v < dimension, !seen[v] else {
                    throw bad("permutations[\(l)]", "is not a permutation of 0..<\(dimension) (entry \(v))")
                }
                seen[v] = true
            }
        }
        let p = parameterCount
        guard p <= 1 << 31 else {
            throw bad("hidden", "\(hidden) is too large for \(couplings) couplings of depth \(depth) on D = \(dimension): the model would have \(p) parameters, more than the limit of 2^31 = \(1 << 31)")
        }
    }
}
