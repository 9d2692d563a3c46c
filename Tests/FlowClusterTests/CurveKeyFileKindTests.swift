import Foundation
import Testing
import ZeroMQ
@testable import FlowCluster

/// Key files of the wrong kind are refused where the other kind is expected, and a key's bare
/// name (as given to `keygen --name`) finds its file (issue 11, item 6).
@Suite(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
struct CurveKeyFileKindTests {
    @Test func aSecretKeyFileIsRefusedWhereAPublicKeyIsExpected() throws {
        let dir = try ClusterSecurityTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CurveKeyFile.write(try CurveKeyPair.generate(), directory: dir, name: "coordinator")
        let secret = CurveKeyFile.secretPath(directory: dir, name: "coordinator")

        // --server-key keys/coordinator.key
        #expect {
            _ = try CurveKeyFile.readPublicKey(path: secret)
        } throws: { error in
            let text = "\(error)"
            return text.hasPrefix(secret) && text.contains("is a secret key file") && text.contains("a public key file (NAME.pub) is expected")
                && text.contains("\(dir)/coordinator.pub")
        }
        // --authorized-keys keys/w1.key
        #expect {
            _ = try AuthorizedKeyList(path: secret)
        } throws: { error in
            "\(error)".hasPrefix(secret) && "\(error)".contains("is a secret key file")
        }
        // The same secret under another name is recognised by its first line.
        let renamed = dir + "/server-key"
        try FileManager.default.copyItem(atPath: secret, toPath: renamed)
        #expect {
            _ = try CurveKeyFile.readPublicKey(path: renamed)
        } throws: { error in
            "\(error)".hasPrefix(renamed) && "\(error)".contains("is a secret key file")
        }
    }

    @Test func aBareKeyNameFindsItsFileAndAMissingOneNamesTheFilesLookedFor() throws {
        let dir = try ClusterSecurityTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let pair = try CurveKeyPair.generate()
        try CurveKeyFile.write(pair, directory: dir, name: "w1")
        #expect(try CurveKeyFile.readPair(path: "\(dir)/w1") == pair)
        #expect(try CurveKeyFile.readPublicKey(path: "\(dir)/w1") == pair.publicKey)

        #expect(throws: SecurityError.keyFile(
            path: "\(dir)/w2", line: nil, reason: "no such file: looked for \(dir)/w2 and \(dir)/w2.key (a secret key file)")) {
            try CurveKeyFile.readPair(path: "\(dir)/w2")
        }
        #expect(throws: SecurityError.keyFile(
            path: "\(dir)/w2", line: nil, reason: "no such file: looked for \(dir)/w2 and \(dir)/w2.pub (a public key file)")) {
            try CurveKeyFile.readPublicKey(path: "\(dir)/w2")
        }
    }
}
