import CZeroMQ

/// Connection events a socket can report (`zmq_socket_monitor`), as a set to subscribe to.
public struct ZMQMonitorEvents: OptionSet, Hashable, Sendable {
    /// libzmq's `ZMQ_EVENT_*` bits.
    public let rawValue: UInt16

    /// A set from libzmq's `ZMQ_EVENT_*` bits.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A connection to a peer was established (`ZMQ_EVENT_CONNECTED`).
    public static let connected = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_CONNECTED))
    /// A connection was lost (`ZMQ_EVENT_DISCONNECTED`).
    public static let disconnected = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_DISCONNECTED))
    /// The security handshake completed (`ZMQ_EVENT_HANDSHAKE_SUCCEEDED`).
    public static let handshakeSucceeded = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_SUCCEEDED))
    /// The handshake failed without a protocol reason, e.g. the peer closed the connection
    /// because it could not decrypt our CURVE hello: a wrong server key
    /// (`ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL`, value: errno).
    public static let handshakeFailedNoDetail = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL))
    /// The handshake broke the protocol (`ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL`, value: a
    /// `ZMQ_PROTOCOL_ERROR_*` code), e.g. mismatched mechanisms.
    public static let handshakeFailedProtocol = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL))
    /// The peer's authentication refused us (`ZMQ_EVENT_HANDSHAKE_FAILED_AUTH`, value: the ZAP
    /// status code, e.g. 400).
    public static let handshakeFailedAuth = ZMQMonitorEvents(rawValue: UInt16(ZMQ_EVENT_HANDSHAKE_FAILED_AUTH))
}

/// One event read from a monitor socket: two frames, `u16 event, u32 value` (native byte
/// order) and the endpoint.
public struct ZMQMonitorEvent: Hashable, Sendable {
    /// The event (one bit of ``ZMQMonitorEvents``).
    public var event: ZMQMonitorEvents
    /// The event's value (an errno, a protocol error code or a ZAP status code).
    public var value: UInt32
    /// The endpoint concerned.
    public var endpoint: String

    /// Parses the frames of one monitor message; nil when they are not one.
    public init?(frames: [[UInt8]]) {
        guard frames.count == 2, frames[0].count == 6 else { return nil }
        let head = frames[0]
        event = ZMQMonitorEvents(rawValue: UInt16(head[0]) | UInt16(head[1]) << 8)
        value = UInt32(head[2]) | UInt32(head[3]) << 8 | UInt32(head[4]) << 16 | UInt32(head[5]) << 24
        endpoint = String(decoding: frames[1], as: UTF8.self)
    }
}

extension ZMQSocket {
    /// Publishes `events` of this socket on a PAIR socket bound at `endpoint` (an `inproc://`
    /// address in the same context; `zmq_socket_monitor`). Connect a ``SocketType/pair`` socket
    /// there and read ``ZMQMonitorEvent``s from it. Pass nil to stop monitoring.
    public func monitor(_ endpoint: String?, events: ZMQMonitorEvents) throws {
        let socket = try open("monitor")
        try call("zmq_socket_monitor", detail: endpoint ?? "stop") {
            zmq_socket_monitor(socket, endpoint, Int32(events.rawValue))
        }
    }
}
