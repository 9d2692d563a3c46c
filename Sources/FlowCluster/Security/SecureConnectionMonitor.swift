import Foundation
import ZeroMQ

/// Watches a worker's CURVE connection and explains why the coordinator does not answer when
/// the handshake fails: a refused key (the coordinator's ZAP handler said 400) or a failed
/// handshake (a wrong `--server-key`, or a coordinator without CURVE). Each explanation is
/// logged at once, then at most once a minute (libzmq retries every 100 ms).
///
/// Not `Sendable`: it holds a socket, used on the worker's thread only.
final class SecureConnectionMonitor {
    private let events: ZMQSocket
    private weak var socket: ZMQSocket?
    private let security: ClusterSecurity.Client
    nonisolated(unsafe) private static var counter = 0
    /// When each kind of explanation was last logged, across reconnections (a process runs one
    /// worker, on one thread).
    nonisolated(unsafe) private static var lastLogged: [UInt16: Double] = [:]

    /// Starts monitoring `socket` (call before it connects).
    init(socket: ZMQSocket, security: ClusterSecurity.Client) throws {
        Self.counter += 1
        let endpoint = "inproc://tributary-worker-monitor-\(getpid())-\(Self.counter)"
        try socket.monitor(endpoint, events: [.handshakeFailedAuth, .handshakeFailedNoDetail, .handshakeFailedProtocol])
        events = try ZMQSocket(context: socket.context, type: .pair)
        try events.connect(endpoint)
        self.socket = socket
        self.security = security
    }

    /// Logs what happened since the last call.
    func poll(now: Double, log: (String) -> Void) {
        while let frames = try? events.receive(timeoutMilliseconds: 0, maxFrames: 4), let event = ZMQMonitorEvent(frames: frames) {
            let kind = event.event.rawValue
            if let last = Self.lastLogged[kind], now - last < 60 { continue }
            Self.lastLogged[kind] = now
            if event.event == .handshakeFailedAuth {
                log("the coordinator refused this worker's key \(security.keyPair.publicKey.fingerprint) (ZAP status \(event.value)): its public key must be in the coordinator's --authorized-keys (then SIGHUP the coordinator)")
            } else {
                log("the CURVE handshake with the coordinator failed: is --server-key the coordinator's public key (pinned \(security.serverKey.fingerprint)), and does the coordinator run with --key?")
            }
        }
    }

    /// Stops monitoring and closes the event socket.
    func stop() {
        try? socket?.monitor(nil, events: [])
        events.close()
    }
}
