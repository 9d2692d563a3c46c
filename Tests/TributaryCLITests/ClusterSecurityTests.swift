import FlowCluster
import FlowWire
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// CURVE and the limits with real processes on loopback TCP (docs/security.md): strangers,
    /// impostors and plain clients get nothing; an authorised cluster trains to the bits of a
    /// single process; a key removed with SIGHUP locks its worker out at its next connection;
    /// floods and oversized or garbage messages leave a running job unharmed.
    @Suite(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
    struct ClusterSecurityTests {
        /// Key pairs written by `tributary keygen` into the test directory's `keys/`.
        static func keygen(_ h: ClusterHarness, _ names: [String]) throws -> [String: CurveKeyPair] {
            var pairs: [String: CurveKeyPair] = [:]
            for name in names {
                try CLI.succeed(["keygen", "--out", "keys", "--name", name], in: h.dir.path, timeout: 10)
                pairs[name] = try CurveKeyFile.readPair(path: h.dir.file("keys/\(name).key"))
            }
            return pairs
        }

        static func authorize(_ h: ClusterHarness, _ names: [String]) throws {
            var text = "# workers admitted by the test\n"
            for name in names { text += try String(contentsOfFile: h.dir.file("keys/\(name).pub"), encoding: .utf8) }
            try h.dir.write(text, to: "authorized_keys")
        }

        static func secureCoordinator(_ endpoint: String, steps: Int = ClusterFixture.faultSteps, _ extra: [String] = []) -> [String] {
            ClusterCommand.coordinator(endpoint, steps: steps, ["--key", "keys/coordinator.key", "--authorized-keys", "authorized_keys"] + extra)
        }

        static func secureWorker(_ endpoint: String, name: String) -> [String] {
            ClusterCommand.worker(endpoint, name: name, ["--key", "keys/\(name).key", "--server-key", "keys/coordinator.pub"])
        }

        @Test func strangersImpostorsAndPlainClientsGetNothingAndTheBitsAreRight() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let keys = try Self.keygen(h, ["coordinator", "w1", "w2"])
            try Self.authorize(h, ["w1", "w2"])
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", Self.secureCoordinator(endpoint, ["--min-workers", "2", "--heartbeat-ms", "50"]))
            let w1 = try h.start("w1", Self.secureWorker(endpoint, name: "w1"))
            let w2 = try h.start("w2", Self.secureWorker(endpoint, name: "w2"))
            guard h.waitForStep(200, metrics: "metrics.jsonl", while: coordinator) else { return }

            let stranger = try CurveKeyPair.generate()
            let coordinatorKey = keys["coordinator"]!.publicKey
            let peers: [(name: String, curve: RawPeer.Curve?)] = [
                ("unknown key", .init(keyPair: stranger, serverKey: coordinatorKey)),
                // An authorised worker's own key, but pinned to a server key that is not the
                // coordinator's: the handshake cannot complete.
                ("wrong server key", .init(keyPair: keys["w1"]!, serverKey: stranger.publicKey)),
                ("no key", nil),
            ]
            // The three flood at once: with one partial per worker and step the run is over in a
            // few seconds, and every kind of failure must reach the coordinator while it runs.
            let floods = FloodResults(count: peers.count)
            DispatchQueue.concurrentPerform(iterations: peers.count) { i in
                floods.set(i, Result { try RawPeer.flood(endpoint: endpoint, curve: peers[i].curve, seconds: 1.5) })
            }
            for (i, peer) in peers.enumerated() {
                let received = try floods.get(i)
                h.note("\(peer.name): tried \(received.attempted) messages (\(received.sent) queued), received \(received.frames.count) frames")
                #expect(received.attempted > 50, "\(peer.name) tried only \(received.attempted) messages")
                #expect(received.frames.isEmpty, "\(peer.name) received \(received.frames.count) frames, e.g. \(received.frames.first.map { Array($0.prefix(16)) } ?? [])")
            }

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h)

            let log = coordinator.stderr
            #expect(!lines(of: log, containing: "CURVE on: coordinator key \(coordinatorKey.fingerprint)").isEmpty, "\(coordinator)")
            // The stranger is refused by the ZAP handler and named once, however often libzmq
            // retried the connection.
            let refusals = lines(of: log, containing: "refused a connection from 127.0.0.1: key \(stranger.publicKey.z85)")
            #expect(refusals.count == 1, "\(refusals)\n\(coordinator)")
            #expect(lines(of: log, containing: ") joined").count == 2, "\(coordinator)")
            #expect(lines(of: log, containing: "invalid message").isEmpty, "nothing of the flood may reach the protocol layer\n\(coordinator)")
            // The plain client and the one pinned to another server key never reach ZAP: the
            // coordinator says so, once per kind of failure, not once per retry.
            let failed = lines(of: log, containing: "failed the CURVE handshake")
            #expect(!failed.isEmpty && failed.count <= 2, "\(failed)\n\(coordinator)")
        }

        /// Also, under `sharded`: a worker SIGSTOPped past the heartbeat timeout is an owner
        /// lost mid-step, under CURVE between the workers too.
        @Test(arguments: ClusterFixture.exchanges)
        func aKeyRemovedWithSIGHUPLocksItsWorkerOutAtItsNextConnection(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let keys = try Self.keygen(h, ["coordinator", "w1", "w2"])
            try Self.authorize(h, ["w1", "w2"])
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", Self.secureCoordinator(
                endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--exchange", exchange]))
            let w1 = try h.start("w1", Self.secureWorker(endpoint, name: "w1"))
            let w2 = try h.start("w2", Self.secureWorker(endpoint, name: "w2"))
            guard h.waitForStep(200, metrics: "metrics.jsonl", while: coordinator) else { return }

            try Self.authorize(h, ["w1"])
            h.signal(coordinator, SIGHUP)
            let reloaded = h.waitUntil(timeout: 10) { !lines(of: coordinator.stderr, containing: "SIGHUP: reloaded").isEmpty }
            #expect(reloaded, "no reload\n\(h.report())")
            #expect(!lines(of: coordinator.stderr, containing: "1 key(s) authorised (0 added, 1 removed)").isEmpty, "\(coordinator)")
            // Its established connection is kept: the job goes on with both workers until w2
            // reconnects — here after a stall that makes the coordinator drop it.
            h.signal(w2, SIGSTOP)
            let lost = h.waitUntil(timeout: 10) { !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty }
            h.signal(w2, SIGCONT)
            #expect(lost, "w2 was not dropped\n\(h.report())")
            let w2Key = keys["w2"]!.publicKey.z85
            let refused = h.waitUntil(timeout: 15) {
                !lines(of: coordinator.stderr, containing: "refused a connection from 127.0.0.1: key \(w2Key)").isEmpty || !coordinator.isRunning
            }
            #expect(refused && coordinator.isRunning, "w2's new connection was not refused before the end\n\(h.report())")

            h.expectSuccess(coordinator, timeout: 90)
            h.expectSuccess(w1, timeout: 10)
            try ClusterFaultTests.expectReferenceModel(h)
            #expect(lines(of: coordinator.stderr, containing: "(w2) joined").count == 1, "w2 got back in\n\(coordinator)")
            // Locked out, w2 never hears the goodbye: stop it. It said why it cannot get in.
            h.signal(w2, SIGTERM)
            w2.wait(timeout: 5)
            let explained = lines(of: w2.stderr, containing: "the coordinator refused this worker's key \(keys["w2"]!.publicKey.fingerprint) (ZAP status 400)")
            #expect(explained.count == 1, "\(w2)")
        }

        /// The sharded exchange under CURVE (workers encrypt and authenticate each other's
        /// segments against the roster): an owner SIGKILLed mid-run and a replacement with its
        /// own key that joins — the bits are one process's.
        @Test func shardedUnderCURVEAnOwnerKilledMidRunIsReplaced() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            _ = try Self.keygen(h, ["coordinator", "w1", "w2", "w3"])
            try Self.authorize(h, ["w1", "w2", "w3"])
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", Self.secureCoordinator(
                endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--exchange", "sharded"]))
            let w1 = try h.start("w1", Self.secureWorker(endpoint, name: "w1"))
            let w2 = try h.start("w2", Self.secureWorker(endpoint, name: "w2"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            h.signal(w2, SIGKILL)
            let lost = h.waitUntil(timeout: 10) { !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty || !coordinator.isRunning }
            #expect(lost, "w2's death went unnoticed\n\(h.report())")
            let w3 = try h.start("w3", Self.secureWorker(endpoint, name: "w3"))
            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w3] { h.expectSuccess(worker, timeout: 10) }
            w2.wait(timeout: 5)
            try ClusterFaultTests.expectReferenceModel(h)
            let log = coordinator.stderr
            #expect(!lines(of: log, containing: "sharded exchange").isEmpty, "\(coordinator)")
            #expect(!lines(of: log, containing: "(w3) joined").isEmpty, "the replacement never joined\n\(coordinator)")
        }

        /// `score --bind` with CURVE: the same bytes as one process, and a stranger that knows the
        /// coordinator's key receives nothing of the rows or the model.
        @Test func scoringWithCURVEWritesTheSameBytesAndAdmitsOnlyListedKeys() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let keys = try Self.keygen(h, ["coordinator", "w1", "w2"])
            try Self.authorize(h, ["w1", "w2"])
            let score = ClusterScoringTests.score
            try CLI.succeed(score + ["--output", "one.npy"], in: h.dir.path, timeout: 60)
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", score + [
                "--output", "cluster.npy", "--bind", endpoint, "--heartbeat-ms", "50",
                "--key", "keys/coordinator.key", "--authorized-keys", "authorized_keys",
            ])
            let workers = try ["w1", "w2"].map { try h.start($0, Self.secureWorker(endpoint, name: $0)) }
            let joined = h.waitUntil(timeout: 30) { !lines(of: coordinator.stderr, containing: ") joined").isEmpty || !coordinator.isRunning }
            #expect(joined, "no worker joined\n\(h.report())")
            let stranger = try RawPeer.flood(
                endpoint: endpoint, curve: .init(keyPair: try CurveKeyPair.generate(), serverKey: keys["coordinator"]!.publicKey), seconds: 1)
            #expect(stranger.frames.isEmpty, "a stranger received \(stranger.frames.count) frames")
            h.expectSuccess(coordinator, timeout: 120)
            for worker in workers { h.expectSuccess(worker, timeout: 10) }
            ClusterScoringTests.expectSame(h.dir, "cluster.npy", as: "one.npy", h.report())
            #expect(!lines(of: coordinator.stderr, containing: "CURVE on: coordinator key").isEmpty, "\(coordinator)")
            #expect(lines(of: coordinator.stderr, containing: "refused a connection from 127.0.0.1: key").count == 1, "\(coordinator)")
        }

        /// On a plain loopback coordinator (where an unauthenticated client does reach the
        /// protocol): an oversized frame, a hello flood against a full cluster and garbage from
        /// hundreds of fresh connections, while the job runs.
        @Test func floodsOversizedFramesAndGarbageLeaveARunningJobUnharmed() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(
                endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--max-workers", "2", "--hello-rate", "20"]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(200, metrics: "metrics.jsonl", while: coordinator) else { return }

            let oversized = try RawPeer.oversized(endpoint: endpoint, bytes: 4 << 20)
            h.note("oversized frame sent: \(oversized)")
            let flood = try RawPeer.helloFlood(endpoint: endpoint, count: 3000)
            h.note("hello flood: \(flood.sent) sent, \(flood.frames.count) replies")
            #expect(flood.sent == 3000)
            // Each hello the rate limit lets through is refused (the cluster is full) with one
            // error; the others get nothing: at most the burst plus 20 a second.
            #expect(flood.frames.count <= 64 + 20 * 5, "\(flood.frames.count) replies to a flood")
            let garbageSent = try RawPeer.garbageFromFreshConnections(endpoint: endpoint, connections: 300)
            h.note("garbage from 300 connections: \(garbageSent) messages")

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h)
            let log = coordinator.stderr
            let refusedHellos = lines(of: log, containing: "refused a hello")
            #expect(!refusedHellos.isEmpty && refusedHellos.count <= 14, "\(refusedHellos.count) lines for a flood\n\(refusedHellos.joined(separator: "\n"))")
            #expect(lines(of: log, containing: ") joined").count == 2, "\(coordinator)")
        }
    }
}

/// A client that is not a worker, for the tests above: a DEALER in this process (plain or
/// CURVE) that sends what a hostile peer would and records every frame it receives.
enum RawPeer {
    struct Curve {
        var keyPair: CurveKeyPair
        var serverKey: CurveKey
    }

    struct Outcome {
        /// Messages handed to the socket.
        var attempted = 0
        /// Messages it queued (a client whose handshake fails has nowhere to queue most).
        var sent = 0
        var frames: [[UInt8]] = []
    }

    static func hello(_ n: Int) -> [UInt8] {
        WireMessage.hello(.init(
            instance: UInt64(n + 1), processID: 1, name: "raw-\(n)", host: "nowhere",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "none", maxMicroBatchRows: 1 << 20))).encoded()
    }

    static func dealer(_ context: ZMQContext, _ endpoint: String, curve: Curve?) throws -> ZMQSocket {
        let socket = try ZMQSocket(context: context, type: .dealer)
        try socket.setLinger(0)
        if let curve { try socket.configureCurveClient(serverKey: curve.serverKey, keyPair: curve.keyPair) }
        try socket.connect(endpoint)
        return socket
    }

    static func drain(_ socket: ZMQSocket, into outcome: inout Outcome, wait: Int = 0) throws {
        while let frames = try socket.receive(timeoutMilliseconds: wait, maxFrames: 8) {
            outcome.frames += frames
        }
    }

    /// Hellos, garbage and a 1 MiB frame, for `seconds`, then half a second of listening.
    static func flood(endpoint: String, curve: Curve?, seconds: Double) throws -> Outcome {
        let context = try ZMQContext()
        let socket = try dealer(context, endpoint, curve: curve)
        defer { socket.close() }
        var outcome = Outcome()
        let end = Date().addingTimeInterval(seconds)
        var i = 0
        while Date() < end {
            let message: [UInt8]
            switch i % 20 {
            case 0: message = [UInt8](repeating: 0x5A, count: 1 << 20)
            case 1, 2, 3: message = (0..<64).map { _ in UInt8.random(in: 0...255) }
            default: message = hello(i)
            }
            outcome.attempted += 1
            if try socket.send([message], dontWait: true) { outcome.sent += 1 }
            try drain(socket, into: &outcome)
            usleep(5_000)
            i += 1
        }
        try drain(socket, into: &outcome, wait: 500)
        return outcome
    }

    /// One frame of `bytes` bytes, far above the coordinator's `ZMQ_MAXMSGSIZE`.
    static func oversized(endpoint: String, bytes: Int) throws -> Bool {
        let context = try ZMQContext()
        let socket = try dealer(context, endpoint, curve: nil)
        defer { socket.close() }
        try socket.setLinger(2_000)
        return try socket.send([[UInt8](repeating: 1, count: bytes)], dontWait: false)
    }

    /// `count` valid hellos on one connection as fast as they go, then the replies.
    static func helloFlood(endpoint: String, count: Int) throws -> Outcome {
        let context = try ZMQContext()
        let socket = try dealer(context, endpoint, curve: nil)
        defer { socket.close() }
        var outcome = Outcome()
        for i in 0..<count {
            if try socket.send([hello(i)], dontWait: false) { outcome.sent += 1 }
            try drain(socket, into: &outcome)
        }
        try drain(socket, into: &outcome, wait: 1_000)
        return outcome
    }

    /// A few garbage frames from each of `connections` connections, one after the other (each a
    /// new ROUTER identity).
    static func garbageFromFreshConnections(endpoint: String, connections: Int) throws -> Int {
        let context = try ZMQContext()
        var sent = 0
        for _ in 0..<connections {
            let socket = try dealer(context, endpoint, curve: nil)
            try socket.setLinger(200)
            for _ in 0..<3 where try socket.send([(0..<32).map { _ in UInt8.random(in: 0...255) }], dontWait: false) { sent += 1 }
            socket.close()
        }
        return sent
    }
}

/// The outcomes of floods run on several threads at once.
final class FloodResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<RawPeer.Outcome, Error>?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ result: Result<RawPeer.Outcome, Error>) {
        lock.lock()
        results[i] = result
        lock.unlock()
    }

    func get(_ i: Int) throws -> RawPeer.Outcome {
        lock.lock()
        defer { lock.unlock() }
        return try results[i]!.get()
    }
}
