extension WireMessage {
    /// `scoreChunk` (kind 0x09, coordinator → worker): rows `firstRow ..< firstRow + rowCount`
    /// of the input file, to score with the job's current parameters.
    ///
    /// Values may be NaN or ±∞ (rows the reader could not parse arrive as NaN rows); such rows
    /// come back with a status other than ``WireRowStatus/ok``.
    public struct ScoreChunk: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The chunk index (the journal's unit).
        public var chunk: UInt64
        /// Index of the chunk's first row in the input.
        public var firstRow: UInt64
        /// Rows in the chunk (≥ 1).
        public var rowCount: UInt32
        /// Values per row, D (2...2^20).
        public var dimension: UInt32
        /// `rowCount × dimension` values, row-major; NaN and ±∞ allowed.
        public var values: WireVector

        /// A score chunk with the given fields.
        public init(jobID: UInt64, chunk: UInt64, firstRow: UInt64, rowCount: UInt32, dimension: UInt32, values: WireVector) {
            self.jobID = jobID
            self.chunk = chunk
            self.firstRow = firstRow
            self.rowCount = rowCount
            self.dimension = dimension
            self.values = values
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("scoreChunk.jobID")
            chunk = try reader.u64("scoreChunk.chunk")
            firstRow = try reader.u64("scoreChunk.firstRow")
            rowCount = try reader.u32("scoreChunk.rowCount")
            dimension = try reader.u32("scoreChunk.dimension")
            values = try reader.vector("scoreChunk.values")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(chunk)
            sink.u64(firstRow)
            sink.u32(rowCount)
            sink.u32(dimension)
            sink.vector(values, "scoreChunk.values")
        }

        /// Checks the fields (see `docs/protocol.md`, `scoreChunk`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "scoreChunk.rowCount")
            try WireCheck.range(dimension, WireCheck.dimensionRange, "scoreChunk.dimension")
            try WireCheck.rowRange(first: firstRow, count: UInt64(rowCount), "scoreChunk.firstRow")
            try WireCheck.vector(values, "scoreChunk.values", limits)
            try WireCheck.shape(values, rows: UInt64(rowCount), columns: UInt64(dimension), "scoreChunk.values")
        }
    }

    /// `scoreResult` (kind 0x0A, worker → coordinator): log p(x) of every row of a chunk, a
    /// status per row, and the latents z = f(x) when the job asks for them.
    public struct ScoreResult: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The chunk index.
        public var chunk: UInt64
        /// Index of the chunk's first row in the input.
        public var firstRow: UInt64
        /// Rows in the chunk (≥ 1).
        public var rowCount: UInt32
        /// Seconds the worker spent scoring the chunk (monitoring only: never part of the outputs
        /// nor of a comparison of results; finite, at least 0).
        public var computeSeconds: Double
        /// One status per row; row i's log-prob is finite exactly when its status is `ok`.
        public var statuses: [WireRowStatus]
        /// `rowCount` log-densities (nats); non-finite exactly for rows whose status is not `ok`.
        public var logProbs: WireVector
        /// The latents, when the job asked for them.
        public var latent: Latent?

        /// The latents z = f(x) of a chunk.
        public struct Latent: Sendable, Equatable {
            /// Values per row, D (2...2^20).
            public var dimension: UInt32
            /// `rowCount × dimension` values, row-major (non-finite allowed).
            public var values: WireVector

            /// Latents with the given fields.
            public init(dimension: UInt32, values: WireVector) {
                self.dimension = dimension
                self.values = values
            }
        }

        /// A score result with the given fields.
        public init(
            jobID: UInt64, chunk: UInt64, firstRow: UInt64, rowCount: UInt32, statuses: [WireRowStatus],
            logProbs: WireVector, latent: Latent?, computeSeconds: Double = 0
        ) {
            self.computeSeconds = computeSeconds
            self.jobID = jobID
            self.chunk = chunk
            self.firstRow = firstRow
            self.rowCount = rowCount
            self.statuses = statuses
            self.logProbs = logProbs
            self.latent = latent
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("scoreResult.jobID")
            chunk = try reader.u64("scoreResult.chunk")
            firstRow = try reader.u64("scoreResult.firstRow")
            rowCount = try reader.u32("scoreResult.rowCount")
            computeSeconds = try reader.f64("scoreResult.computeSeconds")
            let codes = try reader.byteArray("scoreResult.statuses", limit: reader.limits.maxVectorElements)
            var statuses: [WireRowStatus] = []
            statuses.reserveCapacity(codes.count)
            for (row, code) in codes.enumerated() {
                guard let status = WireRowStatus(rawValue: code) else {
                    throw .outOfRange(field: "scoreResult.statuses[\(row)]", value: String(code), allowed: "0...3")
                }
                statuses.append(status)
            }
            self.statuses = statuses
            logProbs = try reader.vector("scoreResult.logProbs")
            latent = try reader.optional("scoreResult.latent") { (reader) throws(WireError) in
                let dimension = try reader.u32("scoreResult.latent.dimension")
                let values = try reader.vector("scoreResult.latent.values")
                return Latent(dimension: dimension, values: values)
            }
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(chunk)
            sink.u64(firstRow)
            sink.u32(rowCount)
            sink.f64(computeSeconds)
            sink.count(statuses.count, "scoreResult.statuses")
            for status in statuses { sink.u8(status.rawValue) }
            sink.vector(logProbs, "scoreResult.logProbs")
            sink.optional(latent) { sink, latent in
                sink.u32(latent.dimension)
                sink.vector(latent.values, "scoreResult.latent.values")
            }
        }

        /// Checks the fields (see `docs/protocol.md`, `scoreResult`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "scoreResult.rowCount")
            try WireCheck.duration(computeSeconds, "scoreResult.computeSeconds")
            try WireCheck.rowRange(first: firstRow, count: UInt64(rowCount), "scoreResult.firstRow")
            try WireCheck.count(statuses.count, limits.maxVectorElements, "scoreResult.statuses")
            guard statuses.count == Int(rowCount) else {
                throw .inconsistent(field: "scoreResult.statuses", reason: "has \(statuses.count) entries for \(rowCount) rows")
            }
            try WireCheck.vector(logProbs, "scoreResult.logProbs", limits)
            guard logProbs.count == Int(rowCount) else {
                throw .inconsistent(field: "scoreResult.logProbs", reason: "has \(logProbs.count) values for \(rowCount) rows")
            }
            for (row, status) in statuses.enumerated() where (status == .ok) != logProbs.value(at: row).isFinite {
                throw .inconsistent(
                    field: "scoreResult.logProbs[\(row)]",
                    reason: status == .ok
                        ? "is not finite but the row's status is ok"
                        : "is finite but the row's status is \(status)")
            }
            if let latent {
                try WireCheck.range(latent.dimension, WireCheck.dimensionRange, "scoreResult.latent.dimension")
                try WireCheck.vector(latent.values, "scoreResult.latent.values", limits)
                try WireCheck.shape(
                    latent.values, rows: UInt64(rowCount), columns: UInt64(latent.dimension), "scoreResult.latent.values")
            }
        }
    }
}
