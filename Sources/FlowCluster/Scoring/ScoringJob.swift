import FlowData
import FlowWire
import Flows

extension ScoringStateMachine.Job {
    /// The scoring job of `model` over `rowCount` rows in chunks of `chunkRows`: its `jobSpec`
    /// (built by `WireMessage.JobSpec(jobID:model:mode:)`, the one configuration → spec
    /// mapping) and a new coordinator instance. What a caller outside the cluster code needs to
    /// score, without the protocol's types.
    public init<S: FlowScalar>(
        model: RealNVP<S>, jobID: UInt64 = .random(in: 1...UInt64.max), rowCount: Int, chunkRows: Int, wantLatent: Bool,
        inFlightPerWorker: Int = 2, heartbeatInterval: Double = 0.25, verifyFraction: Double = 0
    ) {
        self.init(
            spec: WireMessage.JobSpec(jobID: jobID, model: model, mode: .scoring(.init(chunkRows: UInt32(chunkRows), wantLatent: wantLatent))),
            rowCount: rowCount, chunkRows: chunkRows, inFlightPerWorker: inFlightPerWorker, heartbeatInterval: heartbeatInterval,
            instance: .random(in: 1...UInt64.max), verifyFraction: verifyFraction)
    }

    /// The element type of the job's values, as the journal and logs name it (`float32`, `float64`).
    public var dtypeName: String { "\(spec.dtype)" }
}

extension ScoringCoordinator {
    /// A coordinator that scores with `model`'s parameters (see the designated initialiser).
    public convenience init<S: FlowScalar>(
        job: ScoringStateMachine.Job, model: RealNVP<S>, input: ScoringInput, journal: ScoreJournal, output: ScoreOutputWriter,
        bind endpoint: String, security: ClusterSecurity.Server? = nil, log: @escaping (String) -> Void = { _ in }
    ) {
        self.init(
            job: job, input: input, parameters: WireVector(model.parameters)!, journal: journal, output: output, bind: endpoint,
            security: security, log: log)
    }
}
