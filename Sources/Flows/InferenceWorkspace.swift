/// Preallocated buffers for evaluating a flow (forward, inverse, log-density) on up to
/// `capacity` rows at a time. Larger inputs are processed in chunks of `capacity` rows.
///
/// A workspace is not thread-safe: give each thread its own. Its size is
/// `capacity × (4D + 2H + 4(D−d) + 2)` scalars.
public final class InferenceWorkspace<Scalar: FlowScalar> {
    /// The largest number of rows processed in one chunk.
    public let capacity: Int
    let configuration: FlowConfiguration
    let stateA: ScratchBuffer<Scalar>
    let stateB: ScratchBuffer<Scalar>
    let hiddenA: ScratchBuffer<Scalar>
    let hiddenB: ScratchBuffer<Scalar>
    let netOutput: ScratchBuffer<Scalar>
    let logDet: ScratchBuffer<Scalar>
    let noise: ScratchBuffer<Scalar>
    let sigma: ScratchBuffer<Scalar>
    let expSigma: ScratchBuffer<Scalar>
    /// A block's input rows at their positions in the block (``RealNVP/logProbability(_:rows:firstRow:into:latent:workspaces:)``).
    let blockInput: ScratchBuffer<Scalar>
    /// A block's log-densities, before the rows the caller asked for are copied out.
    let blockOutput: ScratchBuffer<Scalar>

    /// Buffers for `configuration` and chunks of up to `capacity` rows (at least 1).
    public init(configuration: FlowConfiguration, capacity: Int = 1024) {
        let n = max(1, capacity)
        self.capacity = n
        self.configuration = configuration
        let D = configuration.dimension
        stateA = ScratchBuffer(count: n * D)
        stateB = ScratchBuffer(count: n * D)
        hiddenA = ScratchBuffer(count: n * configuration.hidden)
        hiddenB = ScratchBuffer(count: n * configuration.hidden)
        netOutput = ScratchBuffer(count: n * 2 * configuration.transformedWidth)
        logDet = ScratchBuffer(count: n)
        noise = ScratchBuffer(count: n * D)
        sigma = ScratchBuffer(count: n * configuration.transformedWidth)
        expSigma = ScratchBuffer(count: n * configuration.transformedWidth)
        blockInput = ScratchBuffer(count: n * D)
        blockOutput = ScratchBuffer(count: n)
    }
}
