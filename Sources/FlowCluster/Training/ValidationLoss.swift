import Flows

/// The validation loss of the trainer and the coordinator: one function, so that
/// `train --workers N` reports the same bits as one process.
public enum ValidationLoss {
    /// Mean NLL (nats per row) of `rows` (row-major, `model.dimension` columns) under `model`,
    /// accumulated in `Double` in row order, or nil when there are no rows. `logProbability`
    /// is scratch of at least one entry per row.
    public static func meanNLL<Scalar: FlowScalar>(
        model: RealNVP<Scalar>, rows: [Scalar], logProbability: inout [Scalar], workspace: InferenceWorkspace<Scalar>
    ) -> Double? {
        let count = rows.count / model.dimension
        guard count > 0 else { return nil }
        precondition(logProbability.count >= count, "scratch of \(logProbability.count) for \(count) rows")
        rows.withUnsafeBufferPointer { x in
            logProbability.withUnsafeMutableBufferPointer { out in
                model.logProbability(x.baseAddress!, rows: count, into: out.baseAddress!, latent: nil, workspace: workspace)
            }
        }
        return logProbability[..<count].reduce(0.0) { $0 - Double($1) } / Double(count)
    }
}
