import Foundation
import ZeroMQ

/// Watches a worker's connection and explains why the coordinator does not answer when the
/// handshake fails: a refused key (the coordinator's ZAP handler said 400), a failed CURVE
/// handshake (a wrong `--server-key`, or a coordinator without CURVE), or a plain worker
/// talking to a CURVE coordinator. Each explanation is logged at once, then at most once a
/// minute (libzmq retries every 100 ms). It also counts the handshakes refused in a row (a
/// successful handshake resets the count), so the worker can give up (`--max-refusals`).
///
/// Not `Sendable`: it holds a socket, used on the worker's thread only.
final class SecureConnectionMonitor {
    private let events: ZMQSocket
    private weak var socket: ZMQSocket?
    private let security: ClusterSecurity.Client?
    nonisolated(unsafe) private static var counter = 0
    /// When each kind of explanation was last logged, across reconnections (a process runs one
    /// worker, on one thread).
    nonisolated(unsafe) private static var lastLogged: [UInt16: Double] = [:]

    /// Starts monitoring `socket` (call before it connects); `security` is nil for a plain worker.
    init(socket: ZMQSocket, security: ClusterSecurity.Client?) throws {
        Self.counter += 1
        let endpoint = "inproc://tributary-worker-monitor-\(getpid())-\(Self.counter)"
        try socket.monitor(endpoint, events: [.handshakeSucceeded, .handshakeFailedAuth, .handshakeFailedNoDetail, .handshakeFailedProtocol])
        events = try ZMQSocket(context: socket.context, type: .pair)
        try events.connect(endpoint)
        self.socket = socket
        self.security = security
    }

    /// Logs what happened since the last call, counting refused handshakes in `refusals` (set
    /// back to 0 by a successful one) with the explanation of the last in `lastRefusal`.
    func poll(now: Double, refusals: inout Int, lastRefusal: inout String, log: (String) -> Void) {
        while let frames = try? events.receive(timeoutMilliseconds: 0, maxFrames: 4), let event = ZMQMonitorEvent(frames: frames) {
            if event.event == .handshakeSucceeded {
                refusals = 0
                continue
            }
            let explanation = explain(event)
            refusals += 1
            lastRefusal = explanation
            let kind = event.event.rawValue
            if let last = Self.lastLogged[kind], now - last < 60 { continue }
            Self.lastLogged[kind] = now
            log(explanation)
        }
    }

    private func explain(_ event: ZMQMonitorEvent) -> String {
        guard let security else {
            return "the handshake with the coordinator failed: it probably runs with CURVE (--key and --authorized-keys); give this worker --key (its NAME.key) and --server-key (the coordinator's NAME.pub), see docs/security.md"
        }
        if event.event == .handshakeFailedAuth {
            return "the coordinator refused this worker's key \(security.keyPair.publicKey.fingerprint) (ZAP status \(event.value)): its public key must be in the coordinator's --authorized-keys (then SIGHUP the coordinator)"
        }
        return "the CURVE handshake with the coordinator failed: is --server-key the coordinator's public key (pinned \(security.serverKey.fingerprint)), and does the coordinator run with --key?"
    }

    /// Stops monitoring and closes the event socket.
    func stop() {
        try? socket?.monitor(nil, events: [])
        events.close()
    }
}
