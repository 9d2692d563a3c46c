import Foundation
import ZeroMQ

/// How the cluster's sockets are secured, packaged so that every driver applies it with one
/// call: ``Server/protect(_:)`` on a coordinator's ROUTER before it binds,
/// ``Client/protect(_:)`` on a worker's DEALER before it connects.
///
/// With CURVE every connection is encrypted and authenticated both ways: the worker pins the
/// coordinator's public key (a wrong server key fails the handshake), and the coordinator's
/// ZAP handler admits only the public keys of its allow-list. See docs/security.md.
public enum ClusterSecurity {
    /// The ZAP domain of the coordinator's sockets.
    public static let zapDomain = "tributary"

    /// The coordinator's side: its key pair and the keys it admits.
    public struct Server: Sendable {
        /// The coordinator's long-term key pair (its public key is the workers' `--server-key`).
        public var keyPair: CurveKeyPair
        /// The worker keys admitted; may be reloaded while the coordinator runs.
        public var authorizedKeys: AuthorizedKeyList
        /// Where refusals and admissions are logged (called on the ZAP handler's thread).
        public var log: @Sendable (String) -> Void

        public init(keyPair: CurveKeyPair, authorizedKeys: AuthorizedKeyList, log: @escaping @Sendable (String) -> Void) {
            self.keyPair = keyPair
            self.authorizedKeys = authorizedKeys
            self.log = log
        }

        /// Makes `socket` a CURVE server whose clients the allow-list authenticates: starts a
        /// ZAP handler in the socket's context, proves it answers, and only then sets the CURVE
        /// options, the ZAP domain and `ZMQ_ZAP_ENFORCE_DOMAIN` (so that connections fail,
        /// rather than pass unauthenticated, should the handler ever stop). Call it before
        /// `bind`; keep the returned handler until the socket is closed, then ``ZAPHandler/stop()``.
        ///
        /// - Throws: ``SecurityError/zapHandlerNotReady(reason:)`` when no handler can run in
        ///   this context — the caller must not bind.
        public func protect(_ socket: ZMQSocket) throws -> ZAPHandler {
            let keys = authorizedKeys
            let refusals = RefusalLog(log: log)
            let log = self.log
            let handler = ZAPHandler(context: socket.context) { request in
                let from = request.address.isEmpty ? "a local peer" : request.address
                guard let key = request.curveKey else {
                    refusals.note(key: nil, "refused a connection from \(from): mechanism \(request.mechanism), not CURVE")
                    return .deny(reason: "CURVE required")
                }
                if keys.isRevoked(key) {
                    refusals.note(key: key, "refused a connection from \(from): key \(key.z85) (\(key.fingerprint)) was revoked in this run (its worker was quarantined)")
                    return .deny(reason: "key revoked")
                }
                guard let label = keys.label(of: key) else {
                    refusals.note(key: key, "refused a connection from \(from): key \(key.z85) (\(key.fingerprint)) is not in \(keys.path)")
                    return .deny(reason: "key not authorized")
                }
                log("authenticated a connection from \(from): key \(key.fingerprint)\(label.isEmpty ? "" : " (\(label))")")
                return .allow(userID: key.z85)
            }
            do {
                try handler.start()
            } catch {
                throw SecurityError.zapHandlerNotReady(reason: "\(error)")
            }
            guard handler.isRunning else { throw SecurityError.zapHandlerNotReady(reason: "its thread stopped") }
            try socket.configureCurveServer(keyPair: keyPair)
            try socket.setZAPDomain(ClusterSecurity.zapDomain)
            try socket.setZAPEnforceDomain(true)
            return handler
        }
    }

    /// A worker's side: its key pair and the coordinator's public key it pins.
    public struct Client: Sendable {
        /// The worker's long-term key pair (its public key goes into the coordinator's allow-list).
        public var keyPair: CurveKeyPair
        /// The coordinator's public key; a coordinator without the matching secret key cannot
        /// complete the handshake.
        public var serverKey: CurveKey

        public init(keyPair: CurveKeyPair, serverKey: CurveKey) {
            self.keyPair = keyPair
            self.serverKey = serverKey
        }

        /// Makes `socket` a CURVE client of the pinned coordinator. Call it before `connect`.
        public func protect(_ socket: ZMQSocket) throws {
            try socket.configureCurveClient(serverKey: serverKey, keyPair: keyPair)
        }
    }
}

/// Logs refusals without letting a peer that retries (libzmq reconnects every 100 ms) flood
/// the log: the first refusal of each key is logged, then at most one line a minute per key
/// with the count since; at most `maxKeys` keys are tracked, refusals of further keys share
/// one line a minute.
///
/// `@unchecked Sendable` invariant: the state is touched only under `lock`.
final class RefusalLog: @unchecked Sendable {
    private let lock = NSLock()
    private let log: @Sendable (String) -> Void
    private let maxKeys: Int
    private let interval: Double
    private var seen: [CurveKey?: (last: Double, suppressed: Int)] = [:]
    private var overflow: (last: Double, suppressed: Int) = (-.infinity, 0)

    init(log: @escaping @Sendable (String) -> Void, maxKeys: Int = 1024, interval: Double = 60) {
        self.log = log
        self.maxKeys = maxKeys
        self.interval = interval
    }

    func note(key: CurveKey?, _ line: String, now: Double = ProcessInfo.processInfo.systemUptime) {
        let text: String? = lock.withLock {
            if var entry = seen[key] {
                guard now - entry.last >= interval else {
                    entry.suppressed += 1
                    seen[key] = entry
                    return nil
                }
                let count = entry.suppressed
                seen[key] = (now, 0)
                return count > 0 ? "\(line) (and \(count) more refusals of this key in the last \(Int(now - entry.last)) s)" : line
            }
            if seen.count < maxKeys {
                seen[key] = (now, 0)
                return line
            }
            guard now - overflow.last >= interval else {
                overflow.suppressed += 1
                return nil
            }
            let count = overflow.suppressed
            overflow = (now, 0)
            return "\(line) (too many distinct keys refused to log each; \(count) refusals not shown)"
        }
        if let text { log(text) }
    }
}
