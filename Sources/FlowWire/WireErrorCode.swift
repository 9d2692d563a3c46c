/// The code of an `error` message (u16). An open set: codes this version does not name are
/// carried through unchanged, so a newer peer's codes still reach the logs.
public struct WireErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    /// The code on the wire.
    public let rawValue: UInt16

    /// The code `rawValue`.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A received message did not decode (the error's text is the ``WireError``'s description).
    public static let badMessage = WireErrorCode(rawValue: 1)
    /// The peer speaks no common protocol version.
    public static let unsupportedVersion = WireErrorCode(rawValue: 2)
    /// The message names a job the receiver does not know (or no longer runs).
    public static let unknownJob = WireErrorCode(rawValue: 3)
    /// The worker lacks the shard rows an assignment needs.
    public static let missingRows = WireErrorCode(rawValue: 4)
    /// The worker does not hold the parameter version an assignment names.
    public static let missingParameters = WireErrorCode(rawValue: 5)
    /// Computing a result failed (the text says why).
    public static let computeFailed = WireErrorCode(rawValue: 6)
    /// A result (loss, gradient, parameters) was NaN or ±∞, so it was not sent.
    public static let nonFinite = WireErrorCode(rawValue: 7)
    /// The request exceeds the worker's capacity (rows, memory).
    public static let capacity = WireErrorCode(rawValue: 8)
    /// The job's dtype is not one the worker computes in.
    public static let unsupportedDType = WireErrorCode(rawValue: 9)
    /// An unexpected internal failure.
    public static let `internal` = WireErrorCode(rawValue: 10)
    /// The coordinator does not know the sender (declared dead, or the coordinator restarted):
    /// the worker must say hello again on a new connection.
    public static let notRegistered = WireErrorCode(rawValue: 11)
    /// The job uses the sharded exchange and the worker's hello names no peer endpoint
    /// (protocol version 4): it cannot take part, and saying hello again will not change that.
    public static let noPeerEndpoint = WireErrorCode(rawValue: 12)

    /// The code's name (`nonFinite`), or `code 42` for one this version does not name.
    public var description: String {
        switch rawValue {
        case 1: return "badMessage"
        case 2: return "unsupportedVersion"
        case 3: return "unknownJob"
        case 4: return "missingRows"
        case 5: return "missingParameters"
        case 6: return "computeFailed"
        case 7: return "nonFinite"
        case 8: return "capacity"
        case 9: return "unsupportedDType"
        case 10: return "internal"
        case 11: return "notRegistered"
        case 12: return "noPeerEndpoint"
        default: return "code \(rawValue)"
        }
    }
}
