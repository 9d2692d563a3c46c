import FlowWire

/// A message from a peer as a coordinator's machine sees it: decoded at the edge by the driver,
/// or the reason it could not be. The machines never see bytes.
public enum InboundMessage: Sendable, Equatable {
    /// A message that decoded.
    case message(WireMessage)
    /// Bytes that did not decode: why, and the reply owed to the sender (a hello in another
    /// protocol version is told which one the coordinator speaks, so that the worker can tell its
    /// operator instead of retrying forever; anything else gets nothing).
    case undecodable(reason: String, reply: WireMessage?)

    /// Decodes one frame, read in place (decoding copies what it keeps, once).
    public init(decoding bytes: UnsafeRawBufferPointer) {
        do {
            self = .message(try WireMessage.decode(bytes))
        } catch {
            self = .undecodable(reason: "\(error)", reply: Self.reply(toUndecodable: error, bytes: bytes))
        }
    }

    /// Decodes one frame.
    public init(decoding bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { InboundMessage(decoding: $0) }
    }

    private static func reply(toUndecodable error: WireError, bytes: UnsafeRawBufferPointer) -> WireMessage? {
        let kindOffset = 6  // magic (4), version (2), then the kind
        guard case .unsupportedVersion(let found) = error, bytes.count > kindOffset,
              bytes[kindOffset] == WireMessage.Kind.hello.rawValue
        else { return nil }
        return .error(.init(code: .unsupportedVersion, message: "coordinator speaks protocol \(WireMessage.protocolVersion), worker sent \(found)"))
    }
}
