extension WireMessage {
    /// `hello` (kind 0x01, worker → coordinator): the first message a worker sends, and the one
    /// it repeats until it is welcomed.
    ///
    /// ``instance`` is a random non-zero number drawn once per worker process: a hello with a
    /// known name but a new instance is a restarted worker (its old state is gone); the same
    /// instance from a second connection is a duplicate.
    public struct Hello: Sendable, Equatable {
        /// Lowest protocol version the worker speaks (≥ 1).
        public var minimumVersion: UInt16
        /// Highest protocol version the worker speaks; `minimumVersion...maximumVersion` must
        /// contain the version of the header the hello travels in.
        public var maximumVersion: UInt16
        /// The worker process's random instance id (non-zero).
        public var instance: UInt64
        /// The worker's process id on its host.
        public var processID: UInt32
        /// The worker's name (non-empty, for logs and for recognising a restarted worker).
        public var name: String
        /// The worker's host name (may be empty).
        public var host: String
        /// What the worker can compute.
        public var capabilities: Capabilities
        /// The endpoint of the worker's peer socket (`sync=sharded`: where other workers send it
        /// segments), or empty when it has none.
        public var peerEndpoint: String

        /// What a worker can compute.
        public struct Capabilities: Sendable, Equatable {
            /// The dtypes the worker computes in (at least one).
            public var dtypes: WireDTypeSet
            /// The BLAS threads one product uses on the worker (≥ 1).
            public var blasThreads: UInt32
            /// The BLAS kernel name (OpenBLAS' core name, e.g. `Haswell`); may be empty.
            public var blasKernel: String
            /// The most rows the worker accepts in one micro-batch or score chunk (≥ 1).
            public var maxMicroBatchRows: UInt32

            /// Capabilities with the given fields.
            public init(dtypes: WireDTypeSet, blasThreads: UInt32, blasKernel: String, maxMicroBatchRows: UInt32) {
                self.dtypes = dtypes
                self.blasThreads = blasThreads
                self.blasKernel = blasKernel
                self.maxMicroBatchRows = maxMicroBatchRows
            }
        }

        /// A hello; the version range defaults to this module's only version.
        public init(
            minimumVersion: UInt16 = WireMessage.protocolVersion, maximumVersion: UInt16 = WireMessage.protocolVersion,
            instance: UInt64, processID: UInt32, name: String, host: String, capabilities: Capabilities, peerEndpoint: String = ""
        ) {
            self.peerEndpoint = peerEndpoint
            self.minimumVersion = minimumVersion
            self.maximumVersion = maximumVersion
            self.instance = instance
            self.processID = processID
            self.name = name
            self.host = host
            self.capabilities = capabilities
        }

        init(from reader: inout WireReader) throws(WireError) {
            minimumVersion = try reader.u16("hello.minimumVersion")
            maximumVersion = try reader.u16("hello.maximumVersion")
            instance = try reader.u64("hello.instance")
            processID = try reader.u32("hello.processID")
            let dtypes = WireDTypeSet(rawValue: try reader.u8("hello.dtypes"))
            let blasThreads = try reader.u32("hello.blasThreads")
            let maxRows = try reader.u32("hello.maxMicroBatchRows")
            name = try reader.string("hello.name")
            host = try reader.string("hello.host")
            let kernel = try reader.string("hello.blasKernel")
            capabilities = Capabilities(dtypes: dtypes, blasThreads: blasThreads, blasKernel: kernel, maxMicroBatchRows: maxRows)
            peerEndpoint = try reader.string("hello.peerEndpoint")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u16(minimumVersion)
            sink.u16(maximumVersion)
            sink.u64(instance)
            sink.u32(processID)
            sink.u8(capabilities.dtypes.rawValue)
            sink.u32(capabilities.blasThreads)
            sink.u32(capabilities.maxMicroBatchRows)
            sink.string(name, "hello.name")
            sink.string(host, "hello.host")
            sink.string(capabilities.blasKernel, "hello.blasKernel")
            sink.string(peerEndpoint, "hello.peerEndpoint")
        }

        /// Checks the fields (see `docs/protocol.md`, `hello`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(minimumVersion, "hello.minimumVersion")
            guard minimumVersion <= maximumVersion else {
                throw .inconsistent(
                    field: "hello.maximumVersion",
                    reason: "maximum version \(maximumVersion) is below minimum version \(minimumVersion)")
            }
            guard (minimumVersion...maximumVersion).contains(WireMessage.protocolVersion) else {
                throw .inconsistent(
                    field: "hello.minimumVersion",
                    reason: "versions \(minimumVersion)...\(maximumVersion) do not include the message's version \(WireMessage.protocolVersion)")
            }
            try WireCheck.positive(instance, "hello.instance")
            let dtypes = capabilities.dtypes
            guard dtypes.rawValue != 0, dtypes.isSubset(of: .all) else {
                throw .outOfRange(field: "hello.dtypes", value: String(dtypes.rawValue), allowed: "1...3 (bit 0 float32, bit 1 float64)")
            }
            try WireCheck.positive(capabilities.blasThreads, "hello.blasThreads")
            try WireCheck.positive(capabilities.maxMicroBatchRows, "hello.maxMicroBatchRows")
            try WireCheck.string(name, "hello.name", limits)
            guard !name.isEmpty else { throw .outOfRange(field: "hello.name", value: "empty", allowed: "1 or more bytes") }
            try WireCheck.string(host, "hello.host", limits)
            try WireCheck.string(capabilities.blasKernel, "hello.blasKernel", limits)
            try WireCheck.string(peerEndpoint, "hello.peerEndpoint", limits)
        }
    }

    /// `welcome` (kind 0x02, coordinator → worker): the answer to a hello.
    ///
    /// Both sides then send a heartbeat every ``heartbeatIntervalMilliseconds`` when they have
    /// sent nothing else, and consider the peer dead after ``heartbeatLiveness`` intervals of
    /// silence.
    public struct Welcome: Sendable, Equatable {
        /// The id the coordinator assigned to the worker (for logs and metrics).
        public var workerID: UInt32
        /// The hello's ``Hello/instance`` this welcome answers (non-zero).
        public var workerInstance: UInt64
        /// The coordinator process's random instance id (non-zero): a new value means the
        /// coordinator restarted and the worker must forget its job state.
        public var coordinatorInstance: UInt64
        /// Heartbeat interval in milliseconds, 1...3 600 000.
        public var heartbeatIntervalMilliseconds: UInt32
        /// Intervals of silence after which a peer is dead, 1...1000.
        public var heartbeatLiveness: UInt32

        /// A welcome with the given fields.
        public init(
            workerID: UInt32, workerInstance: UInt64, coordinatorInstance: UInt64,
            heartbeatIntervalMilliseconds: UInt32, heartbeatLiveness: UInt32
        ) {
            self.workerID = workerID
            self.workerInstance = workerInstance
            self.coordinatorInstance = coordinatorInstance
            self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
            self.heartbeatLiveness = heartbeatLiveness
        }

        init(from reader: inout WireReader) throws(WireError) {
            workerID = try reader.u32("welcome.workerID")
            workerInstance = try reader.u64("welcome.workerInstance")
            coordinatorInstance = try reader.u64("welcome.coordinatorInstance")
            heartbeatIntervalMilliseconds = try reader.u32("welcome.heartbeatIntervalMilliseconds")
            heartbeatLiveness = try reader.u32("welcome.heartbeatLiveness")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u32(workerID)
            sink.u64(workerInstance)
            sink.u64(coordinatorInstance)
            sink.u32(heartbeatIntervalMilliseconds)
            sink.u32(heartbeatLiveness)
        }

        /// Checks the fields (see `docs/protocol.md`, `welcome`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(workerInstance, "welcome.workerInstance")
            try WireCheck.positive(coordinatorInstance, "welcome.coordinatorInstance")
            try WireCheck.range(heartbeatIntervalMilliseconds, 1...3_600_000, "welcome.heartbeatIntervalMilliseconds")
            try WireCheck.range(heartbeatLiveness, 1...1000, "welcome.heartbeatLiveness")
        }
    }
}
