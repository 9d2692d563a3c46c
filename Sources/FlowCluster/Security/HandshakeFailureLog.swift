import Foundation
import ZeroMQ

/// The coordinator's side of a failed handshake: a connection that never becomes a peer (a plain
/// worker at a CURVE coordinator, a CURVE worker at a plain one, a worker pinned to another
/// server key, something that is not a worker at all) never reaches the ZAP handler nor the
/// protocol, so without this the coordinator's log says nothing while the worker retries. Each
/// kind of failure is logged at once, then at most once a minute, with the count since the
/// last line (libzmq's peers retry every 100 ms).
///
/// Not `Sendable`: it holds the monitor's socket, read on the driver's thread only.
final class HandshakeFailureLog {
    private let events: ZMQSocket
    private weak var socket: ZMQSocket?
    private let secure: Bool
    private var lastLogged: [UInt32: Double] = [:]
    private var unlogged: [UInt32: Int] = [:]
    nonisolated(unsafe) private static var counter = 0

    /// Starts watching `socket` (before it binds); `secure`: the coordinator runs with CURVE.
    init(socket: ZMQSocket, secure: Bool) throws {
        Self.counter += 1
        let endpoint = "inproc://tributary-coordinator-monitor-\(getpid())-\(Self.counter)"
        // Protocol failures only: the "no detail" event that follows one is the peer hanging up.
        try socket.monitor(endpoint, events: [.handshakeFailedProtocol])
        events = try ZMQSocket(context: socket.context, type: .pair)
        try events.connect(endpoint)
        self.socket = socket
        self.secure = secure
    }

    /// Logs the failures reported since the last call (rate-limited per kind).
    func poll(now: Double, log: (String) -> Void) {
        while let frames = try? events.receive(timeoutMilliseconds: 0, maxFrames: 4), let event = ZMQMonitorEvent(frames: frames) {
            let kind = event.value  // the protocol error: one line per kind of failure
            if let last = lastLogged[kind], now - last < 60 {
                unlogged[kind, default: 0] += 1
                continue
            }
            let more = unlogged.removeValue(forKey: kind).map { " (\($0) more since the last such line)" } ?? ""
            lastLogged[kind] = now
            log(explain(event) + more)
        }
    }

    private func explain(_ event: ZMQMonitorEvent) -> String {
        let head = "a connection to \(event.endpoint) failed the \(secure ? "CURVE " : "")handshake"
        switch event.value {
        case 0x1100_0002:  // ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
            return secure
                ? "\(head): the peer does not speak CURVE (a worker without --key and --server-key?); it is not admitted (docs/security.md)"
                : "\(head): the peer speaks CURVE (a worker with --key and --server-key at this coordinator without them?); it is not admitted (docs/security.md)"
        case 0x1100_0001:  // ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC
            return "\(head): its CURVE messages do not decrypt (a worker whose --server-key is another coordinator's key?); it is not admitted (docs/security.md)"
        default:
            return "\(head) (protocol error 0x\(String(event.value, radix: 16))): not a Tributary worker, or a damaged connection; it is not admitted (docs/security.md)"
        }
    }

    /// Stops watching and closes the event socket.
    func stop() {
        try? socket?.monitor(nil, events: [])
        events.close()
    }
}
