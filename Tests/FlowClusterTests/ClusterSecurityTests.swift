import Foundation
import Testing
import ZeroMQ
@testable import FlowCluster

/// Key files, the allow-list and `ClusterSecurity` on real sockets.
@Suite(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
struct ClusterSecurityTests {
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("security-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func keyFilesRoundTripWithASecretOnlyItsOwnerCanRead() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pair = try CurveKeyPair.generate()
        try CurveKeyFile.write(pair, directory: dir, name: "w1")
        let secret = CurveKeyFile.secretPath(directory: dir, name: "w1")
        let publicFile = CurveKeyFile.publicPath(directory: dir, name: "w1")
        let mode = try FileManager.default.attributesOfItem(atPath: secret)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try CurveKeyFile.readPair(path: secret) == pair)
        #expect(try CurveKeyFile.readPublicKey(path: publicFile) == pair.publicKey)
        #expect(try String(contentsOfFile: publicFile, encoding: .utf8) == "\(pair.publicKey.z85) w1\n")
        #expect(!(try String(contentsOfFile: publicFile, encoding: .utf8)).contains(pair.secretKey.z85))

        // Never overwritten.
        #expect(throws: SecurityError.keyFile(path: secret, line: nil, reason: "exists already; remove it or choose another --name")) {
            try CurveKeyFile.write(try CurveKeyPair.generate(), directory: dir, name: "w1")
        }
        // A public key file is not a secret key.
        #expect(throws: SecurityError.self) { try CurveKeyFile.readPair(path: publicFile) }
        // A secret others may read is refused.
        chmod(secret, 0o644)
        #expect {
            try CurveKeyFile.readPair(path: secret)
        } throws: { error in
            "\(error)".contains("permissions 644 are too open") && "\(error)".hasPrefix(secret)
        }
    }

    @Test func authorizedKeysAllowCommentsAndLabels() throws {
        let a = try CurveKeyPair.generate().publicKey, b = try CurveKeyPair.generate().publicKey
        let text = """
            # workers of the night shift

               \(a.z85)   gpu-01 (rack 3)
            \(b.z85)
            #\(b.z85) a commented-out key
            """
        let lines = try CurveKeyFile.parseKeyLines(text, path: "keys")
        #expect(lines.map(\.line) == [3, 4])
        #expect(lines[0].key == a && lines[0].label == "gpu-01 (rack 3)")
        #expect(lines[1].key == b && lines[1].label == "")
        let commentOnly = try CurveKeyFile.parseKeyLines("# a\n#\n   # indented comment\n", path: "keys")
        #expect(commentOnly.isEmpty)
        // Why a leading '#' is never a key: '#' is the Z85 digit 84, and 84·85⁴ > 2³² − 1.
        #expect(throws: ZeroMQError.self) { try CurveKey(z85: "#" + String(a.z85.dropFirst())) }
    }

    @Test func aBadLineNamesTheFileAndLine() throws {
        let a = try CurveKeyPair.generate().publicKey
        #expect(throws: SecurityError.keyFile(path: "ak", line: 3, reason: "expected a 40-character Z85 key, found 7 characters")) {
            try CurveKeyFile.parseKeyLines("\(a.z85)\n\nnot-key label\n", path: "ak")
        }
        #expect {
            try CurveKeyFile.parseKeyLines("\(String(repeating: "~", count: 40))\n", path: "ak")
        } throws: { error in
            "\(error)".hasPrefix("ak:1: not a Z85 key")
        }
    }

    @Test func reloadReplacesTheKeysOrKeepsThemOnError() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try CurveKeyPair.generate().publicKey, b = try CurveKeyPair.generate().publicKey
        let path = dir + "/authorized_keys"
        try "\(a.z85) a\n\(b.z85) b\n".write(toFile: path, atomically: true, encoding: .utf8)
        let list = try AuthorizedKeyList(path: path)
        #expect(list.count == 2 && list.label(of: a) == "a" && list.label(of: b) == "b")
        try "\(a.z85) a\n".write(toFile: path, atomically: true, encoding: .utf8)
        let change = try list.reload()
        #expect(change.added == 0 && change.removed == 1)
        #expect(list.label(of: b) == nil && list.label(of: a) == "a")
        try "\(a.z85) a\ngarbage\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: SecurityError.self) { try list.reload() }
        #expect(list.label(of: a) == "a")
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: SecurityError.self) { try list.reload() }
        #expect(list.count == 1)
    }

    @Test func aRevokedKeyStaysRefusedAcrossReloads() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try CurveKeyPair.generate().publicKey
        let path = dir + "/authorized_keys"
        try "\(a.z85) a\n".write(toFile: path, atomically: true, encoding: .utf8)
        let list = try AuthorizedKeyList(path: path)
        list.revoke(a)
        #expect(list.label(of: a) == nil && list.isRevoked(a))
        try list.reload()
        #expect(list.label(of: a) == nil)
    }

    /// The one call a driver makes: the handler is up before the socket binds, only listed
    /// keys get through, and a context whose ZAP endpoint is taken is a fatal error.
    @Test func protectAdmitsListedKeysAndRefusesToRunWithoutAHandler() throws {
        let serverKeys = try CurveKeyPair.generate(), friend = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let lines = LogLines()
        let server = ClusterSecurity.Server(
            keyPair: serverKeys, authorizedKeys: AuthorizedKeyList(keys: [friend.publicKey: "friend"]), log: { lines.add($0) })
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let handler = try server.protect(router)
        defer { handler.stop() }
        #expect(handler.isRunning)
        #expect(try router.zapEnforceDomain)
        try router.bind("tcp://127.0.0.1:*")
        let endpoint = try #require(try router.lastEndpoint)

        func attempt(_ client: ClusterSecurity.Client) throws -> Bool {
            let dealer = try ZMQSocket(context: context, type: .dealer)
            defer { dealer.close() }
            try client.protect(dealer)
            try dealer.connect(endpoint)
            try dealer.send([Array("hi".utf8)], dontWait: true)
            return try router.receive(timeoutMilliseconds: 1_000) != nil
        }
        #expect(try !attempt(.init(keyPair: stranger, serverKey: serverKeys.publicKey)))
        #expect(try attempt(.init(keyPair: friend, serverKey: serverKeys.publicKey)))
        #expect(try !attempt(.init(keyPair: friend, serverKey: stranger.publicKey)))
        #expect(lines.all.contains { $0.contains("refused a connection from 127.0.0.1: key \(stranger.publicKey.z85)") })
        #expect(lines.all.contains { $0.contains("authenticated a connection from 127.0.0.1: key \(friend.publicKey.fingerprint) (friend)") })
        router.close()

        // Another handler already holds the context's ZAP endpoint: protect() must fail, so
        // the caller never binds an unguarded CURVE server.
        let second = try ZMQSocket(context: context, type: .router)
        #expect {
            _ = try server.protect(second)
        } throws: { error in
            guard case SecurityError.zapHandlerNotReady = error else { return false }
            return "\(error)".contains("refusing to bind")
        }
        #expect(try !second.curveServer)
    }

    @Test func refusalsOfOneKeyAreLoggedOnceAMinute() throws {
        let lines = LogLines()
        let log = RefusalLog(log: { lines.add($0) }, maxKeys: 2, interval: 60)
        let keys = try (0..<4).map { _ in try CurveKeyPair.generate().publicKey }
        for t in 0..<100 { log.note(key: keys[0], "k0", now: Double(t) * 0.1) }
        #expect(lines.all == ["k0"])
        log.note(key: keys[0], "k0", now: 61)
        #expect(lines.all.last == "k0 (and 99 more refusals of this key in the last 61 s)")
        log.note(key: keys[1], "k1", now: 61)
        log.note(key: keys[2], "k2", now: 61)
        log.note(key: keys[3], "k3", now: 62)
        #expect(lines.all.count == 4, "\(lines.all)")  // k2 logged as overflow, k3 suppressed
    }
}

/// Log lines written from other threads.
final class LogLines: @unchecked Sendable {  // invariant: `lines` is only touched under `lock`
    private let lock = NSLock()
    private var lines: [String] = []

    func add(_ line: String) {
        lock.lock()
        lines.append(line)
        lock.unlock()
    }

    var all: [String] {
        lock.lock()
        defer { lock.unlock() }
        return lines
    }
}
