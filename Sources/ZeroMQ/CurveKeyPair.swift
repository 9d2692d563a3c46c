import CZeroMQ

/// A CURVE key (Curve25519): 32 bytes, written as 40 Z85 characters in key files.
///
/// ``description`` does not show the key, so a secret key never ends up in a log by accident;
/// use ``z85`` or ``bytes`` explicitly.
public struct CurveKey: Hashable, Sendable, CustomStringConvertible {
    /// The key's 32 bytes.
    public let bytes: [UInt8]

    /// A key from its 32 bytes (else ``ZeroMQError/invalidCurveKey(length:)``).
    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else { throw ZeroMQError.invalidCurveKey(length: bytes.count) }
        self.bytes = bytes
    }

    /// A key from its 40 Z85 characters (else ``ZeroMQError/invalidCurveKey(length:)`` or a
    /// Z85 error).
    public init(z85: String) throws {
        guard z85.utf8.count == 40 else { throw ZeroMQError.invalidCurveKey(length: z85.utf8.count) }
        bytes = try Z85.decode(z85)
    }

    /// The key as 40 Z85 characters.
    public var z85: String { Z85.encodeUnchecked(bytes) }

    /// `CurveKey(…)` — the key itself is not shown.
    public var description: String { "CurveKey(…)" }
}

/// A CURVE key pair: the public key goes to peers, the secret key stays with its owner.
public struct CurveKeyPair: Hashable, Sendable {
    /// The public key.
    public let publicKey: CurveKey
    /// The secret key.
    public let secretKey: CurveKey

    /// A pair from known keys (not checked against each other; see ``init(secretKey:)``).
    public init(publicKey: CurveKey, secretKey: CurveKey) {
        self.publicKey = publicKey
        self.secretKey = secretKey
    }

    /// The pair of a secret key, deriving its public key (`zmq_curve_public`).
    public init(secretKey: CurveKey) throws {
        self.init(publicKey: try Self.derivePublicKey(fromSecret: secretKey), secretKey: secretKey)
    }

    /// A new random key pair (`zmq_curve_keypair`, libsodium's generator).
    /// Throws `ENOTSUP` when libzmq was built without CURVE (see `ZeroMQ.has("curve")`).
    public static func generate() throws -> CurveKeyPair {
        var publicText = [CChar](repeating: 0, count: 41)
        var secretText = [CChar](repeating: 0, count: 41)
        try call("zmq_curve_keypair") { zmq_curve_keypair(&publicText, &secretText) }
        return CurveKeyPair(
            publicKey: try CurveKey(z85: string(publicText)),
            secretKey: try CurveKey(z85: string(secretText)))
    }

    /// The public key that belongs to `secret` (`zmq_curve_public`).
    public static func derivePublicKey(fromSecret secret: CurveKey) throws -> CurveKey {
        var publicText = [CChar](repeating: 0, count: 41)
        try call("zmq_curve_public") { zmq_curve_public(&publicText, secret.z85) }
        return try CurveKey(z85: string(publicText))
    }

    private static func string(_ text: [CChar]) -> String {
        String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
