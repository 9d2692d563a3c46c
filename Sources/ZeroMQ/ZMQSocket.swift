import CZeroMQ

/// A ZeroMQ socket (`zmq_socket`): bind or connect it, set its options, send and receive
/// multipart messages.
///
/// **One thread at a time.** libzmq sockets are not thread-safe, so `ZMQSocket` is not
/// `Sendable`: create it on the thread that uses it (or hand it over with `sending`, which
/// libzmq allows with a full memory barrier — what a thread hand-off gives). Run blocking
/// receives and polls on a dedicated thread, never on Swift's cooperative pool.
///
/// **Linger.** libzmq's default linger is −1 (keep unsent messages forever, so terminating the
/// context hangs while a peer is gone). A `ZMQSocket` starts with linger 0 instead: closing
/// discards what has not been sent. Raise it with ``setLinger(_:)`` when a last message must
/// get out.
///
/// The socket keeps its ``context`` alive and is closed by ``close()`` or by `deinit`.
public final class ZMQSocket {
    /// The context the socket belongs to.
    public let context: ZMQContext
    /// The socket's pattern.
    public let type: SocketType
    /// The libzmq socket, nil once closed.
    private(set) var handle: UnsafeMutableRawPointer?

    /// Creates a socket of `type` in `context`, with linger 0.
    public init(context: ZMQContext, type: SocketType) throws {
        self.context = context
        self.type = type
        let handle = try context.makeSocket(type.cValue)
        self.handle = handle
        try setLinger(0)
    }

    deinit {
        close()
    }

    /// Whether ``close()`` has been called.
    public var isClosed: Bool { handle == nil }

    /// Closes the socket (`zmq_close`). Messages not yet sent are kept for at most the socket's
    /// linger, in the background. Calling it again does nothing; any other use of a closed
    /// socket throws ``ZeroMQError/socketClosed(operation:)``.
    public func close() {
        guard let handle else { return }
        self.handle = nil
        zmq_close(handle)
    }

    /// Accepts connections on `endpoint` (`zmq_bind`), e.g. `tcp://*:5570`,
    /// `tcp://127.0.0.1:*` (any free port: read it back with ``lastEndpoint``) or
    /// `ipc:///tmp/tributary.ipc`.
    public func bind(_ endpoint: String) throws {
        let socket = try open("bind")
        try call("zmq_bind", detail: endpoint) { zmq_bind(socket, endpoint) }
    }

    /// Stops accepting connections on `endpoint` (`zmq_unbind`); for a wildcard bind pass the
    /// resolved ``lastEndpoint``.
    public func unbind(_ endpoint: String) throws {
        let socket = try open("unbind")
        try call("zmq_unbind", detail: endpoint) { zmq_unbind(socket, endpoint) }
    }

    /// Connects to `endpoint` (`zmq_connect`). Connecting is asynchronous: it succeeds before
    /// the peer exists, and libzmq keeps reconnecting while the peer is away.
    public func connect(_ endpoint: String) throws {
        let socket = try open("connect")
        try call("zmq_connect", detail: endpoint) { zmq_connect(socket, endpoint) }
    }

    /// Disconnects from an endpoint given to ``connect(_:)`` (`zmq_disconnect`).
    public func disconnect(_ endpoint: String) throws {
        let socket = try open("disconnect")
        try call("zmq_disconnect", detail: endpoint) { zmq_disconnect(socket, endpoint) }
    }

    /// The endpoint of the last bind or connect, resolved (`ZMQ_LAST_ENDPOINT`): after binding
    /// `tcp://127.0.0.1:*` it holds the port chosen, e.g. `tcp://127.0.0.1:43121`. Nil when
    /// the socket has not been bound or connected.
    public var lastEndpoint: String? {
        get throws {
            let text = try stringOption(ZMQ_LAST_ENDPOINT, "lastEndpoint", capacity: 1024)
            return text.isEmpty ? nil : text
        }
    }

    /// The libzmq socket, or ``ZeroMQError/socketClosed(operation:)``.
    @inline(__always)
    func open(_ operation: String) throws(ZeroMQError) -> UnsafeMutableRawPointer {
        guard let handle else { throw ZeroMQError.socketClosed(operation: operation) }
        return handle
    }
}

/// A socket belongs to one thread at a time (see ``ZMQSocket``).
@available(*, unavailable)
extension ZMQSocket: Sendable {}
