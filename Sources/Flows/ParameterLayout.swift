/// Where each Linear layer's weight and bias live inside the flat parameter vector.
///
/// The vector holds, for coupling 0, 1, …, K−1 and within it Linear layer 0, 1, …, depth:
/// the weight (row-major `[out, in]`, PyTorch's `nn.Linear.weight` layout) followed by the bias
/// `[out]`. This is also the order of the tensors `couplings.{l}.net.{k}.weight/bias` in a model
/// file, so the file's data section is the flat vector itself.
public struct ParameterLayout: Sendable, Equatable {
    /// Offsets and shape of one Linear layer.
    public struct Linear: Sendable, Equatable {
        /// Input width (columns of the weight).
        public let input: Int
        /// Output width (rows of the weight, length of the bias).
        public let output: Int
        /// Index of `weight[0, 0]` in the flat vector.
        public let weightOffset: Int
        /// Index of `bias[0]` in the flat vector.
        public let biasOffset: Int
        /// Number of weight elements, `output × input`.
        public var weightCount: Int { input * output }
    }

    /// `layers[l][k]` is Linear layer `k` of coupling `l`.
    public let layers: [[Linear]]
    /// Total length `P` of the flat vector.
    public let count: Int

    /// The layout of `configuration`.
    public init(_ configuration: FlowConfiguration) {
        var offset = 0
        var all: [[Linear]] = []
        for _ in 0..<configuration.couplings {
            var coupling: [Linear] = []
            for shape in configuration.linearShapes {
                let w = offset
                offset += shape.input * shape.output
                let b = offset
                offset += shape.output
                coupling.append(Linear(input: shape.input, output: shape.output, weightOffset: w, biasOffset: b))
            }
            all.append(coupling)
        }
        layers = all
        count = offset
    }

    /// The PyTorch-style name of a tensor: `couplings.{l}.net.{k}.weight` or `.bias`.
    ///
    /// `k` counts Linear layers only (0, 1, 2 for depth 2). Note that inside PyTorch's
    /// `nn.Sequential` the same layers sit at indices 0, 2, 4 (ReLUs in between); docs/model.md
    /// shows the mapping.
    public static func tensorName(coupling l: Int, linear k: Int, bias: Bool) -> String {
        "couplings.\(l).net.\(k).\(bias ? "bias" : "weight")"
    }
}
