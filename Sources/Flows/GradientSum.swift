/// The sum of one step's micro-batch results in the order of the reduction tree, and the
/// optimiser update that follows — the rule that makes training independent of who computed what.
///
/// A step's gradient is the value of its tree's root divided by its rows (`ReductionTree` in
/// FlowData defines the tree): values are pushed in tree order (by shard), either one
/// micro-batch at a time (`add(microBatchOf:…)`: consecutive micro-batches of one shard are
/// summed left to right, the first copied — or taken, `add(microBatchOf:taking:…)`) or as the
/// finished value of a whole node (`add(nodeAt:…)`, e.g. a worker's partial; an owner's
/// `fold(borrowing:_:)` reads them in place). Two neighbouring values are added as soon as the
/// next value falls outside the smallest aligned block that holds both — the tree's addition for
/// that block — so the result is the root's value whatever mix of micro-batches and nodes was
/// pushed. Single-process training, the workers and the coordinator all use this type, so their
/// parameters agree bit for bit. Scratch space is at most ⌈log2 S⌉ + 2 vectors, kept across steps.
public struct GradientSum<Scalar: FlowScalar>: Sendable {
    /// A pushed value: its block's shards (any shard of the block will do for the fold), its
    /// loss, whether more micro-batches of its shard may still be added, what is known of its
    /// finiteness, and — for a node read where it lies (`fold(borrowing:_:)`) — its address.
    ///
    /// `@unchecked Sendable`: `borrowed` is set only inside `fold(borrowing:_:)`, which clears
    /// it before returning, so a sum that leaves its owner never holds one.
    private struct Entry: @unchecked Sendable {
        var first: Int
        var lossSum: Double
        var open: Bool
        /// true: every value is finite; false: one is not; nil: not known (not tested).
        var finite: Bool? = nil
        /// The value's address when it is read in place; nil when it is in `buffers`.
        var borrowed: UnsafePointer<Scalar>? = nil
    }

    /// Vectors; stack entry `i`, unless borrowed, lives in `buffers[i]`.
    private var buffers: [[Scalar]] = []
    private var stack: [Entry] = []
    private let parameterCount: Int
    private var finished = false
    /// Rows added so far.
    public private(set) var rows: Int = 0
    /// Micro-batches added so far (a node adds the micro-batches it holds).
    public private(set) var microBatches: Int = 0

    /// An empty sum for `parameterCount` parameters.
    public init(parameterCount: Int) {
        self.parameterCount = parameterCount
        buffers = [[Scalar](repeating: 0, count: parameterCount)]
        stack.reserveCapacity(40)
    }

    /// Clears the sum for the next step (no allocation).
    public mutating func reset() {
        stack.removeAll(keepingCapacity: true)
        finished = false
        rows = 0
        microBatches = 0
    }

    /// Adds a micro-batch of shard `shard` (its summed gradient, loss sum and rows). Shards come in
    /// tree order; micro-batches of the same shard in slot order, one after the other.
    public mutating func add(microBatchOf shard: Int, gradient g: UnsafePointer<Scalar>, lossSum: Double, rows: Int) {
        precondition(!finished, "GradientSum: add after finish")
        if !addToOpen(shard: shard, gradient: g, lossSum: lossSum) {
            push(first: shard, gradient: g, lossSum: lossSum, open: true)
        }
        self.rows += rows
        microBatches += 1
    }

    /// Adds a micro-batch as `add(microBatchOf:gradient:lossSum:rows:)` does, taking the storage
    /// of `gradient` when the micro-batch starts a new value: the array is swapped into the sum
    /// instead of copied, and `gradient` gets back a spare array of the same length whose
    /// contents are unspecified (a gradient kernel overwrites it). The same bits, one pass over
    /// memory fewer.
    public mutating func add(microBatchOf shard: Int, taking gradient: inout [Scalar], lossSum: Double, rows: Int) {
        precondition(!finished, "GradientSum: add after finish")
        precondition(gradient.count == parameterCount, "micro-batch gradient length \(gradient.count) ≠ \(parameterCount)")
        let added = gradient.withUnsafeBufferPointer { addToOpen(shard: shard, gradient: $0.baseAddress!, lossSum: lossSum) }
        if !added {
            prepareToPush(first: shard)
            let depth = stack.count
            if depth == buffers.count {
                buffers.append(gradient)
                gradient = [Scalar](repeating: 0, count: parameterCount)
            } else {
                swap(&buffers[depth], &gradient)
            }
            stack.append(Entry(first: shard, lossSum: lossSum, open: true))
        }
        self.rows += rows
        microBatches += 1
    }

    /// Adds the finished value of a node whose block starts at shard `firstShard` (gradient, loss
    /// sum, rows, and the micro-batches it holds), in tree order.
    public mutating func add(nodeAt firstShard: Int, gradient g: UnsafePointer<Scalar>, lossSum: Double, rows: Int, microBatches: Int) {
        precondition(!finished, "GradientSum: add after finish")
        push(first: firstShard, gradient: g, lossSum: lossSum, open: false)
        self.rows += rows
        self.microBatches += microBatches
    }

    /// Adds a micro-batch given as an array (see `add(microBatchOf:gradient:lossSum:rows:)`).
    public mutating func add(microBatchOf shard: Int, gradient g: [Scalar], lossSum: Double, rows: Int) {
        precondition(g.count == parameterCount, "micro-batch gradient length \(g.count) ≠ \(parameterCount)")
        g.withUnsafeBufferPointer { add(microBatchOf: shard, gradient: $0.baseAddress!, lossSum: lossSum, rows: rows) }
    }

    /// A node's finished value for ``fold(borrowing:_:)``, read where it lies.
    public struct BorrowedNode {
        /// The first shard of the node's block.
        public var firstShard: Int
        /// The node's value (`parameterCount` elements).
        public var values: ArraySlice<Scalar>
        /// The node's loss sum.
        public var lossSum: Double
        /// The node's rows.
        public var rows: Int
        /// The micro-batches the node holds.
        public var microBatches: Int

        /// A node value to fold.
        public init(firstShard: Int, values: ArraySlice<Scalar>, lossSum: Double, rows: Int, microBatches: Int) {
            self.firstShard = firstShard
            self.values = values
            self.lossSum = lossSum
            self.rows = rows
            self.microBatches = microBatches
        }
    }

    /// Folds finished node values, given in tree order, reading each where it lies instead of
    /// copying it in first, and lends `body` the root with its loss sum and rows; the sum is reset
    /// afterwards. The bits are those of `add(nodeAt:…)` for each node then `finish()`: two
    /// values are added by one pass that writes their sum (`FlatVector.sum`), and a single node
    /// is lent as it is, so a fold of n nodes costs n − 1 passes where copying them in cost 2n − 1.
    public mutating func fold<R>(
        borrowing nodes: [BorrowedNode], _ body: (_ root: UnsafeBufferPointer<Scalar>, _ lossSum: Double, _ rows: Int) -> R
    ) -> R {
        precondition(parameterCount > 0, "GradientSum: a borrowed fold of empty vectors")
        reset()
        defer { reset() }
        return foldBorrowed(nodes, from: 0, body)
    }

    private mutating func foldBorrowed<R>(
        _ nodes: [BorrowedNode], from index: Int, _ body: (UnsafeBufferPointer<Scalar>, Double, Int) -> R
    ) -> R {
        guard index < nodes.count else {
            finish()
            let lossSum = self.lossSum, rows = self.rows
            return withGradient { body($0, lossSum, rows) }
        }
        let node = nodes[index]
        precondition(node.values.count == parameterCount, "GradientSum: node value of \(node.values.count) elements, not \(parameterCount)")
        return node.values.withUnsafeBufferPointer { values in
            prepareToPush(first: node.firstShard)
            stack.append(Entry(first: node.firstShard, lossSum: node.lossSum, open: false, borrowed: values.baseAddress!))
            rows += node.rows
            microBatches += node.microBatches
            return foldBorrowed(nodes, from: index + 1, body)
        }
    }

    /// Completes the fold: afterwards `gradient` and `lossSum` are the root's. Idempotent.
    public mutating func finish() {
        guard !finished else { return }
        collapse(before: nil)
        finished = true
    }

    /// The sum (after `finish`; zeros when nothing was added).
    public var gradient: [Scalar] {
        precondition(finished, "GradientSum: read before finish")
        if stack.isEmpty { return [Scalar](repeating: 0, count: parameterCount) }
        if let borrowed = stack[0].borrowed { return Array(UnsafeBufferPointer(start: borrowed, count: parameterCount)) }
        return buffers[0]
    }

    /// The loss sum `Σ −log p`, in `Double` (after `finish`).
    public var lossSum: Double {
        precondition(finished, "GradientSum: read before finish")
        return stack.first?.lossSum ?? 0
    }

    /// Whether nothing was added since the last reset.
    public var isEmpty: Bool { stack.isEmpty }

    /// Whether every value of the finished sum is finite. Known without another pass when the
    /// root was written by an addition (each tests its results as it writes them); otherwise
    /// tested once and remembered.
    public mutating func isFinite() -> Bool {
        precondition(finished, "GradientSum: read before finish")
        guard !stack.isEmpty else { return true }
        if let known = stack[0].finite { return known }
        let finite = withGradient { FlatVector.firstNonFinite($0.baseAddress!, count: $0.count) == nil }
        stack[0].finite = finite
        return finite
    }

    /// Adds `g` to the top value when it is the open value of shard `shard`; false otherwise.
    private mutating func addToOpen(shard: Int, gradient g: UnsafePointer<Scalar>, lossSum: Double) -> Bool {
        guard let top = stack.last, top.open, top.first == shard else { return false }
        let depth = stack.count - 1
        let count = parameterCount
        let finite = buffers[depth].withUnsafeMutableBufferPointer { FlatVector.add(g, into: $0.baseAddress!, count: count) }
        stack[depth].lossSum += lossSum
        stack[depth].finite = finite
        return true
    }

    /// Closes the top value and adds what the next value (shard `first`) completes.
    private mutating func prepareToPush(first: Int) {
        if !stack.isEmpty { stack[stack.count - 1].open = false }
        collapse(before: first)
        while buffers.count <= stack.count { buffers.append([Scalar](repeating: 0, count: parameterCount)) }
    }

    private mutating func push(first: Int, gradient g: UnsafePointer<Scalar>, lossSum: Double, open: Bool) {
        prepareToPush(first: first)
        let depth = stack.count
        buffers[depth].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: g, count: parameterCount) }
        stack.append(Entry(first: first, lossSum: lossSum, open: open))
    }

    /// Adds the top two values while the next value (`next`, a shard; nil: none) lies outside the
    /// smallest aligned block holding both. The sum x + y is written to x's buffer.
    private mutating func collapse(before next: Int?) {
        while stack.count >= 2 {
            let x = stack[stack.count - 2], y = stack[stack.count - 1]
            let level = Int.bitWidth - (x.first ^ y.first).leadingZeroBitCount
            if let next, next >> level == y.first >> level { return }
            let depth = stack.count - 1
            let count = parameterCount
            let finite: Bool
            switch (x.borrowed, y.borrowed) {
            case (nil, nil):
                finite = buffers[depth].withUnsafeBufferPointer { top in
                    buffers[depth - 1].withUnsafeMutableBufferPointer { FlatVector.add(top.baseAddress!, into: $0.baseAddress!, count: count) }
                }
            case (nil, let top?):
                finite = buffers[depth - 1].withUnsafeMutableBufferPointer { FlatVector.add(top, into: $0.baseAddress!, count: count) }
            case (let below?, nil):
                finite = buffers[depth].withUnsafeBufferPointer { top in
                    buffers[depth - 1].withUnsafeMutableBufferPointer { FlatVector.sum(below, top.baseAddress!, into: $0.baseAddress!, count: count) }
                }
            case (let below?, let top?):
                finite = buffers[depth - 1].withUnsafeMutableBufferPointer { FlatVector.sum(below, top, into: $0.baseAddress!, count: count) }
            }
            stack[depth - 1] = Entry(first: x.first, lossSum: x.lossSum + y.lossSum, open: false, finite: finite)
            stack.removeLast()
        }
    }
}

/// What one optimiser update did.
public struct StepOutcome: Sendable, Equatable {
    /// Mean NLL of the step's rows (`lossSum / rows`), before the update.
    public var meanLoss: Double
    /// Norm of the mean gradient before clipping.
    public var gradientNorm: Double
    /// Whether clipping scaled the gradient.
    public var clipped: Bool
}

extension AdamOptimizer {
    /// Turns `sum` into the mean gradient (dividing by its row count), refuses it if the loss or
    /// any gradient entry is NaN/±∞ (throwing `FlowError.nonFinite`, parameters untouched),
    /// clips it to `clipNorm` when given, and applies one Adam update to `parameters`.
    ///
    /// `sum` is left holding the mean (clipped) gradient; call `reset()` before the next step.
    /// `step` is the 0-based index of the step being taken (the steps done before it); errors
    /// name it 1-based, as progress reports count (`step 1` is the first update).
    /// `learningRate` is this step's rate (a ``LearningRateSchedule``'s value at `step`); `nil`
    /// uses the optimiser's `learningRate`.
    public mutating func apply(
        _ sum: inout GradientSum<Scalar>, to parameters: inout [Scalar], clipNorm: Double?, step: Int, learningRate: Double? = nil
    ) throws(FlowError) -> StepOutcome {
        sum.finish()
        let rows = sum.rows, lossSum = sum.lossSum
        var result: Result<StepOutcome, FlowError> = .failure(.shapeMismatch(what: "rows in step \(step)", expected: 1, found: 0))
        if rows > 0 {
            sum.withGradientPointer { g in
                result = Result { () throws(FlowError) in
                    try Self.prepareMeanGradient(g, count: parameters.count, rows: rows, lossSum: lossSum, clipNorm: clipNorm, step: step)
                }
            }
        }
        let outcome = try result.get()
        let rate = learningRate ?? self.learningRate
        sum.withGradientPointer { update(parameters: &parameters, gradient: $0, learningRate: rate) }
        return outcome
    }
}

extension AdamOptimizer {
    /// The part of ``apply(_:to:clipNorm:step:learningRate:)`` before the update, on a step's
    /// summed gradient `g` (`count` values, the root of the step's tree) over `rows` rows with
    /// loss sum `lossSum`: turns it into the mean gradient in place, refuses NaN/±∞ (throwing
    /// `FlowError.nonFinite`), measures the segmented norm and clips to `clipNorm` when given.
    /// Whoever holds a step's whole sum — one process, the coordinator, every worker of the
    /// sharded exchange — gets the same bits from it.
    public static func prepareMeanGradient(
        _ g: UnsafeMutablePointer<Scalar>, count: Int, rows: Int, lossSum: Double, clipNorm: Double?, step: Int
    ) throws(FlowError) -> StepOutcome {
        let meanLoss = try Self.meanLoss(lossSum: lossSum, rows: rows, step: step)
        // One pass: divide, look for NaN/±∞, measure the norm segment by segment (ParameterSegments).
        let (norm, bad) = ParameterSegments.divideAndMeasure(g, count: count, by: Scalar(rows))
        return try finishMeanGradient(g, count: count, meanLoss: meanLoss, norm: norm, firstNonFinite: bad, clipNorm: clipNorm, step: step)
    }

    /// A step's mean loss, refused (as ``prepareMeanGradient(_:count:rows:lossSum:clipNorm:step:)``
    /// refuses it) when there are no rows or it is NaN/±∞.
    public static func meanLoss(lossSum: Double, rows: Int, step: Int) throws(FlowError) -> Double {
        guard rows > 0 else { throw .shapeMismatch(what: "rows in step \(step)", expected: 1, found: 0) }
        let meanLoss = lossSum / Double(rows)
        guard meanLoss.isFinite else { throw .nonFinite(what: "the loss (\(meanLoss))", step: step + 1) }
        return meanLoss
    }

    /// The part of ``prepareMeanGradient(_:count:rows:lossSum:clipNorm:step:)`` after its
    /// measuring pass, for a caller that divided and measured `g` itself (a worker of the sharded
    /// exchange does it as each owner's fold arrives, `ParameterSegments.Shares`): refuses a
    /// non-finite entry, then clips.
    public static func finishMeanGradient(
        _ g: UnsafeMutablePointer<Scalar>, count: Int, meanLoss: Double, norm: Double, firstNonFinite bad: Int?, clipNorm: Double?, step: Int
    ) throws(FlowError) -> StepOutcome {
        if let bad { throw .nonFinite(what: "gradient entry \(bad)", step: step + 1) }
        var outcome = StepOutcome(meanLoss: meanLoss, gradientNorm: norm, clipped: false)
        if let clipNorm {
            // PyTorch's clip_grad_norm_ (FlatVector.clipNorm with the norm already known).
            let factor = clipNorm / (norm + 1e-6)
            if factor < 1 { FlatVector.scale(g, count: count, by: Scalar(factor)) }
            outcome.clipped = norm > clipNorm
        }
        return outcome
    }
}

extension GradientSum {
    /// Lends the finished sum (the root's vector) without copying it.
    public mutating func withGradient<R>(_ body: (UnsafeBufferPointer<Scalar>) throws -> R) rethrows -> R {
        precondition(finished && !stack.isEmpty, "GradientSum: read before finish")
        if let borrowed = stack[0].borrowed { return try body(UnsafeBufferPointer(start: borrowed, count: parameterCount)) }
        return try buffers[0].withUnsafeBufferPointer(body)
    }

    /// The finished sum's storage (the root's vector), to change in place.
    mutating func withGradientPointer(_ body: (UnsafeMutablePointer<Scalar>) -> Void) {
        precondition(finished && !stack.isEmpty, "GradientSum: read before finish")
        if let borrowed = stack[0].borrowed {
            let count = parameterCount
            buffers[0].withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: borrowed, count: count) }
            stack[0].borrowed = nil
        }
        stack[0].finite = nil
        buffers[0].withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    }
}
