import FlowData
import FlowWire
import Flows

/// The computation of one scoring chunk — log p(x), a status per row and optionally z = f(x) —
/// shared by `tributary score` in one process and by workers of a scoring cluster, so that both
/// produce the same bits for every row whatever the chunk size (same code, blocks at absolute
/// row positions, one BLAS thread per lane).
///
/// Rules per row: a row holding NaN or ±∞ gets status `nonFiniteInput`; a finite row whose
/// log-density comes out non-finite gets `nonFiniteResult`; every row whose status is not `ok`
/// has log-prob NaN (never a silent number). The caller marks rows its reader found malformed
/// (``ScoredChunk/markMalformed(_:)``).
public final class ChunkScorer {
    private enum Model {
        case float32(RealNVP<Float>, [InferenceWorkspace<Float>])
        case float64(RealNVP<Double>, [InferenceWorkspace<Double>])
    }

    private let model: Model
    /// Values per row.
    public let dimension: Int
    /// The dtype the chunk is computed in (the model's).
    public let dtype: WireDType

    /// A scorer for a float32 model on `threads` lanes (the bits do not depend on `threads`).
    public init(model: RealNVP<Float>, threads: Int = 1) {
        self.model = .float32(model, Self.workspaces(model, threads))
        dimension = model.dimension
        dtype = .float32
    }

    /// A scorer for a float64 model on `threads` lanes (the bits do not depend on `threads`).
    public init(model: RealNVP<Double>, threads: Int = 1) {
        self.model = .float64(model, Self.workspaces(model, threads))
        dimension = model.dimension
        dtype = .float64
    }

    private static func workspaces<S: FlowScalar>(_ model: RealNVP<S>, _ threads: Int) -> [InferenceWorkspace<S>] {
        (0..<max(1, threads)).map { _ in InferenceWorkspace<S>(configuration: model.configuration, capacity: 1024) }
    }

    /// Converts rows read from a file (`Double`) to the vector a chunk travels in: each value
    /// rounded to the model's dtype. Both paths convert with this function.
    public func encode(_ values: [Double]) -> WireVector { Self.encode(values, dtype: dtype) }

    /// ``encode(_:)`` for a dtype.
    public static func encode(_ values: [Double], dtype: WireDType) -> WireVector {
        switch dtype {
        case .float32: return .float32(values.map { Float($0) })
        case .float64: return .float64(values)
        }
    }

    /// Scores `rows` rows of `values` (row-major, `rows × dimension`, in the model's dtype):
    /// rows `firstRow ..< firstRow + rows` of the input file.
    ///
    /// The rows are evaluated in blocks at absolute row positions of the file (multiples of the
    /// workspaces' 1024 rows, see ``RealNVP/logProbability(_:rows:firstRow:into:latent:workspaces:between:)``),
    /// so a row's bits do not depend on the chunk it travels in, on the thread count or on
    /// the process. `between` is called between groups of blocks: a worker heartbeats there
    /// during a long chunk.
    ///
    /// - Precondition: `values.count == rows * dimension`, `values.dtype == dtype`, `firstRow >= 0`.
    public func score(_ values: WireVector, rows: Int, firstRow: Int, wantLatent: Bool, between: () -> Void = {}) -> ScoredChunk {
        precondition(values.count == rows * dimension && values.dtype == dtype, "ChunkScorer.score: wrong shape or dtype")
        switch (model, values) {
        case (.float32(let flow, let workspaces), .float32(let x)):
            let (statuses, lp, z) = Self.compute(flow, workspaces, x, rows: rows, firstRow: firstRow, wantLatent: wantLatent, between: between)
            return ScoredChunk(statuses: statuses, logProbs: .float32(lp), latent: z.map { .float32($0) })
        case (.float64(let flow, let workspaces), .float64(let x)):
            let (statuses, lp, z) = Self.compute(flow, workspaces, x, rows: rows, firstRow: firstRow, wantLatent: wantLatent, between: between)
            return ScoredChunk(statuses: statuses, logProbs: .float64(lp), latent: z.map { .float64($0) })
        default:
            preconditionFailure("ChunkScorer.score: dtype mismatch")
        }
    }

    private static func compute<S: FlowScalar>(
        _ flow: RealNVP<S>, _ workspaces: [InferenceWorkspace<S>], _ x: [S], rows: Int, firstRow: Int, wantLatent: Bool,
        between: () -> Void
    ) -> ([WireRowStatus], [S], [S]?) {
        let D = flow.dimension
        var lp = [S](repeating: 0, count: rows)
        var z: [S]? = wantLatent ? [S](repeating: 0, count: rows * D) : nil
        x.withUnsafeBufferPointer { input in
            lp.withUnsafeMutableBufferPointer { out in
                if z != nil {
                    z!.withUnsafeMutableBufferPointer { latent in
                        flow.logProbability(
                            input.baseAddress!, rows: rows, firstRow: firstRow, into: out.baseAddress!,
                            latent: latent.baseAddress!, workspaces: workspaces, between: between)
                    }
                } else {
                    flow.logProbability(
                        input.baseAddress!, rows: rows, firstRow: firstRow, into: out.baseAddress!, latent: nil,
                        workspaces: workspaces, between: between)
                }
            }
        }
        var statuses = [WireRowStatus](repeating: .ok, count: rows)
        for r in 0..<rows {
            var finiteRow = true
            for j in 0..<D where !x[r * D + j].isFinite {
                finiteRow = false
                break
            }
            if !finiteRow {
                statuses[r] = .nonFiniteInput
                lp[r] = .nan
            } else if !lp[r].isFinite {
                statuses[r] = .nonFiniteResult
                lp[r] = .nan
            }
        }
        return (statuses, lp, z)
    }
}

/// The result of scoring one chunk, in the job's dtype.
public struct ScoredChunk: Sendable, Equatable {
    /// One status per row.
    public var statuses: [WireRowStatus]
    /// One log-density per row; NaN exactly where the status is not `ok`.
    public var logProbs: WireVector
    /// z = f(x), row-major, when asked for.
    public var latent: WireVector?

    /// A scored chunk with the given fields.
    public init(statuses: [WireRowStatus], logProbs: WireVector, latent: WireVector?) {
        self.statuses = statuses
        self.logProbs = logProbs
        self.latent = latent
    }

    /// Sets the status of `rows` (indices within the chunk) to `malformedInput`; their
    /// log-probs are already NaN (a malformed row is read as a row of NaN).
    public mutating func markMalformed(_ rows: [Int]) {
        for r in rows where r >= 0 && r < statuses.count { statuses[r] = .malformedInput }
    }
}
