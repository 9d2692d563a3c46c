/// Why a byte string is not a valid protocol message (or why a message value would not be one).
///
/// Decoding hostile bytes never traps: ``WireMessage/decode(_:limits:)``
/// throws one of these, naming the field (`kind.field`, for example `gradientResult.gradient`)
/// and what was expected versus what was found. `docs/protocol.md` §6 lists every reason.
///
/// The receiver of an invalid message counts it (``reasonName`` is a stable key for counters),
/// logs it once per peer and drops it; it is never fatal.
public enum WireError: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The message ends inside `field`: it needs `needed` more bytes, only `available` are left.
    case truncated(field: String, needed: Int, available: Int)
    /// The message does not start with `TRBW`; `found` holds its first four bytes.
    case badMagic(found: [UInt8])
    /// The header's protocol version is not one this decoder speaks (only ``WireMessage/protocolVersion``).
    case unsupportedVersion(found: UInt16)
    /// The header's kind byte names no message of this protocol version.
    case unknownKind(found: UInt8)
    /// `count` bytes follow the end of a complete message.
    case trailingBytes(count: Int)
    /// A count (array elements, string bytes, frame bytes) exceeds its limit from ``WireLimits``.
    case countTooLarge(field: String, count: Int, limit: Int)
    /// A string field is not well-formed UTF-8.
    case invalidUTF8(field: String)
    /// A value that must be finite is NaN or ±∞: element `index` of an array, or the scalar
    /// field itself when `index` is `nil`.
    case nonFinite(field: String, index: Int?)
    /// A field holds a value outside its allowed set (`allowed` says which, for example `1...64`).
    case outOfRange(field: String, value: String, allowed: String)
    /// Fields disagree with each other (for example an array whose length is not `rows × dimension`).
    case inconsistent(field: String, reason: String)

    /// A short stable name of the reason (`truncated`, `badMagic`, …), for counters and log keys.
    public var reasonName: String {
        switch self {
        case .truncated: return "truncated"
        case .badMagic: return "badMagic"
        case .unsupportedVersion: return "unsupportedVersion"
        case .unknownKind: return "unknownKind"
        case .trailingBytes: return "trailingBytes"
        case .countTooLarge: return "countTooLarge"
        case .invalidUTF8: return "invalidUTF8"
        case .nonFinite: return "nonFinite"
        case .outOfRange: return "outOfRange"
        case .inconsistent: return "inconsistent"
        }
    }

    /// One sentence naming the field and the problem. Never contains payload data beyond the
    /// four magic bytes.
    public var description: String {
        switch self {
        case let .truncated(field, needed, available):
            return "truncated message: \(field) needs \(needed) \(Self.bytes(needed)), only \(available) left"
        case let .badMagic(found):
            let hex = found.map { byte -> String in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            return "not a Tributary message: expected magic bytes 54 52 42 57 \"TRBW\", found \(hex)"
        case let .unsupportedVersion(found):
            return "protocol version \(found) is not supported (this side speaks version \(WireMessage.protocolVersion))"
        case let .unknownKind(found):
            return "unknown message kind \(found)"
        case let .trailingBytes(count):
            return "\(count) unexpected \(Self.bytes(count)) after the end of the message"
        case let .countTooLarge(field, count, limit):
            return "\(field): count \(count) exceeds the limit \(limit)"
        case let .invalidUTF8(field):
            return "\(field): not valid UTF-8"
        case let .nonFinite(field, index):
            if let index { return "\(field)[\(index)] is not finite (NaN or infinity)" }
            return "\(field) is not finite (NaN or infinity)"
        case let .outOfRange(field, value, allowed):
            return "\(field): \(value) is out of range (allowed: \(allowed))"
        case let .inconsistent(field, reason):
            return "\(field): \(reason)"
        }
    }

    private static func bytes(_ n: Int) -> String { n == 1 ? "byte" : "bytes" }
}
