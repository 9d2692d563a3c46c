/// Preallocated buffers for the NLL gradient of one micro-batch of up to `capacity` rows.
///
/// Holds every activation the backward pass needs — each coupling's input, each hidden layer's
/// post-ReLU output, σ = tanh(s̃) and exp(σ) — plus the backward temporaries. After `init`, a
/// gradient computation allocates nothing. Not thread-safe: one per thread.
///
/// Size in scalars: `capacity × ((K+1)·D + K·depth·H + 2K·(D−d) + 2D + 2(D−d)·2 + 2H + 1)`.
public final class GradientWorkspace<Scalar: FlowScalar> {
    /// The largest micro-batch this workspace can process.
    public let capacity: Int
    let configuration: FlowConfiguration
    /// `states[l]` is the input of coupling `l` (`states[K]` is `z`), `capacity × D` each.
    let states: [ScratchBuffer<Scalar>]
    /// `hidden[l][k]` is hidden layer `k`'s post-ReLU output in coupling `l`, `capacity × H`.
    let hidden: [[ScratchBuffer<Scalar>]]
    /// σ and exp(σ) of each coupling, `capacity × (D−d)`.
    let sigma: [ScratchBuffer<Scalar>]
    let expSigma: [ScratchBuffer<Scalar>]
    let netOutput: ScratchBuffer<Scalar>
    let logDet: ScratchBuffer<Scalar>
    let logProb: ScratchBuffer<Scalar>
    let gradStateA: ScratchBuffer<Scalar>
    let gradStateB: ScratchBuffer<Scalar>
    let gradNet: ScratchBuffer<Scalar>
    let gradHiddenA: ScratchBuffer<Scalar>
    let gradHiddenB: ScratchBuffer<Scalar>

    /// Buffers for `configuration` and micro-batches of up to `capacity` rows (at least 1).
    public init(configuration: FlowConfiguration, capacity: Int) {
        let n = max(1, capacity)
        self.capacity = n
        self.configuration = configuration
        let D = configuration.dimension
        let e = configuration.transformedWidth
        let H = configuration.hidden
        let K = configuration.couplings
        states = (0...K).map { _ in ScratchBuffer(count: n * D) }
        hidden = (0..<K).map { _ in (0..<configuration.depth).map { _ in ScratchBuffer(count: n * H) } }
        sigma = (0..<K).map { _ in ScratchBuffer(count: n * e) }
        expSigma = (0..<K).map { _ in ScratchBuffer(count: n * e) }
        netOutput = ScratchBuffer(count: n * 2 * e)
        logDet = ScratchBuffer(count: n)
        logProb = ScratchBuffer(count: n)
        gradStateA = ScratchBuffer(count: n * D)
        gradStateB = ScratchBuffer(count: n * D)
        gradNet = ScratchBuffer(count: n * 2 * e)
        gradHiddenA = ScratchBuffer(count: n * H)
        gradHiddenB = ScratchBuffer(count: n * H)
    }

    /// Bytes held by the buffers (for memory reports).
    public var byteCount: Int {
        let all = states + hidden.flatMap { $0 } + sigma + expSigma
            + [netOutput, logDet, logProb, gradStateA, gradStateB, gradNet, gradHiddenA, gradHiddenB]
        return all.reduce(0) { $0 + $1.count } * MemoryLayout<Scalar>.stride
    }
}
