import FlowData
import FlowWire
import Flows

/// The math of a worker for a scoring job: builds the model from the `jobSpec` and the
/// `parameters` it is sent, and scores chunks with ``ChunkScorer`` — the code `tributary score`
/// runs in one process — so a chunk's bits do not depend on where it was computed.
final class WorkerScoringEngine {
    let spec: WireMessage.JobSpec
    let wantLatent: Bool
    private let configuration: FlowConfiguration
    private let threads: Int
    private var scorer: ChunkScorer?

    init(spec: WireMessage.JobSpec, threads: Int) throws {
        guard case .scoring(let scoring) = spec.mode else { throw TrainingError.invalidData("not a scoring job") }
        self.spec = spec
        wantLatent = scoring.wantLatent
        self.threads = max(1, threads)
        configuration = try spec.flowConfiguration()
    }

    /// Builds the model from `parameters`; false when they do not fit the job (wrong dtype or length).
    func setParameters(_ parameters: WireMessage.Parameters) -> Bool {
        switch parameters.values {
        case .float32(let values): scorer = make(values).map { ChunkScorer(model: $0, threads: threads) }
        case .float64(let values): scorer = make(values).map { ChunkScorer(model: $0, threads: threads) }
        }
        return scorer != nil
    }

    private func make<S: FlowScalar>(_ values: [S]) -> RealNVP<S>? {
        guard spec.dtype == (S.self == Float.self ? .float32 : .float64) else { return nil }
        var standardization: Standardization<S>?
        if let s = spec.standardization {
            guard let mean = s.mean.elements(as: S.self), let std = s.std.elements(as: S.self),
                  let fitted = try? Standardization(mean: mean, std: std)
            else { return nil }
            standardization = fitted
        }
        return try? RealNVP(configuration: configuration, parameters: values, standardization: standardization)
    }

    /// Scores a chunk and returns the `scoreResult` (or `error`); `between` is called
    /// between slices of the work (the driver heartbeats there). `corrupt` (a test hook) moves
    /// the first finite log-prob by one ulp, as a faulty worker would.
    func score(_ chunk: WireMessage.ScoreChunk, corrupt: Bool = false, between: () -> Void) -> WireMessage {
        guard let scorer else {
            return .error(.init(code: .missingParameters, jobID: spec.jobID, item: chunk.chunk, message: "no parameters"))
        }
        guard Int(chunk.dimension) == scorer.dimension, chunk.values.dtype == scorer.dtype else {
            return .error(.init(
                code: .badMessage, jobID: spec.jobID, item: chunk.chunk,
                message: "chunk of dimension \(chunk.dimension) in \(chunk.values.dtype); the job is \(scorer.dimension) in \(scorer.dtype)"))
        }
        let started = MonotonicClock.seconds()
        var scored = scorer.score(chunk.values, rows: Int(chunk.rowCount), firstRow: Int(chunk.firstRow), wantLatent: wantLatent, between: between)
        if corrupt, let r = scored.statuses.firstIndex(of: .ok) {
            switch scored.logProbs {
            case .float32(var v): v[r] = v[r].nextUp; scored.logProbs = .float32(v)
            case .float64(var v): v[r] = v[r].nextUp; scored.logProbs = .float64(v)
            }
        }
        return .scoreResult(.init(
            jobID: spec.jobID, chunk: chunk.chunk, firstRow: chunk.firstRow, rowCount: chunk.rowCount,
            statuses: scored.statuses, logProbs: scored.logProbs,
            latent: scored.latent.map { .init(dimension: chunk.dimension, values: $0) },
            computeSeconds: max(0, MonotonicClock.seconds() - started)))
    }
}
