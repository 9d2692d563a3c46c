import Dispatch

extension RealNVP {
    /// `log p(x)` (and optionally `z = f(x)`) for rows `firstRow ..< firstRow + rows` of a larger
    /// table, with bits that depend only on each row — not on where the caller's slice starts or
    /// ends, nor on `workspaces.count`.
    ///
    /// Why: a BLAS product may give a row different bits depending on the row's position in the
    /// M dimension of the product (kernel unrolling in groups of rows, the remainder tail) and on
    /// M itself. So the table is cut into **blocks at absolute row positions**: block `k` covers
    /// table rows `k·B ..< (k+1)·B`, `B = workspaces[0].capacity`, and every block is evaluated as
    /// one product of exactly `B` rows, each row at its position `r mod B` in the block. Rows of a
    /// block that the slice does not hold (before `firstRow`, after its end, past the end of the
    /// table) are zeros whose results are discarded; rows never mix, so they do not touch the
    /// others' bits. Every block goes through the workspace's staging buffer, so the products
    /// also see the same pointers and strides whoever calls.
    ///
    /// Cost: a slice that does not start and end on multiples of `B` evaluates up to `2B` padding
    /// rows; slices of a multiple of `B` rows starting on one evaluate none (beyond the last block).
    ///
    /// Thread `t` evaluates blocks `t, t + T, …` of the slice with workspace `t` (BLAS should be
    /// single-threaded). `between` is called on this thread after each group of
    /// `4 × workspaces.count` blocks except the last (a worker heartbeats there).
    ///
    /// - Precondition: all workspaces have the same capacity; `firstRow >= 0`.
    public func logProbability(
        _ x: UnsafePointer<Scalar>, rows: Int, firstRow: Int, into out: UnsafeMutablePointer<Scalar>,
        latent: UnsafeMutablePointer<Scalar>?, workspaces: [InferenceWorkspace<Scalar>], between: () -> Void = {}
    ) {
        precondition(!workspaces.isEmpty, "no workspaces")
        precondition(firstRow >= 0, "negative first row")
        let B = workspaces[0].capacity
        precondition(workspaces.allSatisfy { $0.capacity == B }, "workspaces of different capacities")
        guard rows > 0 else { return }
        let firstBlock = firstRow / B
        let blocks = (firstRow + rows - 1) / B - firstBlock + 1
        let io = ParallelBuffers(input: x, output: out, latent: latent)
        let lanes = WorkspaceList(workspaces: workspaces)
        let group = 4 * workspaces.count
        var done = 0
        while done < blocks {
            let count = min(group, blocks - done)
            let threads = min(workspaces.count, count)
            let base = done
            if threads == 1 {
                for b in 0..<count {
                    evaluateBlock(firstBlock + base + b, of: io, rows: rows, firstRow: firstRow, workspace: workspaces[0])
                }
            } else {
                DispatchQueue.concurrentPerform(iterations: threads) { t in
                    var b = t
                    while b < count {
                        self.evaluateBlock(firstBlock + base + b, of: io, rows: rows, firstRow: firstRow, workspace: lanes.workspaces[t])
                        b += threads
                    }
                }
            }
            done += count
            if done < blocks { between() }
        }
    }

    /// Evaluates absolute block `k` in full (`B` rows, zeros where the slice has no row) and
    /// copies out the rows of the slice `firstRow ..< firstRow + rows` that fall in it.
    private func evaluateBlock(
        _ k: Int, of io: ParallelBuffers<Scalar>, rows: Int, firstRow: Int, workspace ws: InferenceWorkspace<Scalar>
    ) {
        let B = ws.capacity
        let D = configuration.dimension
        let low = max(firstRow, k * B)
        let high = min(firstRow + rows, (k + 1) * B)
        let offset = low - k * B
        let n = high - low
        let staged = ws.blockInput.pointer
        staged.update(repeating: 0, count: offset * D)
        (staged + offset * D).update(from: io.input + (low - firstRow) * D, count: n * D)
        (staged + (offset + n) * D).update(repeating: 0, count: (B - offset - n) * D)
        // `latent: nil` leaves z in `ws.noise`, which the block's forward pass does not otherwise use.
        logProbability(UnsafePointer(staged), rows: B, into: ws.blockOutput.pointer, latent: nil, workspace: ws)
        (io.output + (low - firstRow)).update(from: ws.blockOutput.pointer + offset, count: n)
        if let latent = io.latent {
            (latent + (low - firstRow) * D).update(from: ws.noise.pointer + offset * D, count: n * D)
        }
    }
}
