import ArgumentParser

/// The architecture options shared by `train` (and later `coordinator`).
struct ModelShapeOptions: ParsableArguments {
    @Option(help: "Number of affine coupling layers.")
    var couplings: Int = 8

    @Option(help: "Width of each hidden layer of a coupling's MLP.")
    var hidden: Int = 64

    @Option(help: "Number of hidden layers in each coupling's MLP.")
    var depth: Int = 2

    @Flag(help: "Start the flow with a standardisation (x − mean)/std fitted on the training rows.")
    var standardize = false

    @Option(help: "Parameter precision: float32 or float64.")
    var dtype: Precision = .float32
}

/// The precision a model is trained in.
enum Precision: String, ExpressibleByArgument, CaseIterable {
    case float32, float64
}
