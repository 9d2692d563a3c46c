import FlowWire

extension ScoringStateMachine {
    /// Fixed facts of the job.
    public struct Job: Sendable {
        /// The `jobSpec` every worker receives after `welcome` (mode `.scoring`).
        public var spec: WireMessage.JobSpec
        /// Rows of the input.
        public var rowCount: Int
        /// Rows per chunk.
        public var chunkRows: Int
        /// Chunks a worker may hold at once.
        public var inFlightPerWorker: Int
        /// Heartbeat interval in seconds.
        public var heartbeatInterval: Double
        /// Missed intervals after which a peer is dead.
        public var heartbeatLiveness: Int
        /// Seconds after which an outstanding chunk is also given to another worker.
        public var stallTimeout: Double
        /// Failures reported for one chunk after which the job fails.
        public var maximumChunkFailures: Int
        /// This coordinator's instance id.
        public var instance: UInt64
        /// The fraction of chunks computed by two different workers and compared bit for bit
        /// (0: none). Which chunks is a pure function of the chunk index (``isVerified(_:)``).
        public var verifyFraction: Double
        /// What peers may make the coordinator hold or do (hello rate, worker cap, tracked peers).
        public var limits = ClusterLimits()

        public init(
            spec: WireMessage.JobSpec, rowCount: Int, chunkRows: Int, inFlightPerWorker: Int = 2,
            heartbeatInterval: Double = 0.25, heartbeatLiveness: Int = 8, stallTimeout: Double = 60,
            maximumChunkFailures: Int = 3, instance: UInt64, verifyFraction: Double = 0
        ) {
            self.verifyFraction = verifyFraction
            self.spec = spec
            self.rowCount = rowCount
            self.chunkRows = chunkRows
            self.inFlightPerWorker = inFlightPerWorker
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatLiveness = heartbeatLiveness
            self.stallTimeout = stallTimeout
            self.maximumChunkFailures = maximumChunkFailures
            self.instance = instance
        }

        /// Number of chunks.
        public var chunkCount: Int { (rowCount + chunkRows - 1) / chunkRows }

        /// The rows of chunk `k`.
        public func rowRange(ofChunk k: Int) -> Range<Int> {
            let first = k * chunkRows
            return first..<min(rowCount, first + chunkRows)
        }

        /// Whether chunk `k` is verified: the shared `VerificationSampler` (seed 0) over the chunk
        /// index. The same chunks in every run of the job, resumed or not.
        public func isVerified(_ k: Int) -> Bool {
            VerificationSampler(fraction: verifyFraction, seed: 0).contains(k)
        }

        var wantLatent: Bool {
            if case .scoring(let s) = spec.mode { return s.wantLatent }
            return false
        }
    }
}
