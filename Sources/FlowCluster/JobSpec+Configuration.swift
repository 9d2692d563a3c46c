import FlowWire
import Flows

extension WireMessage.JobSpec {
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
