import FlowWire
import Flows

extension WireMessage.JobSpec {
    /// The spec of a job over `model`: its dtype, architecture (with permutations) and
    /// standardisation — the one mapping from a model's configuration to the wire, for training
    /// and scoring alike (`flowConfiguration()` is its inverse).
    public init<S: FlowScalar>(jobID: UInt64, model: RealNVP<S>, mode: Mode) {
        let configuration = model.configuration
        self.init(
            jobID: jobID, dtype: S.self == Float.self ? .float32 : .float64,
            architecture: .init(
                dimension: UInt32(configuration.dimension), couplings: UInt32(configuration.couplings),
                hidden: UInt32(configuration.hidden), depth: UInt32(configuration.depth),
                permutations: configuration.permutations.map { $0.map { UInt32($0) } }),
            standardization: model.standardization.map { .init(mean: WireVector($0.mean)!, std: WireVector($0.std)!) },
            mode: mode)
    }

    /// The flow configuration the job's architecture describes (with its permutations),
    /// validated: what a worker builds its model from, for training and scoring alike.
    func flowConfiguration() throws -> FlowConfiguration {
        let a = architecture
        var configuration = FlowConfiguration(
            dimension: Int(a.dimension), couplings: Int(a.couplings), hidden: Int(a.hidden), depth: Int(a.depth),
            standardize: standardization != nil)
        configuration.permutations = a.permutations.map { $0.map { Int($0) } }
        try configuration.validate()
        return configuration
    }
}
