import Foundation
import ZeroMQ

/// The ROUTER side the two coordinator drivers (`Coordinator`, `ScoringCoordinator`) share:
/// the socket's set-up and bind behind CURVE, the machines' clock, receiving one message in
/// and decoding it with its connection's ZAP user id, the 20 ms tick cadence, non-blocking
/// sends, key revocation, a log line for failed handshakes, the linger that lets goodbyes leave,
/// and the log text of membership events.
///
/// The drivers keep only what differs: the limits they set on the socket, and the actions they
/// perform.
final class CoordinatorRouter {
    /// The socket (for the driver's sends).
    let socket: ZMQSocket
    /// The endpoint it is bound to, resolved (a `:0` port is the port the system chose).
    let endpoint: String
    private let security: ClusterSecurity.Server?
    private let log: (String) -> Void
    private let handshakes: HandshakeFailureLog?
    private let origin = ContinuousClock.now
    private var lastTick = 0.0
    /// Message bytes queued to peers and received from them (frames after the identity).
    private(set) var bytesSent = 0
    private(set) var bytesReceived = 0

    /// The tick cadence (s): `tickDue()` is true at most this often.
    static let tickInterval = 0.02
    /// How long a receive waits (ms) before the loop checks the clock.
    static let receiveTimeoutMilliseconds = 20

    private init(
        socket: ZMQSocket, endpoint: String, security: ClusterSecurity.Server?, handshakes: HandshakeFailureLog?, log: @escaping (String) -> Void
    ) {
        self.socket = socket
        self.handshakes = handshakes
        self.endpoint = endpoint
        self.security = security
        self.log = log
    }

    /// libzmq I/O threads of a coordinator. Each connection is served by one I/O thread, which
    /// also does its CURVE encryption: with two, the partials and parameter vectors of different
    /// workers move (and are encrypted) in parallel. Measured on 2 cores, 2 workers, alternating
    /// rounds: +10 % (tab16) and +20 % (wide64) samples/s with CURVE, no loss without.
    static let ioThreads = 2

    /// Opens a ROUTER with linger 0, lets `configure` set its limits, applies `security` (the
    /// ZAP handler runs, proven, before the socket binds, and outlives it), binds `endpoint`,
    /// runs `body`, then gives queued goodbyes up to 500 ms to leave and closes everything.
    static func serve<T>(
        bind endpoint: String, security: ClusterSecurity.Server?, log: @escaping (String) -> Void,
        configure: (ZMQSocket) throws -> Void, body: (CoordinatorRouter) throws -> T
    ) throws -> T {
        let context = try ZMQContext(ioThreads: CoordinatorRouter.ioThreads)
        defer { context.terminate() }
        let socket = try ZMQSocket(context: context, type: .router)
        defer { socket.close() }
        try socket.setLinger(0)
        try configure(socket)
        let zap = try security?.protect(socket)
        defer { zap?.stop() }
        // Failed handshakes are logged (a connection that fails one never reaches ZAP or the
        // machines); without the monitor the run goes on, only quieter.
        let handshakes = try? HandshakeFailureLog(socket: socket, secure: security != nil)
        defer { handshakes?.stop() }
        try socket.bind(endpoint: endpoint)
        let router = CoordinatorRouter(
            socket: socket, endpoint: (try? socket.lastEndpoint) ?? endpoint, security: security, handshakes: handshakes, log: log)
        let result = try body(router)
        // The goodbyes were only queued: give them a moment to leave before the socket closes
        // (with linger 0 they could be dropped, and a worker would wait for a coordinator that
        // is gone). Bounded, and only peers still connected hold it up.
        try? socket.setLinger(500)
        return result
    }

    /// Seconds since the router was opened: the `now` of the machine's events.
    func now() -> Double {
        let c = (ContinuousClock.now - origin).components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }

    /// The time, when a tick is due (`tickInterval` since the last one), else nil. A tick also
    /// logs the handshakes that failed since the last one.
    func tickDue() -> Double? {
        let t = now()
        guard t - lastTick >= Self.tickInterval else { return nil }
        lastTick = t
        handshakes?.poll(now: t, log: log)
        return t
    }

    /// Receives one message and hands it to `handle`, decoded (the codec stays at this edge: the
    /// machines take values): the sender's identity, the message (undecodable when the frame
    /// did not decode, or when the peer sent another number of frames) and, with CURVE, the
    /// connection's ZAP user id (the peer's public key). Nil on timeout or a signal.
    func receive<R>(handle: (_ identity: [UInt8], _ message: InboundMessage, _ userID: String?) -> R) throws -> R? {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        do {
            return try socket.receive(
                timeoutMilliseconds: Self.receiveTimeoutMilliseconds, maxFrames: 4, property: security == nil ? nil : "User-Id"
            ) { frames, userID in
                bytesReceived += frames.dropFirst().reduce(0) { $0 + $1.count }
                // Decoded in place: libzmq's buffer is read once, and what the message keeps is copied once.
                return handle(frames.first.map { Array($0) } ?? [], InboundMessage(decoding: frames.count == 2 ? frames[1] : empty), userID)
            }
        } catch let error as ZeroMQError where error.isInterrupted {
            return nil
        } catch let error as ZeroMQError where error.isTooManyFrames {
            return handle([], InboundMessage(decoding: empty), nil)
        }
    }

    /// Sends `body` to peer `identity` without blocking (see `ZMQSocket.sendToPeer`).
    func send(_ identity: [UInt8], _ body: [UInt8]) {
        if socket.sendToPeer(identity, body, log: log) { bytesSent += body.count }
    }

    /// Refuses CURVE key `z85` (a quarantined worker's) at the next connections, for the rest
    /// of the run.
    func revoke(_ z85: String) {
        guard let key = try? CurveKey(z85: z85), let security else { return }
        security.authorizedKeys.revoke(key)
        log("revoked key \(key.fingerprint) for the rest of this run: its connections are refused from now on")
    }

    /// A peer's identity in log lines: its first 8 bytes in hex.
    static func peerName(_ identity: [UInt8]) -> String {
        identity.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The log line of a membership event both machines report.
    static func describe(invalidMessageFrom peer: [UInt8], reason: String) -> String {
        "invalid message from peer \(peerName(peer)): \(reason) (further ones are only counted)"
    }

    static func describe(ignoredMessageFrom peer: [UInt8], reason: String) -> String {
        "ignored a message from peer \(peerName(peer)): \(reason)"
    }

    static func describe(refusedHelloFrom peer: [UInt8], reason: String, total: Int) -> String {
        "refused a hello from peer \(peerName(peer)): \(reason) (\(total) hellos refused so far)"
    }
}
