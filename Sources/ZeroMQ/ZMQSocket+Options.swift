import CZeroMQ

/// What ``ZMQSocket/events`` reports and what ``ZMQPoller`` waits for.
public struct ZMQEvents: OptionSet, Hashable, Sendable {
    /// libzmq's `ZMQ_POLL*` bits.
    public let rawValue: Int16

    /// Creates a set from libzmq's `ZMQ_POLL*` bits.
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// At least one message can be received without blocking (`ZMQ_POLLIN`).
    public static let readable = ZMQEvents(rawValue: Int16(ZMQ_POLLIN))
    /// At least one message can be sent without blocking (`ZMQ_POLLOUT`).
    public static let writable = ZMQEvents(rawValue: Int16(ZMQ_POLLOUT))
    /// An error condition on a raw file descriptor (`ZMQ_POLLERR`).
    public static let error = ZMQEvents(rawValue: Int16(ZMQ_POLLERR))
}

/// Socket options (`zmq_setsockopt` / `zmq_getsockopt`) as typed methods and properties.
///
/// Set options before `bind`/`connect`: libzmq applies most of them (high-water marks,
/// message size, heartbeats, CURVE, routing id) to connections made afterwards. Durations are
/// in milliseconds; −1 means "forever" where libzmq allows it.
extension ZMQSocket {
    // MARK: Lifetime and queues

    /// How long, in milliseconds, unsent messages are kept after ``close()`` (`ZMQ_LINGER`);
    /// 0 discards them (the default of every `ZMQSocket`), −1 keeps them until sent.
    public func setLinger(_ milliseconds: Int) throws {
        try setInt32(ZMQ_LINGER, "linger", milliseconds, minimum: -1)
    }

    /// The linger in milliseconds (see ``setLinger(_:)``).
    public var linger: Int {
        get throws { try int32Option(ZMQ_LINGER, "linger") }
    }

    /// The most messages queued for sending per peer (`ZMQ_SNDHWM`, default 1000, 0 = no
    /// limit). Beyond it a send blocks, fails with `dontWait`, or drops (PUB), by pattern.
    public func setSendHighWaterMark(_ messages: Int) throws {
        try setInt32(ZMQ_SNDHWM, "sendHighWaterMark", messages, minimum: 0)
    }

    /// The send high-water mark (see ``setSendHighWaterMark(_:)``).
    public var sendHighWaterMark: Int {
        get throws { try int32Option(ZMQ_SNDHWM, "sendHighWaterMark") }
    }

    /// The most messages queued on receipt per peer (`ZMQ_RCVHWM`, default 1000, 0 = no limit).
    public func setReceiveHighWaterMark(_ messages: Int) throws {
        try setInt32(ZMQ_RCVHWM, "receiveHighWaterMark", messages, minimum: 0)
    }

    /// The receive high-water mark (see ``setReceiveHighWaterMark(_:)``).
    public var receiveHighWaterMark: Int {
        get throws { try int32Option(ZMQ_RCVHWM, "receiveHighWaterMark") }
    }

    /// The largest inbound frame in bytes (`ZMQ_MAXMSGSIZE`, −1 = no limit, the default).
    ///
    /// In libzmq 4.3 the limit applies to each frame: a peer that sends a larger one is
    /// disconnected by the I/O thread and the frame never reaches ``receive(timeoutMilliseconds:maxFrames:)``;
    /// other peers are unaffected. Combine it with the receive frame limit to bound a message.
    public func setMaxMessageSize(_ bytes: Int64) throws {
        let socket = try open("setMaxMessageSize")
        guard bytes >= -1 else {
            throw ZeroMQError.outOfRange(name: "maxMessageSize", value: bytes, range: -1...Int64.max)
        }
        var value = bytes
        try call("zmq_setsockopt", detail: "maxMessageSize") {
            zmq_setsockopt(socket, ZMQ_MAXMSGSIZE, &value, MemoryLayout<Int64>.size)
        }
    }

    /// The inbound frame size limit in bytes (see ``setMaxMessageSize(_:)``).
    public var maxMessageSize: Int64 {
        get throws {
            let socket = try open("maxMessageSize")
            var value: Int64 = 0
            var size = MemoryLayout<Int64>.size
            try call("zmq_getsockopt", detail: "maxMessageSize") {
                zmq_getsockopt(socket, ZMQ_MAXMSGSIZE, &value, &size)
            }
            return value
        }
    }

    /// Connect-side only: queue messages only to completed connections (`ZMQ_IMMEDIATE`), so a
    /// send to a peer that is not there yet blocks or fails instead of waiting in a queue.
    public func setImmediate(_ on: Bool) throws {
        try setInt32(ZMQ_IMMEDIATE, "immediate", on ? 1 : 0, minimum: 0)
    }

    /// Whether TCP endpoints may be IPv6 (`ZMQ_IPV6`, off by default): needed to bind or connect
    /// an IPv6 address such as `tcp://[::1]:5570`; with it on, a wildcard bind accepts both
    /// IPv4 and IPv6 peers.
    public func setIPv6(_ on: Bool) throws {
        try setInt32(ZMQ_IPV6, "ipv6", on ? 1 : 0, minimum: 0)
    }

    // MARK: Timeouts

    /// How long a blocking receive waits, in milliseconds (`ZMQ_RCVTIMEO`, −1 = forever, the
    /// default). Used by ``receive(timeoutMilliseconds:maxFrames:)`` when it is given no timeout.
    public func setReceiveTimeout(_ milliseconds: Int) throws {
        try setInt32(ZMQ_RCVTIMEO, "receiveTimeout", milliseconds, minimum: -1)
    }

    /// The receive timeout in milliseconds (see ``setReceiveTimeout(_:)``).
    public var receiveTimeout: Int {
        get throws { try int32Option(ZMQ_RCVTIMEO, "receiveTimeout") }
    }

    /// How long a blocking send waits, in milliseconds (`ZMQ_SNDTIMEO`, −1 = forever, the
    /// default); when it expires `send` returns false.
    public func setSendTimeout(_ milliseconds: Int) throws {
        try setInt32(ZMQ_SNDTIMEO, "sendTimeout", milliseconds, minimum: -1)
    }

    /// The send timeout in milliseconds (see ``setSendTimeout(_:)``).
    public var sendTimeout: Int {
        get throws { try int32Option(ZMQ_SNDTIMEO, "sendTimeout") }
    }

    // MARK: Heartbeats (ZMTP PING/PONG)

    /// Send a ZMTP PING every `milliseconds` on each connection (`ZMQ_HEARTBEAT_IVL`, 0 = off).
    public func setHeartbeatInterval(_ milliseconds: Int) throws {
        try setInt32(ZMQ_HEARTBEAT_IVL, "heartbeatInterval", milliseconds, minimum: 0)
    }

    /// Close a connection when no traffic follows a PING within `milliseconds`
    /// (`ZMQ_HEARTBEAT_TIMEOUT`; default: the interval).
    public func setHeartbeatTimeout(_ milliseconds: Int) throws {
        try setInt32(ZMQ_HEARTBEAT_TIMEOUT, "heartbeatTimeout", milliseconds, minimum: 0)
    }

    /// Ask the peer to close the connection after `milliseconds` without traffic
    /// (`ZMQ_HEARTBEAT_TTL`; libzmq keeps it in tenths of a second, at most 6553599 ms).
    public func setHeartbeatTTL(_ milliseconds: Int) throws {
        guard (0...6_553_599).contains(milliseconds) else {
            throw ZeroMQError.outOfRange(name: "heartbeatTTL", value: Int64(milliseconds), range: 0...6_553_599)
        }
        try setInt32(ZMQ_HEARTBEAT_TTL, "heartbeatTTL", milliseconds, minimum: 0)
    }

    // MARK: Routing

    /// ROUTER: sending to a routing id that is not connected throws
    /// ``ZeroMQError/isHostUnreachable`` instead of silently dropping the message
    /// (`ZMQ_ROUTER_MANDATORY`).
    public func setRouterMandatory(_ on: Bool) throws {
        try setInt32(ZMQ_ROUTER_MANDATORY, "routerMandatory", on ? 1 : 0, minimum: 0)
    }

    /// The identity this socket announces to ROUTER peers (`ZMQ_ROUTING_ID`): 1…255 bytes, not
    /// starting with a zero byte (libzmq reserves those). Set it before connecting.
    public func setRoutingID(_ id: [UInt8]) throws {
        try setBytes(ZMQ_ROUTING_ID, "routingID", id)
    }

    /// The routing id set with ``setRoutingID(_:)`` (empty when none was set).
    public var routingID: [UInt8] {
        get throws { try bytesOption(ZMQ_ROUTING_ID, "routingID", capacity: 256) }
    }

    /// SUB: receive messages whose first frame starts with `prefix` (`ZMQ_SUBSCRIBE`); the
    /// empty prefix subscribes to everything. Subscriptions add up.
    public func subscribe(_ prefix: [UInt8] = []) throws {
        try setBytes(ZMQ_SUBSCRIBE, "subscribe", prefix)
    }

    /// SUB: subscribe to the UTF-8 bytes of `prefix`.
    public func subscribe(_ prefix: String) throws {
        try subscribe(Array(prefix.utf8))
    }

    /// SUB: remove one earlier ``subscribe(_:)-([UInt8])`` of exactly `prefix` (`ZMQ_UNSUBSCRIBE`).
    public func unsubscribe(_ prefix: [UInt8]) throws {
        try setBytes(ZMQ_UNSUBSCRIBE, "unsubscribe", prefix)
    }

    // MARK: Security (CURVE, ZAP)

    /// Act as the CURVE server of every connection (`ZMQ_CURVE_SERVER`); also set the server's
    /// secret key. Without a ZAP handler libzmq 4.3 admits every client that knows the server's
    /// public key; set ``setZAPDomain(_:)`` and run a ZAP handler to check client keys.
    public func setCurveServer(_ on: Bool) throws {
        try setInt32(ZMQ_CURVE_SERVER, "curveServer", on ? 1 : 0, minimum: 0)
    }

    /// Whether the socket is a CURVE server (see ``setCurveServer(_:)``).
    public var curveServer: Bool {
        get throws { try int32Option(ZMQ_CURVE_SERVER, "curveServer") != 0 }
    }

    /// This socket's long-term CURVE public key (`ZMQ_CURVE_PUBLICKEY`; clients must set it).
    public func setCurvePublicKey(_ key: CurveKey) throws {
        try setBytes(ZMQ_CURVE_PUBLICKEY, "curvePublicKey", key.bytes)
    }

    /// This socket's long-term CURVE secret key (`ZMQ_CURVE_SECRETKEY`; clients and servers).
    public func setCurveSecretKey(_ key: CurveKey) throws {
        try setBytes(ZMQ_CURVE_SECRETKEY, "curveSecretKey", key.bytes)
    }

    /// Client: the public key of the server to talk to (`ZMQ_CURVE_SERVERKEY`). Setting it makes
    /// the socket a CURVE client.
    public func setCurveServerKey(_ key: CurveKey) throws {
        try setBytes(ZMQ_CURVE_SERVERKEY, "curveServerKey", key.bytes)
    }

    /// Makes the socket a CURVE server with `keyPair` (server flag, secret and public key).
    /// Call before `bind`.
    public func configureCurveServer(keyPair: CurveKeyPair) throws {
        try setCurveServer(true)
        try setCurveSecretKey(keyPair.secretKey)
        try setCurvePublicKey(keyPair.publicKey)
    }

    /// Makes the socket a CURVE client of the server whose public key is `serverKey`,
    /// authenticating with `keyPair`. Call before `connect`.
    public func configureCurveClient(serverKey: CurveKey, keyPair: CurveKeyPair) throws {
        try setCurveServerKey(serverKey)
        try setCurvePublicKey(keyPair.publicKey)
        try setCurveSecretKey(keyPair.secretKey)
    }

    /// The ZAP domain of the socket (`ZMQ_ZAP_DOMAIN`): with a ZAP handler bound at
    /// `inproc://zeromq.zap.01`, connections to this socket are authenticated by it.
    public func setZAPDomain(_ domain: String) throws {
        try setBytes(ZMQ_ZAP_DOMAIN, "zapDomain", Array(domain.utf8))
    }

    /// Refuse every connection whose ZAP request cannot be delivered
    /// (`ZMQ_ZAP_ENFORCE_DOMAIN`, option 93 — a draft option in libzmq 4.3's header, accepted by
    /// its library). Without it, a CURVE server with a ZAP domain but no handler bound at
    /// `inproc://zeromq.zap.01` admits *every* client that knows its public key (the
    /// "Stonehouse" legacy mode); with it, such connections fail their handshake.
    public func setZAPEnforceDomain(_ on: Bool) throws {
        try setInt32(ZMQSocket.zapEnforceDomainOption, "zapEnforceDomain", on ? 1 : 0, minimum: 0)
    }

    /// Whether ``setZAPEnforceDomain(_:)`` is on.
    public var zapEnforceDomain: Bool {
        get throws { try int32Option(ZMQSocket.zapEnforceDomainOption, "zapEnforceDomain") != 0 }
    }

    /// `ZMQ_ZAP_ENFORCE_DOMAIN`, which `zmq.h` declares only under `ZMQ_BUILD_DRAFT_API`.
    static let zapEnforceDomainOption: Int32 = 93

    // MARK: Polling from outside libzmq

    /// What the socket can do now without blocking (`ZMQ_EVENTS`). Reading it also lets
    /// libzmq process pending commands, which is what edge-triggered ``fileDescriptor`` needs.
    public var events: ZMQEvents {
        get throws { ZMQEvents(rawValue: Int16(truncatingIfNeeded: try int32Option(ZMQ_EVENTS, "events"))) }
    }

    /// A file descriptor that becomes readable when ``events`` may have changed (`ZMQ_FD`).
    /// It is edge-triggered and signals only a change: after it fires, read ``events`` and
    /// receive until it no longer says ``ZMQEvents/readable``. Do not read from or close it.
    public var fileDescriptor: Int32 {
        get throws { Int32(try int32Option(ZMQ_FD, "fileDescriptor")) }
    }

    // MARK: Raw access (pointers stay inside these helpers)

    func setInt32(_ option: Int32, _ name: String, _ value: Int, minimum: Int) throws {
        let socket = try open("set \(name)")
        guard value >= minimum, var value32 = Int32(exactly: value) else {
            throw ZeroMQError.outOfRange(name: name, value: Int64(value), range: Int64(minimum)...Int64(Int32.max))
        }
        try call("zmq_setsockopt", detail: name) {
            zmq_setsockopt(socket, option, &value32, MemoryLayout<Int32>.size)
        }
    }

    func int32Option(_ option: Int32, _ name: String) throws -> Int {
        let socket = try open("get \(name)")
        var value: Int32 = 0
        var size = MemoryLayout<Int32>.size
        try call("zmq_getsockopt", detail: name) { zmq_getsockopt(socket, option, &value, &size) }
        return Int(value)
    }

    func setBytes(_ option: Int32, _ name: String, _ bytes: [UInt8]) throws {
        let socket = try open("set \(name)")
        // An empty array may have no base address; libzmq gets a valid pointer with length 0.
        let zero: [UInt8] = [0]
        try (bytes.isEmpty ? zero : bytes).withUnsafeBytes { buffer -> Void in
            try call("zmq_setsockopt", detail: name) {
                zmq_setsockopt(socket, option, buffer.baseAddress, bytes.count)
            }
        }
    }

    func bytesOption(_ option: Int32, _ name: String, capacity: Int) throws -> [UInt8] {
        let socket = try open("get \(name)")
        return try [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            var size = capacity
            try call("zmq_getsockopt", detail: name) {
                zmq_getsockopt(socket, option, buffer.baseAddress, &size)
            }
            count = min(size, capacity)
        }
    }

    func stringOption(_ option: Int32, _ name: String, capacity: Int) throws -> String {
        var bytes = try bytesOption(option, name, capacity: capacity)
        // libzmq counts the terminating NUL in the size of string options.
        while bytes.last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
