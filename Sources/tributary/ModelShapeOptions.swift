import ArgumentParser
import Flows

/// The architecture options shared by `train` (and later `coordinator`).
struct ModelShapeOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: "Number of affine coupling layers.")
    var couplings: Int = 8

    @Option(parsing: .unconditional, help: "Width of each hidden layer of a coupling's MLP.")
    var hidden: Int = 64

    @Option(parsing: .unconditional, help: "Number of hidden layers in each coupling's MLP.")
    var depth: Int = 2

    @Flag(help: "Start the flow with a standardisation (x − mean)/std fitted on the training rows.")
    var standardize = false

    @Option(help: "Parameter precision: float32 or float64.")
    var dtype: Precision = .float32

    /// Range checks that need no data (the parameter count, which needs D, is checked later).
    func validate() throws {
        guard (1...FlowConfiguration.maximumCouplings).contains(couplings) else {
            throw ValidationError("--couplings must be in 1...\(FlowConfiguration.maximumCouplings), found \(couplings)")
        }
        guard (1...65536).contains(hidden) else { throw ValidationError("--hidden must be in 1...65536, found \(hidden)") }
        guard (1...64).contains(depth) else { throw ValidationError("--depth must be in 1...64, found \(depth)") }
    }
}

/// The precision a model is trained in.
enum Precision: String, ExpressibleByArgument, CaseIterable {
    case float32, float64
}
