import Testing
@testable import ZeroMQ

@Suite(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
struct CurveKeyPairTests {
    @Test func generatedKeysHaveBothForms() throws {
        let pair = try CurveKeyPair.generate()
        #expect(pair.publicKey.bytes.count == 32)
        #expect(pair.secretKey.z85.utf8.count == 40)
        #expect(try CurveKey(z85: pair.publicKey.z85) == pair.publicKey)
        #expect(try CurveKey(bytes: pair.secretKey.bytes) == pair.secretKey)
        #expect(pair.publicKey != pair.secretKey)
        #expect(try CurveKeyPair.generate() != pair)
        #expect(!"\(pair.secretKey)".contains(pair.secretKey.z85))
    }

    @Test func publicKeyIsDerivedFromTheSecret() throws {
        let pair = try CurveKeyPair.generate()
        #expect(try CurveKeyPair.derivePublicKey(fromSecret: pair.secretKey) == pair.publicKey)
        #expect(try CurveKeyPair(secretKey: pair.secretKey) == pair)
    }

    @Test func malformedKeysThrow() {
        #expect(throws: ZeroMQError.invalidCurveKey(length: 31)) { try CurveKey(bytes: [UInt8](repeating: 0, count: 31)) }
        #expect(throws: ZeroMQError.invalidCurveKey(length: 10)) { try CurveKey(z85: "HelloWorld") }
        #expect(throws: ZeroMQError.self) { try CurveKey(z85: String(repeating: " ", count: 40)) }
    }

    @Test func encryptedRoundTrip() throws {
        let serverKeys = try CurveKeyPair.generate()
        let clientKeys = try CurveKeyPair.generate()
        let context = try ZMQContext()
        let server = try ZMQSocket(context: context, type: .router)
        try server.configureCurveServer(keyPair: serverKeys)
        #expect(try server.curveServer)
        let endpoint = try server.bindLoopback()
        let client = try ZMQSocket(context: context, type: .dealer)
        try client.setRoutingID(bytes("client"))
        try client.configureCurveClient(serverKey: serverKeys.publicKey, keyPair: clientKeys)
        #expect(try !client.curveServer)
        try client.connect(endpoint)

        try client.send([bytes("secret gradient")])
        #expect(try server.receive(timeoutMilliseconds: patience) == [bytes("client"), bytes("secret gradient")])
        try server.send([bytes("client"), bytes("ack")])
        #expect(try client.receive(timeoutMilliseconds: patience) == [bytes("ack")])
    }

    @Test func clientWithTheWrongServerKeyGetsNothingThrough() throws {
        let serverKeys = try CurveKeyPair.generate()
        let impostorKeys = try CurveKeyPair.generate()
        let context = try ZMQContext()
        let server = try ZMQSocket(context: context, type: .router)
        try server.configureCurveServer(keyPair: serverKeys)
        let endpoint = try server.bindLoopback()
        let client = try ZMQSocket(context: context, type: .dealer)
        try client.configureCurveClient(serverKey: impostorKeys.publicKey, keyPair: try CurveKeyPair.generate())
        try client.connect(endpoint)
        try client.send([bytes("let me in")], dontWait: true)
        #expect(try server.receive(timeoutMilliseconds: 300) == nil)
    }
}
