extension WireMessage {
    /// `heartbeat` (kind 0x0B, either direction): "I am alive", sent when nothing else was sent
    /// for one heartbeat interval (Paranoid Pirate).
    public struct Heartbeat: Sendable, Equatable {
        /// The sender's heartbeat counter (increases by one per heartbeat; for logs and gaps).
        public var sequence: UInt64
        /// Work units (micro-batches, chunks) the sender has queued or running; 0 from the coordinator.
        public var pendingWork: UInt32
        /// The step (or round) the sender is working on, if any.
        public var currentStep: UInt64?

        /// A heartbeat with the given fields.
        public init(sequence: UInt64, pendingWork: UInt32 = 0, currentStep: UInt64? = nil) {
            self.sequence = sequence
            self.pendingWork = pendingWork
            self.currentStep = currentStep
        }

        init(from reader: inout WireReader) throws(WireError) {
            sequence = try reader.u64("heartbeat.sequence")
            pendingWork = try reader.u32("heartbeat.pendingWork")
            currentStep = try reader.optional("heartbeat.currentStep") { (reader) throws(WireError) in
                try reader.u64("heartbeat.currentStep")
            }
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(sequence)
            sink.u32(pendingWork)
            sink.optional(currentStep) { sink, step in sink.u64(step) }
        }

        /// Every value of every field is valid; nothing to check.
        public func validate(limits: WireLimits = .default) throws(WireError) {}
    }

    /// `error` (kind 0x0C, either direction): a request could not be served. The optional
    /// fields say which job, step (or round) and micro-batch (or chunk) it concerns.
    public struct ErrorReport: Sendable, Equatable {
        /// What went wrong.
        public var code: WireErrorCode
        /// The job concerned, if any.
        public var jobID: UInt64?
        /// The step or round concerned, if any.
        public var step: UInt64?
        /// The micro-batch (training) or chunk (scoring) concerned, if any.
        public var item: UInt64?
        /// A human-readable explanation (at most ``WireLimits/maxStringBytes``; shorten it with
        /// ``WireMessage/truncatedUTF8(_:maxBytes:)``). Never payload data.
        public var message: String

        /// An error report with the given fields.
        public init(code: WireErrorCode, jobID: UInt64? = nil, step: UInt64? = nil, item: UInt64? = nil, message: String) {
            self.code = code
            self.jobID = jobID
            self.step = step
            self.item = item
            self.message = message
        }

        init(from reader: inout WireReader) throws(WireError) {
            code = WireErrorCode(rawValue: try reader.u16("error.code"))
            jobID = try reader.optional("error.jobID") { (reader) throws(WireError) in try reader.u64("error.jobID") }
            step = try reader.optional("error.step") { (reader) throws(WireError) in try reader.u64("error.step") }
            item = try reader.optional("error.item") { (reader) throws(WireError) in try reader.u64("error.item") }
            message = try reader.string("error.message")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u16(code.rawValue)
            sink.optional(jobID) { sink, value in sink.u64(value) }
            sink.optional(step) { sink, value in sink.u64(value) }
            sink.optional(item) { sink, value in sink.u64(value) }
            sink.string(message, "error.message")
        }

        /// Checks the fields (see `docs/protocol.md`, `error`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.string(message, "error.message", limits)
        }
    }

    /// `goodbye` (kind 0x0D, either direction): the sender is leaving on purpose (a worker
    /// shutting down, the coordinator finishing); the receiver forgets the peer at once instead
    /// of waiting for heartbeats to lapse.
    public struct Goodbye: Sendable, Equatable {
        /// Why (may be empty; at most ``WireLimits/maxStringBytes``).
        public var reason: String

        /// A goodbye with the given reason.
        public init(reason: String) { self.reason = reason }

        init(from reader: inout WireReader) throws(WireError) {
            reason = try reader.string("goodbye.reason")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.string(reason, "goodbye.reason")
        }

        /// Checks the fields (see `docs/protocol.md`, `goodbye`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.string(reason, "goodbye.reason", limits)
        }
    }
}
