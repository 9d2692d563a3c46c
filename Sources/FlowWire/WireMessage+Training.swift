extension WireMessage {
    /// `shardRows` (kind 0x04, coordinator → worker): training rows `firstPosition ..<
    /// firstPosition + rowCount` of the training-row list, which belong to shard ``shard``.
    ///
    /// The coordinator sends each worker the rows of the shards it needs once (a large shard
    /// may take several messages); the worker keeps them for the job.
    public struct ShardRows: Sendable, Equatable {
        /// The job the rows belong to.
        public var jobID: UInt64
        /// The shard index k of the batch plan.
        public var shard: UInt32
        /// Position (in the training-row list) of the first row.
        public var firstPosition: UInt64
        /// Rows in this message (≥ 1).
        public var rowCount: UInt32
        /// Values per row, D (2...2^20).
        public var dimension: UInt32
        /// `rowCount × dimension` finite values, row-major.
        public var values: WireVector

        /// Shard rows with the given fields.
        public init(jobID: UInt64, shard: UInt32, firstPosition: UInt64, rowCount: UInt32, dimension: UInt32, values: WireVector) {
            self.jobID = jobID
            self.shard = shard
            self.firstPosition = firstPosition
            self.rowCount = rowCount
            self.dimension = dimension
            self.values = values
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("shardRows.jobID")
            shard = try reader.u32("shardRows.shard")
            firstPosition = try reader.u64("shardRows.firstPosition")
            rowCount = try reader.u32("shardRows.rowCount")
            dimension = try reader.u32("shardRows.dimension")
            values = try reader.vector("shardRows.values")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u32(shard)
            sink.u64(firstPosition)
            sink.u32(rowCount)
            sink.u32(dimension)
            sink.vector(values, "shardRows.values")
        }

        /// Checks the fields (see `docs/protocol.md`, `shardRows`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "shardRows.rowCount")
            try WireCheck.range(dimension, WireCheck.dimensionRange, "shardRows.dimension")
            try WireCheck.rowRange(first: firstPosition, count: UInt64(rowCount), "shardRows.firstPosition")
            try WireCheck.vector(values, "shardRows.values", limits)
            try WireCheck.shape(values, rows: UInt64(rowCount), columns: UInt64(dimension), "shardRows.values")
            try WireCheck.finite(values, "shardRows.values")
        }
    }

    /// `parameters` (kind 0x05, coordinator → worker): version ``version`` of the flat
    /// parameter vector (the layout of `Flows`' `ParameterLayout`).
    public struct Parameters: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The parameter version (the number of updates applied; 0 is the initialisation).
        public var version: UInt64
        /// The P finite parameters.
        public var values: WireVector

        /// Parameters with the given fields.
        public init(jobID: UInt64, version: UInt64, values: WireVector) {
            self.jobID = jobID
            self.version = version
            self.values = values
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("parameters.jobID")
            version = try reader.u64("parameters.version")
            values = try reader.vector("parameters.values")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(version)
            sink.vector(values, "parameters.values")
        }

        /// Checks the fields (see `docs/protocol.md`, `parameters`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.vector(values, "parameters.values", limits)
            try WireCheck.finite(values, "parameters.values")
        }
    }

    /// `assignment` (kind 0x06, coordinator → worker): compute these items of step ``step``
    /// with parameter version ``version``.
    ///
    /// With `sync=gradients` the items are nodes of the step's reduction tree (`TreeNode.key`):
    /// the worker returns one `gradientResult` per node, the node's micro-batches summed in tree
    /// order. In `sync=parameters` mode ``step`` is the round and the items are the global
    /// micro-batches of the worker's local steps, in the order to use them.
    public struct Assignment: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The step (or round).
        public var step: UInt64
        /// The parameter version to compute with.
        public var version: UInt64
        /// Tree nodes or global micro-batch indices (1...``WireLimits/maxMicroBatches`` of them, no repeats).
        public var items: [UInt64]

        /// An assignment with the given fields.
        public init(jobID: UInt64, step: UInt64, version: UInt64, items: [UInt64]) {
            self.jobID = jobID
            self.step = step
            self.version = version
            self.items = items
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("assignment.jobID")
            step = try reader.u64("assignment.step")
            version = try reader.u64("assignment.version")
            items = try reader.u64Array("assignment.items", limit: reader.limits.maxMicroBatches)
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(step)
            sink.u64(version)
            sink.u64Array(items, "assignment.items")
        }

        /// Checks the fields (see `docs/protocol.md`, `assignment`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.count(items.count, limits.maxMicroBatches, "assignment.items")
            guard !items.isEmpty else {
                throw .outOfRange(field: "assignment.items.count", value: "0", allowed: "1...\(limits.maxMicroBatches)")
            }
            let sorted = items.sorted()
            for i in sorted.indices.dropFirst() where sorted[i] == sorted[i - 1] {
                throw .inconsistent(field: "assignment.items", reason: "item \(sorted[i]) is listed twice")
            }
        }
    }

    /// `gradientResult` (kind 0x07, worker → coordinator): the value of one node of the step's
    /// reduction tree — the gradient of the **summed** NLL over the rows of the node's
    /// micro-batches (not the mean), summed in tree order, the summed NLL (also in tree order)
    /// and the row count.
    ///
    /// Every value must be finite: a worker whose result is not sends an `error` with code
    /// ``WireErrorCode/nonFinite`` instead.
    public struct GradientResult: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The step the node belongs to.
        public var step: UInt64
        /// The parameter version used.
        public var version: UInt64
        /// The tree node (`TreeNode.key`: first shard · 64 + level).
        public var node: UInt64
        /// Rows under the node (≥ 1).
        public var rowCount: UInt64
        /// Σ over the rows of −log p(x) (finite).
        public var lossSum: Double
        /// Seconds the worker spent computing it (monitoring only: never part of the model's bits
        /// nor of a comparison of results; finite, at least 0).
        public var computeSeconds: Double
        /// ∂(lossSum)/∂θ, P finite values (`sync=sharded`: none; the values went to the owners).
        public var gradient: WireVector
        /// `sync=sharded` with digests on (`--verify-fraction`): ``XXH64`` (seed 0) of the
        /// partial's values as this worker sent them to the owners, so that two sources of a
        /// checked leaf are compared without the coordinator receiving either; otherwise 0.
        public var digest: UInt64

        /// A gradient result with the given fields.
        public init(
            jobID: UInt64, step: UInt64, version: UInt64, node: UInt64, rowCount: UInt64, lossSum: Double,
            gradient: WireVector, computeSeconds: Double = 0, digest: UInt64 = 0
        ) {
            self.computeSeconds = computeSeconds
            self.digest = digest
            self.jobID = jobID
            self.step = step
            self.version = version
            self.node = node
            self.rowCount = rowCount
            self.lossSum = lossSum
            self.gradient = gradient
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("gradientResult.jobID")
            step = try reader.u64("gradientResult.step")
            version = try reader.u64("gradientResult.version")
            node = try reader.u64("gradientResult.node")
            rowCount = try reader.u64("gradientResult.rowCount")
            lossSum = try reader.f64("gradientResult.lossSum")
            computeSeconds = try reader.f64("gradientResult.computeSeconds")
            digest = try reader.u64("gradientResult.digest")
            gradient = try reader.vector("gradientResult.gradient")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(step)
            sink.u64(version)
            sink.u64(node)
            sink.u64(rowCount)
            sink.f64(lossSum)
            sink.f64(computeSeconds)
            sink.u64(digest)
            sink.vector(gradient, "gradientResult.gradient")
        }

        /// Checks the fields (see `docs/protocol.md`, `gradientResult`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "gradientResult.rowCount")
            try WireCheck.finite(lossSum, "gradientResult.lossSum")
            try WireCheck.duration(computeSeconds, "gradientResult.computeSeconds")
            try WireCheck.vector(gradient, "gradientResult.gradient", limits)
            try WireCheck.finite(gradient, "gradientResult.gradient")
        }
    }

    /// `localResult` (kind 0x08, worker → coordinator, `sync=parameters`): the worker's
    /// parameters after the local steps of round ``round``, started from ``baseVersion``.
    public struct LocalResult: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The round.
        public var round: UInt64
        /// The parameter version the round started from.
        public var baseVersion: UInt64
        /// Rows used in all local steps of the round (≥ 1; the averaging weight).
        public var rowCount: UInt64
        /// Σ of the per-row NLL over those rows, each at the parameters it was computed with (finite).
        public var lossSum: Double
        /// Seconds the worker spent computing the round (monitoring only; finite, at least 0).
        public var computeSeconds: Double
        /// The P finite parameters after the local steps.
        public var parameters: WireVector

        /// A local result with the given fields.
        public init(
            jobID: UInt64, round: UInt64, baseVersion: UInt64, rowCount: UInt64, lossSum: Double, parameters: WireVector,
            computeSeconds: Double = 0
        ) {
            self.computeSeconds = computeSeconds
            self.jobID = jobID
            self.round = round
            self.baseVersion = baseVersion
            self.rowCount = rowCount
            self.lossSum = lossSum
            self.parameters = parameters
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("localResult.jobID")
            round = try reader.u64("localResult.round")
            baseVersion = try reader.u64("localResult.baseVersion")
            rowCount = try reader.u64("localResult.rowCount")
            lossSum = try reader.f64("localResult.lossSum")
            computeSeconds = try reader.f64("localResult.computeSeconds")
            parameters = try reader.vector("localResult.parameters")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(round)
            sink.u64(baseVersion)
            sink.u64(rowCount)
            sink.f64(lossSum)
            sink.f64(computeSeconds)
            sink.vector(parameters, "localResult.parameters")
        }

        /// Checks the fields (see `docs/protocol.md`, `localResult`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "localResult.rowCount")
            try WireCheck.finite(lossSum, "localResult.lossSum")
            try WireCheck.duration(computeSeconds, "localResult.computeSeconds")
            try WireCheck.vector(parameters, "localResult.parameters", limits)
            try WireCheck.finite(parameters, "localResult.parameters")
        }
    }
}
