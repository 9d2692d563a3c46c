extension WireMessage {
    /// `roster` (kind 0x0E, coordinator → worker, `sync=sharded`): the workers taking part in
    /// attempt ``epoch`` of the step that uses parameter version ``version``, with the endpoints of
    /// their peer sockets and (under CURVE) their public keys.
    ///
    /// The i-th of the W listed workers owns the parameter segments g (of the 64 of
    /// `ParameterSegments`) with ⌊g·min(W, 64)/64⌋ = i. A worker sends each segment of its partials
    /// to the segment's owner, accepts peer connections only from the listed keys, and forgets
    /// everything of an older epoch: a new roster restarts the step's exchange (the nodes already
    /// computed are sent again, not recomputed).
    public struct Roster: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The attempt (increases with every roster the coordinator sends in the job).
        public var epoch: UInt64
        /// The parameter version the attempt starts from (the step it computes).
        public var version: UInt64
        /// A random number drawn by the coordinator for this epoch: every `segment` of the
        /// attempt carries it, so that a peer socket drops what a stranger sends without it.
        public var token: UInt64
        /// The workers, in segment-owner order (1 or more, no repeats).
        public var workerIDs: [UInt32]
        /// Each worker's peer endpoint (`tcp://host:port` or `ipc://path`).
        public var endpoints: [String]
        /// Each worker's CURVE public key in Z85 (40 characters), or empty without CURVE.
        public var keys: [String]

        /// A roster with the given fields.
        public init(
            jobID: UInt64, epoch: UInt64, version: UInt64, token: UInt64 = 0, workerIDs: [UInt32], endpoints: [String], keys: [String]
        ) {
            self.token = token
            self.jobID = jobID
            self.epoch = epoch
            self.version = version
            self.workerIDs = workerIDs
            self.endpoints = endpoints
            self.keys = keys
        }

        /// The index (in ``workerIDs``) of the owner of segment `segment`.
        public func ownerIndex(ofSegment segment: Int) -> Int { Self.ownerIndex(ofSegment: segment, workers: workerIDs.count) }

        /// The index of the owner of segment `segment` among `workers` workers: ⌊g·min(W, 64)/64⌋.
        public static func ownerIndex(ofSegment segment: Int, workers: Int) -> Int {
            segment * min(workers, segmentCount) / segmentCount
        }

        /// The segments (a contiguous range) owned by the worker at index `index`.
        public func segments(ownedBy index: Int) -> Range<Int> {
            let first = (0..<Self.segmentCount).first { ownerIndex(ofSegment: $0) == index } ?? Self.segmentCount
            let end = (first..<Self.segmentCount).first { ownerIndex(ofSegment: $0) != index } ?? Self.segmentCount
            return first..<end
        }

        /// Segments of a parameter vector (`ParameterSegments.count` in Flows).
        public static let segmentCount = 64

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("roster.jobID")
            epoch = try reader.u64("roster.epoch")
            version = try reader.u64("roster.version")
            token = try reader.u64("roster.token")
            workerIDs = try reader.u32Array("roster.workerIDs", limit: reader.limits.maxMicroBatches)
            let count = try reader.count("roster.endpoints", limit: reader.limits.maxMicroBatches, elementSize: 4)
            endpoints = []
            for _ in 0..<count { endpoints.append(try reader.string("roster.endpoints")) }
            let keyCount = try reader.count("roster.keys", limit: reader.limits.maxMicroBatches, elementSize: 4)
            keys = []
            for _ in 0..<keyCount { keys.append(try reader.string("roster.keys")) }
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(epoch)
            sink.u64(version)
            sink.u64(token)
            sink.u32Array(workerIDs, "roster.workerIDs")
            sink.count(endpoints.count, "roster.endpoints")
            for endpoint in endpoints { sink.string(endpoint, "roster.endpoints") }
            sink.count(keys.count, "roster.keys")
            for key in keys { sink.string(key, "roster.keys") }
        }

        /// Checks the fields (see `docs/protocol.md`, `roster`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.count(workerIDs.count, limits.maxMicroBatches, "roster.workerIDs")
            guard !workerIDs.isEmpty else { throw .outOfRange(field: "roster.workerIDs.count", value: "0", allowed: "at least 1") }
            guard endpoints.count == workerIDs.count, keys.count == workerIDs.count else {
                throw .inconsistent(field: "roster.endpoints", reason: "\(workerIDs.count) workers, \(endpoints.count) endpoints and \(keys.count) keys")
            }
            guard Set(workerIDs).count == workerIDs.count else { throw .inconsistent(field: "roster.workerIDs", reason: "a worker is listed twice") }
            for endpoint in endpoints {
                try WireCheck.string(endpoint, "roster.endpoints", limits)
                guard !endpoint.isEmpty else { throw .outOfRange(field: "roster.endpoints", value: "empty", allowed: "an endpoint") }
            }
            for key in keys {
                guard key.isEmpty || key.utf8.count == 40 else {
                    throw .outOfRange(field: "roster.keys", value: "\(key.utf8.count) bytes", allowed: "empty or a 40-character Z85 key")
                }
            }
        }
    }

    /// `reduce` (kind 0x0F, coordinator → worker, `sync=sharded`): every partial of attempt
    /// ``epoch`` of step ``step`` is in — the tree nodes ``nodes`` (disjoint, covering the step),
    /// whose accepted values are the ones worker ``sources``[i] computed. Each owner folds its
    /// segments of those values in tree order and sends the result to every worker of the roster.
    public struct ReduceOrder: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The step.
        public var step: UInt64
        /// The roster's epoch.
        public var epoch: UInt64
        /// The nodes (`TreeNode.key`), in tree order.
        public var nodes: [UInt64]
        /// The worker whose value of each node is the accepted one.
        public var sources: [UInt32]

        /// A reduce order with the given fields.
        public init(jobID: UInt64, step: UInt64, epoch: UInt64, nodes: [UInt64], sources: [UInt32]) {
            self.jobID = jobID
            self.step = step
            self.epoch = epoch
            self.nodes = nodes
            self.sources = sources
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("reduce.jobID")
            step = try reader.u64("reduce.step")
            epoch = try reader.u64("reduce.epoch")
            nodes = try reader.u64Array("reduce.nodes", limit: reader.limits.maxMicroBatches)
            sources = try reader.u32Array("reduce.sources", limit: reader.limits.maxMicroBatches)
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(step)
            sink.u64(epoch)
            sink.u64Array(nodes, "reduce.nodes")
            sink.u32Array(sources, "reduce.sources")
        }

        /// Checks the fields (see `docs/protocol.md`, `reduce`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.count(nodes.count, limits.maxMicroBatches, "reduce.nodes")
            guard !nodes.isEmpty else { throw .outOfRange(field: "reduce.nodes.count", value: "0", allowed: "at least 1") }
            guard sources.count == nodes.count else {
                throw .inconsistent(field: "reduce.sources", reason: "\(nodes.count) nodes but \(sources.count) sources")
            }
            guard Set(nodes).count == nodes.count else { throw .inconsistent(field: "reduce.nodes", reason: "a node is listed twice") }
        }
    }

    /// `stepReady` (kind 0x11, worker → coordinator, `sync=sharded`): the worker holds the whole
    /// gradient of attempt ``epoch`` of step ``step`` and will apply it when the coordinator
    /// commits the step (by naming the next version). Every worker reports the same figures; the
    /// coordinator compares them.
    public struct StepReady: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The step.
        public var step: UInt64
        /// The roster's epoch.
        public var epoch: UInt64
        /// Rows of the step.
        public var rowCount: UInt64
        /// Mean NLL of the step's rows (0 when ``problem`` is set).
        public var meanLoss: Double
        /// Norm of the mean gradient before clipping (0 when ``problem`` is set).
        public var gradientNorm: Double
        /// Why the step cannot be applied (a non-finite loss or gradient entry), or empty.
        public var problem: String
        /// Message bytes this worker has queued to other workers since it started (monitoring:
        /// `bytes_sent_per_worker_per_step`).
        public var peerBytesSent: UInt64

        /// A report with the given fields.
        public init(
            jobID: UInt64, step: UInt64, epoch: UInt64, rowCount: UInt64, meanLoss: Double, gradientNorm: Double, problem: String = "",
            peerBytesSent: UInt64 = 0
        ) {
            self.peerBytesSent = peerBytesSent
            self.jobID = jobID
            self.step = step
            self.epoch = epoch
            self.rowCount = rowCount
            self.meanLoss = meanLoss
            self.gradientNorm = gradientNorm
            self.problem = problem
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("stepReady.jobID")
            step = try reader.u64("stepReady.step")
            epoch = try reader.u64("stepReady.epoch")
            rowCount = try reader.u64("stepReady.rowCount")
            meanLoss = try reader.f64("stepReady.meanLoss")
            gradientNorm = try reader.f64("stepReady.gradientNorm")
            problem = try reader.string("stepReady.problem")
            peerBytesSent = try reader.u64("stepReady.peerBytesSent")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(step)
            sink.u64(epoch)
            sink.u64(rowCount)
            sink.f64(meanLoss)
            sink.f64(gradientNorm)
            sink.string(problem, "stepReady.problem")
            sink.u64(peerBytesSent)
        }

        /// Checks the fields (see `docs/protocol.md`, `stepReady`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.positive(rowCount, "stepReady.rowCount")
            try WireCheck.finite(meanLoss, "stepReady.meanLoss")
            try WireCheck.duration(gradientNorm, "stepReady.gradientNorm")
            try WireCheck.string(problem, "stepReady.problem", limits)
        }
    }

    /// `stateRequest` (kind 0x12, coordinator → worker, `sync=sharded`): send the training state
    /// at parameter version ``version`` (for a checkpoint, a validation, the final model, or a
    /// joining worker). Naming version v + 1 commits step v.
    public struct StateRequest: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The version wanted.
        public var version: UInt64

        /// A request with the given fields.
        public init(jobID: UInt64, version: UInt64) {
            self.jobID = jobID
            self.version = version
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("stateRequest.jobID")
            version = try reader.u64("stateRequest.version")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(version)
        }
    }

    /// `state` (kind 0x13, either direction, `sync=sharded`): the parameters and Adam state at
    /// version ``version`` — a worker's answer to `stateRequest`, or the coordinator's start (or
    /// restart) of a worker.
    public struct TrainingState: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The parameter version (updates applied).
        public var version: UInt64
        /// Adam's step count.
        public var optimizerStep: UInt64
        /// The P finite parameters.
        public var parameters: WireVector
        /// Adam's first moments (P finite values; none at all when ``optimizerStep`` is 0 and
        /// every moment is zero — version 5: a fresh run's state is then P values, not 3·P).
        public var firstMoment: WireVector
        /// Adam's second moments (as ``firstMoment``).
        public var secondMoment: WireVector

        /// A state with the given fields.
        public init(jobID: UInt64, version: UInt64, optimizerStep: UInt64, parameters: WireVector, firstMoment: WireVector, secondMoment: WireVector) {
            self.jobID = jobID
            self.version = version
            self.optimizerStep = optimizerStep
            self.parameters = parameters
            self.firstMoment = firstMoment
            self.secondMoment = secondMoment
        }

        /// The moments as `T` values, P of each (zeros when they were left out); nil when their
        /// dtype is not `T`'s.
        public func moments<T>(as type: T.Type) -> (first: [T], second: [T])? where T: BinaryFloatingPoint {
            guard let first = firstMoment.elements(as: T.self), let second = secondMoment.elements(as: T.self) else { return nil }
            guard first.isEmpty, second.isEmpty, parameters.count > 0 else { return (first, second) }
            let zeros = [T](repeating: 0, count: parameters.count)
            return (zeros, zeros)
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("state.jobID")
            version = try reader.u64("state.version")
            optimizerStep = try reader.u64("state.optimizerStep")
            parameters = try reader.vector("state.parameters")
            firstMoment = try reader.vector("state.firstMoment")
            secondMoment = try reader.vector("state.secondMoment")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(version)
            sink.u64(optimizerStep)
            sink.vector(parameters, "state.parameters")
            sink.vector(firstMoment, "state.firstMoment")
            sink.vector(secondMoment, "state.secondMoment")
        }

        /// Checks the fields (see `docs/protocol.md`, `state`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            for (vector, field) in [(parameters, "state.parameters"), (firstMoment, "state.firstMoment"), (secondMoment, "state.secondMoment")] {
                try WireCheck.vector(vector, field, limits)
                try WireCheck.finite(vector, field)
                // Zero moments of a fresh state may be left out (both, with optimizerStep 0).
                let omitted = vector.count == 0 && field != "state.parameters" && optimizerStep == 0
                    && firstMoment.count == 0 && secondMoment.count == 0
                guard vector.count == parameters.count || omitted, vector.dtype == parameters.dtype else {
                    throw .inconsistent(field: field, reason: "\(vector.count) \(vector.dtype) values; the parameters have \(parameters.count) \(parameters.dtype)")
                }
            }
        }
    }
}
