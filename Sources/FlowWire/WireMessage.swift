/// One message of the Tributary cluster protocol (version 2), as a value.
///
/// A message is one ZeroMQ frame (the ROUTER's identity frame belongs to the socket layer):
///
///     offset 0  magic     4 bytes  "TRBW" (54 52 42 57)
///     offset 4  version   u16 LE   2 (1 for `error`, whose layout every version keeps)
///     offset 6  kind      u8       ``Kind``
///     offset 7  flags     u8       0 (reserved)
///     offset 8  body      the payload of the kind
///
/// ``encoded()`` turns a message into bytes; ``decode(_:limits:)``
/// turns any byte string either into a message that passes ``validate(limits:)`` — and
/// re-encodes to exactly the same bytes — or into a ``WireError``. Decoding never traps and
/// never allocates more than the bytes present justify. `docs/protocol.md` documents every
/// message byte by byte.
public enum WireMessage: Sendable, Equatable, CustomStringConvertible {
    /// Worker → coordinator: who the worker is and what it can do.
    case hello(Hello)
    /// Coordinator → worker: the worker's id and the heartbeat contract.
    case welcome(Welcome)
    /// Coordinator → worker: the job to work on (architecture, dtype, plan, mode).
    case jobSpec(JobSpec)
    /// Coordinator → worker: training rows of one shard.
    case shardRows(ShardRows)
    /// Coordinator → worker: a version of the flat parameter vector.
    case parameters(Parameters)
    /// Coordinator → worker: micro-batches to compute for a step.
    case assignment(Assignment)
    /// Worker → coordinator: the summed gradient and loss of one micro-batch.
    case gradientResult(GradientResult)
    /// Worker → coordinator (`sync=parameters`): parameters after the local steps of a round.
    case localResult(LocalResult)
    /// Coordinator → worker: rows to score.
    case scoreChunk(ScoreChunk)
    /// Worker → coordinator: log-densities (and optionally latents) of a chunk, with per-row statuses.
    case scoreResult(ScoreResult)
    /// Either direction: liveness (Paranoid Pirate).
    case heartbeat(Heartbeat)
    /// Either direction: a request could not be served.
    case error(ErrorReport)
    /// Either direction: the sender is leaving.
    case goodbye(Goodbye)
    /// Coordinator → worker (`sync=sharded`): the workers of an attempt of a step and their peer sockets.
    case roster(Roster)
    /// Coordinator → worker (`sync=sharded`): the accepted partials of a step; owners fold them.
    case reduce(ReduceOrder)
    /// Worker → worker (`sync=sharded`): a partial's segments to their owner, or an owner's fold to everyone.
    case segment(Segment)
    /// Worker → coordinator (`sync=sharded`): the worker holds the step's whole gradient.
    case stepReady(StepReady)
    /// Coordinator → worker (`sync=sharded`): send the training state at a version.
    case stateRequest(StateRequest)
    /// Either direction (`sync=sharded`): parameters and Adam state at a version.
    case state(TrainingState)

    /// The protocol version this module encodes and decodes (2 added the learning-rate schedule
    /// and weight decay to `jobSpec`'s local optimiser; 3 made training's work items nodes of
    /// the step's reduction tree: `assignment.items`, `gradientResult.node`, a 64-bit row count;
    /// 4 added the sharded exchange: `hello.peerEndpoint`, `sync=sharded` and kinds 0x0E–0x13;
    /// 5 added `gradientResult.digest` and `jobSpec.digestResults`, for `--verify-fraction` under
    /// the sharded exchange; 6 lets a partial or a fold travel as several `segment` messages, each
    /// a run of its segments, so that the sharded exchange pipelines).
    public static let protocolVersion: UInt16 = 6
    /// The header version of `error` messages: 1 in every version, and accepted in any version
    /// up to ``protocolVersion``, so that a peer of another version can always read why it was
    /// refused (docs/protocol.md, Versioning).
    public static let errorVersion: UInt16 = 1
    /// The four bytes every message starts with: `TRBW`.
    public static let magic: [UInt8] = [0x54, 0x52, 0x42, 0x57]
    /// Bytes of the header (magic, version, kind, flags).
    public static let headerByteCount = 8

    /// The magic as the little-endian `u32` a reader sees.
    private static let magicWord: UInt32 = 0x5742_5254

    /// The message kind, the header's byte 6.
    public enum Kind: UInt8, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
        case hello = 0x01
        case welcome = 0x02
        case jobSpec = 0x03
        case shardRows = 0x04
        case parameters = 0x05
        case assignment = 0x06
        case gradientResult = 0x07
        case localResult = 0x08
        case scoreChunk = 0x09
        case scoreResult = 0x0A
        case heartbeat = 0x0B
        case error = 0x0C
        case goodbye = 0x0D
        case roster = 0x0E
        case reduce = 0x0F
        case segment = 0x10
        case stepReady = 0x11
        case stateRequest = 0x12
        case state = 0x13

        /// The kind's name as it appears in `docs/protocol.md` and in error field names.
        public var description: String {
            switch self {
            case .hello: return "hello"
            case .welcome: return "welcome"
            case .jobSpec: return "jobSpec"
            case .shardRows: return "shardRows"
            case .parameters: return "parameters"
            case .assignment: return "assignment"
            case .gradientResult: return "gradientResult"
            case .localResult: return "localResult"
            case .scoreChunk: return "scoreChunk"
            case .scoreResult: return "scoreResult"
            case .heartbeat: return "heartbeat"
            case .error: return "error"
            case .goodbye: return "goodbye"
            case .roster: return "roster"
            case .reduce: return "reduce"
            case .segment: return "segment"
            case .stepReady: return "stepReady"
            case .stateRequest: return "stateRequest"
            case .state: return "state"
            }
        }
    }

    /// This message's kind.
    public var kind: Kind {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .jobSpec: return .jobSpec
        case .shardRows: return .shardRows
        case .parameters: return .parameters
        case .assignment: return .assignment
        case .gradientResult: return .gradientResult
        case .localResult: return .localResult
        case .scoreChunk: return .scoreChunk
        case .scoreResult: return .scoreResult
        case .heartbeat: return .heartbeat
        case .error: return .error
        case .goodbye: return .goodbye
        case .roster: return .roster
        case .reduce: return .reduce
        case .segment: return .segment
        case .stepReady: return .stepReady
        case .stateRequest: return .stateRequest
        case .state: return .state
        }
    }

    /// The kind's name and size, never the payload: `gradientResult (10485812 bytes)`.
    public var description: String { "\(kind) (\(encodedByteCount) bytes)" }

    // MARK: Decoding

    /// Decodes one message from `bytes` (for example a received ZeroMQ frame, read in place).
    ///
    /// Steps, each throwing the ``WireError`` that names the field: the frame size against
    /// `limits.maxFrameBytes`; magic; version (only ``protocolVersion``, or 1…``protocolVersion``
    /// for `error`); kind; flags (must be
    /// 0); the body, field by field, every count checked against `limits` and against the
    /// bytes left before anything is allocated; no bytes may follow the body; finally
    /// ``validate(limits:)``.
    public static func decode(_ bytes: UnsafeRawBufferPointer, limits: WireLimits = .default) throws(WireError) -> WireMessage {
        guard bytes.count <= limits.maxFrameBytes else {
            throw .countTooLarge(field: "frame", count: bytes.count, limit: limits.maxFrameBytes)
        }
        var reader = WireReader(bytes, limits: limits)
        let magic = try reader.u32("magic")
        guard magic == magicWord else {
            throw .badMagic(found: withUnsafeBytes(of: magic.littleEndian) { Array($0) })
        }
        let version = try reader.u16("version")
        if version != protocolVersion {
            // An `error` keeps its layout in every version, so it is readable in any of them.
            guard (errorVersion..<protocolVersion).contains(version) else { throw .unsupportedVersion(found: version) }
            if bytes.count <= 6 { _ = try reader.u8("kind") }  // truncated before the kind
            guard bytes[6] == Kind.error.rawValue else { throw .unsupportedVersion(found: version) }
        }
        let kindCode = try reader.u8("kind")
        guard let kind = Kind(rawValue: kindCode) else { throw .unknownKind(found: kindCode) }
        let flags = try reader.u8("flags")
        guard flags == 0 else { throw .outOfRange(field: "flags", value: String(flags), allowed: "0 (reserved)") }

        let message: WireMessage
        switch kind {
        case .hello: message = .hello(try Hello(from: &reader))
        case .welcome: message = .welcome(try Welcome(from: &reader))
        case .jobSpec: message = .jobSpec(try JobSpec(from: &reader))
        case .shardRows: message = .shardRows(try ShardRows(from: &reader))
        case .parameters: message = .parameters(try Parameters(from: &reader))
        case .assignment: message = .assignment(try Assignment(from: &reader))
        case .gradientResult: message = .gradientResult(try GradientResult(from: &reader))
        case .localResult: message = .localResult(try LocalResult(from: &reader))
        case .scoreChunk: message = .scoreChunk(try ScoreChunk(from: &reader))
        case .scoreResult: message = .scoreResult(try ScoreResult(from: &reader))
        case .heartbeat: message = .heartbeat(try Heartbeat(from: &reader))
        case .error: message = .error(try ErrorReport(from: &reader))
        case .goodbye: message = .goodbye(try Goodbye(from: &reader))
        case .roster: message = .roster(try Roster(from: &reader))
        case .reduce: message = .reduce(try ReduceOrder(from: &reader))
        case .segment: message = .segment(try Segment(from: &reader))
        case .stepReady: message = .stepReady(try StepReady(from: &reader))
        case .stateRequest: message = .stateRequest(try StateRequest(from: &reader))
        case .state: message = .state(try TrainingState(from: &reader))
        }
        guard reader.remaining == 0 else { throw .trailingBytes(count: reader.remaining) }
        try message.validate(limits: limits)
        return message
    }

    /// Decodes one message from any byte collection (`[UInt8]`, `ArraySlice<UInt8>`, `Data`, …),
    /// reading contiguous storage in place; see ``decode(_:limits:)``.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes, limits: WireLimits = .default) throws(WireError) -> WireMessage {
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(WireError) -> WireMessage in try decode(UnsafeRawBufferPointer(buffer), limits: limits) }
        }
        if let result { return try result.get() }
        let count = bytes.count
        guard count <= limits.maxFrameBytes else {
            throw .countTooLarge(field: "frame", count: count, limit: limits.maxFrameBytes)
        }
        return try decode(Array(bytes), limits: limits)
    }

    // MARK: Encoding

    /// The message's bytes: header and body, exactly as `docs/protocol.md` lays them out.
    ///
    /// Encoding does not validate: call ``validate(limits:)`` first when the values may be
    /// out of range (for example to catch a non-finite gradient before sending it). Every
    /// array and string must have fewer than 2^32 elements (a larger one is a programming
    /// error and traps).
    public func encoded() -> [UInt8] {
        var counter = WireByteCounter()
        write(to: &counter)
        let size = counter.byteCount
        return [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var writer = WireBufferWriter(UnsafeMutableRawBufferPointer(buffer))
            write(to: &writer)
            precondition(writer.offset == size, "FlowWire: encoder wrote \(writer.offset) of \(size) bytes")
            initialized = size
        }
    }

    /// The length of ``encoded()``, computed without encoding (compare it with
    /// ``WireLimits/maxFrameBytes`` before sending).
    public var encodedByteCount: Int {
        var counter = WireByteCounter()
        write(to: &counter)
        return counter.byteCount
    }

    private func write<Sink: WireSink>(to sink: inout Sink) {
        Self.magic.withUnsafeBytes { sink.raw($0) }
        sink.u16(kind == .error ? Self.errorVersion : Self.protocolVersion)
        sink.u8(kind.rawValue)
        sink.u8(0)
        switch self {
        case .hello(let m): m.write(to: &sink)
        case .welcome(let m): m.write(to: &sink)
        case .jobSpec(let m): m.write(to: &sink)
        case .shardRows(let m): m.write(to: &sink)
        case .parameters(let m): m.write(to: &sink)
        case .assignment(let m): m.write(to: &sink)
        case .gradientResult(let m): m.write(to: &sink)
        case .localResult(let m): m.write(to: &sink)
        case .scoreChunk(let m): m.write(to: &sink)
        case .scoreResult(let m): m.write(to: &sink)
        case .heartbeat(let m): m.write(to: &sink)
        case .error(let m): m.write(to: &sink)
        case .goodbye(let m): m.write(to: &sink)
        case .roster(let m): m.write(to: &sink)
        case .reduce(let m): m.write(to: &sink)
        case .segment(let m): m.write(to: &sink)
        case .stepReady(let m): m.write(to: &sink)
        case .stateRequest(let m): m.write(to: &sink)
        case .state(let m): m.write(to: &sink)
        }
    }

    // MARK: Validation

    /// Checks every field as the decoder does after parsing: ranges, finiteness, consistency
    /// between fields, and `limits`. A message that passes encodes to bytes that decode back
    /// to it.
    public func validate(limits: WireLimits = .default) throws(WireError) {
        switch self {
        case .hello(let m): try m.validate(limits: limits)
        case .welcome(let m): try m.validate(limits: limits)
        case .jobSpec(let m): try m.validate(limits: limits)
        case .shardRows(let m): try m.validate(limits: limits)
        case .parameters(let m): try m.validate(limits: limits)
        case .assignment(let m): try m.validate(limits: limits)
        case .gradientResult(let m): try m.validate(limits: limits)
        case .localResult(let m): try m.validate(limits: limits)
        case .scoreChunk(let m): try m.validate(limits: limits)
        case .scoreResult(let m): try m.validate(limits: limits)
        case .heartbeat(let m): try m.validate(limits: limits)
        case .error(let m): try m.validate(limits: limits)
        case .goodbye(let m): try m.validate(limits: limits)
        case .roster(let m): try m.validate(limits: limits)
        case .reduce(let m): try m.validate(limits: limits)
        case .segment(let m): try m.validate(limits: limits)
        case .stepReady(let m): try m.validate(limits: limits)
        case .stateRequest: break
        case .state(let m): try m.validate(limits: limits)
        }
        let size = encodedByteCount
        guard size <= limits.maxFrameBytes else {
            throw .countTooLarge(field: "frame", count: size, limit: limits.maxFrameBytes)
        }
    }

    // MARK: Helpers for senders

    /// `text` shortened to at most `maxBytes` UTF-8 bytes at a character boundary, so that
    /// free text (error messages, names) always fits ``WireLimits/maxStringBytes``.
    public static func truncatedUTF8(_ text: String, maxBytes: Int = WireLimits.default.maxStringBytes) -> String {
        guard text.utf8.count > maxBytes else { return text }
        var result = ""
        var used = 0
        for character in text {
            let size = character.utf8.count
            if used + size > maxBytes { break }
            result.append(character)
            used += size
        }
        return result
    }
}
