import Dispatch
import FlowRandom

extension RealNVP {
    /// `log p(x)` (and optionally `z`) for `rows` rows on `workspaces.count` threads.
    ///
    /// Rows are cut into chunks of `workspaces[0].capacity` rows at fixed offsets, and thread `t`
    /// evaluates chunks `t, t + T, …` with workspace `t` (BLAS should be single-threaded). A
    /// chunk's products have the same shapes whatever `T` is, so the result's bits do not depend
    /// on the number of threads. All workspaces must have the same capacity.
    public func logProbability(
        _ x: UnsafePointer<Scalar>, rows: Int, into out: UnsafeMutablePointer<Scalar>,
        latent: UnsafeMutablePointer<Scalar>?, workspaces: [InferenceWorkspace<Scalar>]
    ) {
        precondition(!workspaces.isEmpty, "no workspaces")
        let chunk = workspaces[0].capacity
        precondition(workspaces.allSatisfy { $0.capacity == chunk }, "workspaces of different capacities")
        let D = configuration.dimension
        let chunks = (rows + chunk - 1) / chunk
        let threads = min(workspaces.count, chunks)
        guard threads > 1 else {
            logProbability(x, rows: rows, into: out, latent: latent, workspace: workspaces[0])
            return
        }
        let io = ParallelBuffers(input: x, output: out, latent: latent)
        let lanes = WorkspaceList(workspaces: workspaces)
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var c = t
            while c < chunks {
                let start = c * chunk
                let n = min(chunk, rows - start)
                self.logProbability(
                    io.input + start * D, rows: n, into: io.output + start, latent: io.latent.map { $0 + start * D },
                    workspace: lanes.workspaces[t])
                c += threads
            }
        }
    }

    /// `rows` samples and their log-densities on `workspaces.count` threads. The base noise is
    /// drawn from `generator` in row order exactly as the one-workspace `sample` draws it, so the
    /// samples do not depend on the number of threads.
    public func sample(
        rows: Int, generator: inout SeededGenerator, into x: UnsafeMutablePointer<Scalar>,
        logProbability out: UnsafeMutablePointer<Scalar>, workspaces: [InferenceWorkspace<Scalar>]
    ) {
        precondition(!workspaces.isEmpty, "no workspaces")
        let chunk = workspaces[0].capacity
        precondition(workspaces.allSatisfy { $0.capacity == chunk }, "workspaces of different capacities")
        let D = configuration.dimension
        let chunks = (rows + chunk - 1) / chunk
        let threads = min(workspaces.count, chunks)
        guard threads > 1 else {
            sample(rows: rows, generator: &generator, into: x, logProbability: out, workspace: workspaces[0])
            return
        }
        let io = ParallelBuffers(input: UnsafePointer(x), output: out, latent: x)
        let lanes = WorkspaceList(workspaces: workspaces)
        var first = 0
        while first < chunks {
            let wave = min(threads, chunks - first)
            // Noise in row order, one chunk per workspace, drawn on this thread.
            for t in 0..<wave {
                let n = min(chunk, rows - (first + t) * chunk)
                let z = workspaces[t].noise.pointer
                for i in 0..<(n * D) { z[i] = Scalar(generator.normal()) }
            }
            let base = first
            DispatchQueue.concurrentPerform(iterations: wave) { t in
                let start = (base + t) * chunk
                let n = min(chunk, rows - start)
                self.completeSample(rows: n, into: io.latent! + start * D, logProbability: io.output + start, workspace: lanes.workspaces[t])
            }
            first += wave
        }
    }
}

/// Pointers shared by the iterations of `concurrentPerform`, each writing disjoint rows.
///
/// `@unchecked Sendable`: the input is not written while the iterations run, every iteration
/// writes its own row range of the outputs, and none of the pointers outlives the call.
struct ParallelBuffers<Scalar>: @unchecked Sendable {
    let input: UnsafePointer<Scalar>
    let output: UnsafeMutablePointer<Scalar>
    let latent: UnsafeMutablePointer<Scalar>?
}

/// Workspaces handed to parallel iterations; `@unchecked Sendable` because iteration `t` uses
/// only `workspaces[t]`.
struct WorkspaceList<Scalar: FlowScalar>: @unchecked Sendable {
    let workspaces: [InferenceWorkspace<Scalar>]
}
