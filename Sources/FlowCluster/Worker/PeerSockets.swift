import FlowWire
import Foundation
import ZeroMQ

/// A worker's sockets to the other workers (`sync=sharded`): one PULL bound at the worker's
/// peer endpoint, where every other worker sends it segments, and one PUSH per peer of the
/// current roster.
///
/// Under CURVE the PULL is a CURVE server with the worker's own key pair, and its ZAP handler
/// admits only the keys of the current roster — the coordinator's allow-list, as the coordinator
/// admitted them; each PUSH pins its peer's public key from the roster. So two workers talk only
/// when the coordinator has admitted both, and what they say is encrypted.
final class PeerSockets {
    /// The resolved endpoint other workers connect to (sent in `hello`).
    let endpoint: String
    private let inbox: ZMQSocket
    private let context: ZMQContext
    private let security: ClusterSecurity.Client?
    private let allowed = PeerKeySet()
    private var zap: ZAPHandler?
    private var outboxes: [UInt32: (endpoint: String, key: String, socket: ZMQSocket)] = [:]
    /// The roster token (one per attempt) the outboxes were made for.
    private var lastToken: UInt64?
    private let log: (String) -> Void
    /// Peer messages that could not be queued (a peer's queue stayed full for the send timeout).
    private(set) var dropped = 0
    /// Message bytes queued to peers.
    private(set) var bytesSent: UInt64 = 0

    /// How long a connection from a key not (yet) in the roster waits for it before it is refused.
    static let rosterWaitSeconds = 2.0

    /// Messages queued per peer, each way.
    static let highWaterMark = 4096

    /// Binds the PULL at `endpoint` (`tcp://address:port`, port 0 for any free one, or
    /// `ipc://path`); the address must be one the other workers can reach, not a wildcard.
    init(context: ZMQContext, bind endpoint: String, security: ClusterSecurity.Client?, log: @escaping (String) -> Void) throws {
        if endpoint.hasPrefix("tcp://*") || endpoint.hasPrefix("tcp://0.0.0.0") {
            throw WorkerError.badPeerEndpoint(endpoint: endpoint, reason: "a wildcard address cannot be reached by the other workers: give this host's address")
        }
        self.context = context
        self.security = security
        self.log = log
        let socket = try ZMQSocket(context: context, type: .pull)
        try socket.setLinger(0)
        try socket.setMaxMessageSize(WireLimits.default.zmqMaxMessageSize)
        try socket.setReceiveHighWaterMark(Self.highWaterMark)
        if let security {
            let allowed = self.allowed
            let handler = ZAPHandler(context: context) { request in
                // A peer may connect a moment before this worker has read the roster that lists
                // it: wait for the roster a little before refusing — but not for a key that has
                // left the roster (a worker lost or quarantined): the handler answers one request
                // at a time, and waiting for a key that will not come would hold up every other
                // peer's handshake behind it.
                guard let key = request.curveKey, allowed.waitUntilContains(key.z85, seconds: Self.rosterWaitSeconds) else {
                    return .deny(reason: "not a worker of the current roster")
                }
                return .allow(userID: key.z85)
            }
            try handler.start()
            zap = handler
            try socket.configureCurveServer(keyPair: security.keyPair)
            try socket.setZAPDomain(ClusterSecurity.zapDomain)
            try socket.setZAPEnforceDomain(true)
        }
        do {
            try socket.bind(endpoint)
        } catch {
            socket.close()
            zap?.stop()
            throw WorkerError.badPeerEndpoint(endpoint: endpoint, reason: "cannot bind it: \(error)")
        }
        inbox = socket
        self.endpoint = (try? socket.lastEndpoint) ?? endpoint
    }

    /// The PULL (for the poller and receives).
    var socket: ZMQSocket { inbox }

    /// Connects to the roster's other workers (closing sockets to those no longer in it, or whose
    /// endpoint or key changed) and admits exactly their keys. A new attempt (another roster
    /// `token`, drawn at random for each epoch) reconnects every peer: libzmq does not retry a connection whose handshake a peer refused (ZAP 400), and
    /// segments queued on it would wait forever — a new attempt must not inherit such a socket
    /// (what an earlier attempt queued is void anyway).
    func update(token: UInt64, ids: [UInt32], endpoints: [String], keys: [String], selfID: UInt32) {
        allowed.set(Set(keys.filter { !$0.isEmpty }))
        var wanted: [UInt32: (String, String)] = [:]
        for (i, id) in ids.enumerated() where id != selfID { wanted[id] = (endpoints[i], keys[i]) }
        let reconnect = token != lastToken
        lastToken = token
        for (id, box) in outboxes where reconnect || (wanted[id].map({ $0 != (box.endpoint, box.key) }) ?? true) {
            box.socket.close()
            outboxes[id] = nil
        }
        for (id, (endpoint, key)) in wanted where outboxes[id] == nil {
            do {
                let socket = try ZMQSocket(context: context, type: .push)
                try socket.setLinger(0)
                try socket.setSendHighWaterMark(Self.highWaterMark)
                if let security {
                    guard let serverKey = try? CurveKey(z85: key) else {
                        log("worker \(id) has no CURVE key in the roster; not connecting to it")
                        socket.close()
                        continue
                    }
                    try socket.configureCurveClient(serverKey: serverKey, keyPair: security.keyPair)
                }
                try socket.connect(endpoint)
                outboxes[id] = (endpoint, key, socket)
            } catch {
                log("cannot connect to worker \(id) at \(endpoint): \(error)")
            }
        }
    }

    /// Queues `bytes` to worker `id` without waiting: a worker must keep answering the
    /// coordinator whatever a peer does. A message that cannot be queued (the peer's queue is
    /// full, or it is gone) is dropped and counted; the coordinator restarts an attempt that
    /// lacks it when it declares the peer dead.
    func send(to id: UInt32, _ bytes: [UInt8]) {
        guard let box = outboxes[id] else {
            dropped += 1
            return
        }
        do {
            if try box.socket.send(frames: [ZMQFrame(bytes)], dontWait: true) {
                bytesSent += UInt64(bytes.count)
            } else {
                dropped += 1
                if dropped == 1 || dropped & (dropped - 1) == 0 {
                    log("a segment for worker \(id) was dropped: its queue is full or it is gone (\(dropped) dropped so far)")
                }
            }
        } catch {
            dropped += 1
            log("sending to worker \(id) failed: \(error)")
        }
    }

    /// Closes every socket (the ZAP handler last).
    func close() {
        for box in outboxes.values { box.socket.close() }
        outboxes.removeAll()
        inbox.close()
        zap?.stop()
        zap = nil
    }
}

/// The Z85 keys a worker's peer socket admits; read on the ZAP handler's thread.
///
/// `@unchecked Sendable` invariant: `keys` is touched only under `condition`'s lock.
final class PeerKeySet: @unchecked Sendable {
    private let condition = NSCondition()
    private var keys: Set<String> = []
    /// Keys of earlier rosters that the current one lacks: refused at once, not waited for.
    private var departed: Set<String> = []

    func set(_ new: Set<String>) {
        condition.lock()
        departed.formUnion(keys.subtracting(new))
        departed.subtract(new)
        keys = new
        condition.broadcast()
        condition.unlock()
    }

    func contains(_ key: String) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return keys.contains(key)
    }

    /// Whether `key` is in the set, waiting up to `seconds` for it to be added.
    func waitUntilContains(_ key: String, seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        condition.lock()
        defer { condition.unlock() }
        while !keys.contains(key) {
            guard !departed.contains(key), condition.wait(until: deadline) else { return keys.contains(key) }
        }
        return true
    }
}
