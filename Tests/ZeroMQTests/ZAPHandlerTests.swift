import Foundation
import Testing
@testable import ZeroMQ

/// The ZAP handler against real CURVE connections on loopback, and the libzmq 4.3 behaviour
/// that makes it necessary: a CURVE server whose context has no handler admits every client
/// that knows the server key, unless `ZMQ_ZAP_ENFORCE_DOMAIN` is on.
@Suite(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
struct ZAPHandlerTests {
    /// A CURVE server ROUTER with a ZAP domain, bound on loopback.
    static func server(_ context: ZMQContext, keys: CurveKeyPair, enforce: Bool) throws -> (ZMQSocket, String) {
        let router = try ZMQSocket(context: context, type: .router)
        try router.configureCurveServer(keyPair: keys)
        try router.setZAPDomain("test")
        try router.setZAPEnforceDomain(enforce)
        #expect(try router.zapEnforceDomain == enforce)
        return (router, try router.bindLoopback())
    }

    /// Whether a client with `clientKeys` that pins `serverKey` gets a message through.
    static func getsThrough(_ context: ZMQContext, to router: ZMQSocket, at endpoint: String, serverKey: CurveKey,
                            clientKeys: CurveKeyPair, wait: Int = 1_000) throws -> Bool {
        let client = try ZMQSocket(context: context, type: .dealer)
        defer { client.close() }
        try client.configureCurveClient(serverKey: serverKey, keyPair: clientKeys)
        try client.connect(endpoint)
        try client.send([bytes("hello")], dontWait: true)
        guard let frames = try router.receive(timeoutMilliseconds: wait) else { return false }
        return frames.last == bytes("hello")
    }

    @Test func withoutAHandlerLibzmqAdmitsAnyClientUnlessEnforced() throws {
        let serverKeys = try CurveKeyPair.generate()
        for enforce in [false, true] {
            let context = try ZMQContext()
            let (router, endpoint) = try Self.server(context, keys: serverKeys, enforce: enforce)
            let stranger = try CurveKeyPair.generate()
            let admitted = try Self.getsThrough(context, to: router, at: endpoint, serverKey: serverKeys.publicKey, clientKeys: stranger)
            // This is the hazard the cluster guards against: no handler, no check.
            #expect(admitted == !enforce, "enforce \(enforce): a stranger was \(admitted ? "admitted" : "refused")")
            router.close()
        }
    }

    @Test func theHandlerAdmitsOnlyWhatItsDecisionAllows() throws {
        let serverKeys = try CurveKeyPair.generate()
        let friend = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let context = try ZMQContext()
        let seen = Recorder()
        let handler = ZAPHandler(context: context) { request in
            seen.add(request)
            return request.curveKey == friend.publicKey ? .allow(userID: "friend") : .deny(reason: "unknown key")
        }
        try handler.start()
        defer { handler.stop() }
        #expect(handler.isRunning)
        let (router, endpoint) = try Self.server(context, keys: serverKeys, enforce: true)
        defer { router.close() }
        #expect(try !Self.getsThrough(context, to: router, at: endpoint, serverKey: serverKeys.publicKey, clientKeys: stranger))
        #expect(try Self.getsThrough(context, to: router, at: endpoint, serverKey: serverKeys.publicKey, clientKeys: friend, wait: patience))
        // A client pinning another server key never completes the handshake, so the handler
        // is not even asked.
        let impostorKey = try CurveKeyPair.generate().publicKey
        let before = seen.requests.count
        #expect(try !Self.getsThrough(context, to: router, at: endpoint, serverKey: impostorKey, clientKeys: friend))
        #expect(seen.requests.count == before)

        // The user id the handler gave the connection travels with its messages (not with the
        // ROUTER's routing-id frame).
        let client = try ZMQSocket(context: context, type: .dealer)
        defer { client.close() }
        try client.configureCurveClient(serverKey: serverKeys.publicKey, keyPair: friend)
        try client.connect(endpoint)
        try client.send([bytes("who")], dontWait: false)
        let user = try router.receive(timeoutMilliseconds: patience, property: "User-Id") { frames, user in frames.count == 2 ? user : "?" }
        #expect(user == "friend")

        let requests = seen.requests
        #expect(requests.contains { $0.curveKey == stranger.publicKey && $0.domain == "test" && $0.mechanism == "CURVE" && $0.address == "127.0.0.1" })
        #expect(requests.contains { $0.curveKey == friend.publicKey })
        #expect(handler.requestsAnswered == requests.count)
    }

    @Test func startFailsWhenTheEndpointIsTakenAndAStoppedHandlerFailsClosed() throws {
        let context = try ZMQContext()
        let squatter = try ZMQSocket(context: context, type: .rep)
        try squatter.bind(ZAPHandler.endpoint)
        let handler = ZAPHandler(context: context) { _ in .allow(userID: "") }
        #expect(throws: ZeroMQError.self) { try handler.start(timeout: 0.5) }
        #expect(!handler.isRunning)
        squatter.close()

        // A handler that stopped: with ZMQ_ZAP_ENFORCE_DOMAIN the connection fails rather than
        // passing unauthenticated. (A fresh context: libzmq releases a closed socket's inproc
        // endpoint asynchronously.)
        let context2 = try ZMQContext()
        let serverKeys = try CurveKeyPair.generate()
        let second = ZAPHandler(context: context2) { _ in .allow(userID: "") }
        try second.start()
        second.stop()
        #expect(!second.isRunning)
        let (router, endpoint) = try Self.server(context2, keys: serverKeys, enforce: true)
        defer { router.close() }
        #expect(try !Self.getsThrough(context2, to: router, at: endpoint, serverKey: serverKeys.publicKey, clientKeys: try CurveKeyPair.generate()))
    }

    /// What a refused client sees: the monitor reports the ZAP status (400), and a client that
    /// pins the wrong server key sees its handshake fail.
    @Test func aMonitoredClientLearnsWhyItWasRefused() throws {
        let serverKeys = try CurveKeyPair.generate()
        let context = try ZMQContext()
        let handler = ZAPHandler(context: context) { _ in .deny(reason: "no") }
        try handler.start()
        defer { handler.stop() }
        let (router, endpoint) = try Self.server(context, keys: serverKeys, enforce: true)
        defer { router.close() }
        for (serverKey, expected) in [(serverKeys.publicKey, ZMQMonitorEvents.handshakeFailedAuth),
                                      (try CurveKeyPair.generate().publicKey, .handshakeFailedNoDetail)] {
            let client = try ZMQSocket(context: context, type: .dealer)
            defer { client.close() }
            try client.configureCurveClient(serverKey: serverKey, keyPair: try CurveKeyPair.generate())
            let monitorEndpoint = "inproc://monitor-\(UInt32.random(in: 0...UInt32.max))"
            try client.monitor(monitorEndpoint, events: [.handshakeFailedAuth, .handshakeFailedNoDetail, .handshakeFailedProtocol])
            let events = try ZMQSocket(context: context, type: .pair)
            defer { events.close() }
            try events.connect(monitorEndpoint)
            try client.connect(endpoint)
            let frames = try #require(try events.receive(timeoutMilliseconds: patience, maxFrames: 4))
            let event = try #require(ZMQMonitorEvent(frames: frames))
            #expect(event.event == expected, "\(event)")
            if expected == .handshakeFailedAuth { #expect(event.value == 400) }
            #expect(event.endpoint == endpoint)
            try client.monitor(nil, events: [])
        }
        #expect(ZMQMonitorEvent(frames: [[1, 2, 3]]) == nil)
    }

    @Test func startingTwiceIsRefused() throws {
        let context = try ZMQContext()
        let handler = ZAPHandler(context: context) { _ in .deny(reason: "") }
        try handler.start()
        defer { handler.stop() }
        #expect(throws: ZAPHandlerError.alreadyStarted) { try handler.start() }
    }

    @Test func sha256MatchesTheStandardsVectors() {
        func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
        #expect(hex(SHA256.hash([])) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(hex(SHA256.hash(bytes("abc"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(hex(SHA256.hash(bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(hex(SHA256.hash([UInt8](repeating: 0x61, count: 1_000))) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    @Test func fingerprintsAreStableAndShort() throws {
        let key = try CurveKey(bytes: [UInt8](0..<32))
        #expect(key.fingerprint.hasPrefix("SHA256:"))
        #expect(key.fingerprint.count == 7 + 32)
        #expect(key.fingerprint == (try CurveKey(z85: key.z85)).fingerprint)
        #expect(key.fingerprint != (try CurveKey(bytes: [UInt8](1..<33))).fingerprint)
    }
}

/// Requests seen by a handler's decision, from its thread.
final class Recorder: @unchecked Sendable {  // invariant: `list` is only touched under `lock`
    private let lock = NSLock()
    private var list: [ZAPRequest] = []

    func add(_ request: ZAPRequest) {
        lock.lock()
        list.append(request)
        lock.unlock()
    }

    var requests: [ZAPRequest] {
        lock.lock()
        defer { lock.unlock() }
        return list
    }
}
