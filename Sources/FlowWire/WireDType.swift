/// The element type of a numeric array on the wire (IEEE-754, little-endian).
///
/// Code 0 is deliberately unused so that zeroed memory never reads as a valid dtype.
public enum WireDType: UInt8, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    /// IEEE-754 binary32, 4 bytes per element.
    case float32 = 1
    /// IEEE-754 binary64, 8 bytes per element.
    case float64 = 2

    /// Bytes per element: 4 or 8.
    public var byteWidth: Int {
        switch self {
        case .float32: return 4
        case .float64: return 8
        }
    }

    /// `float32` or `float64`, the names model files use.
    public var description: String {
        switch self {
        case .float32: return "float32"
        case .float64: return "float64"
        }
    }

    /// The allowed codes, as error messages show them.
    static let allowedDescription = "1 (float32) or 2 (float64)"
}

/// A set of ``WireDType``s, sent as a one-byte bit mask (bit 0 `float32`, bit 1 `float64`).
public struct WireDTypeSet: OptionSet, Sendable, Hashable {
    /// The bit mask.
    public let rawValue: UInt8

    /// The set with bit mask `rawValue` (bits other than 0 and 1 are invalid on the wire).
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Contains `float32` (bit 0).
    public static let float32 = WireDTypeSet(rawValue: 1 << 0)
    /// Contains `float64` (bit 1).
    public static let float64 = WireDTypeSet(rawValue: 1 << 1)
    /// Both dtypes.
    public static let all: WireDTypeSet = [.float32, .float64]

    /// Whether `dtype` is in the set.
    public func contains(_ dtype: WireDType) -> Bool {
        switch dtype {
        // Bit tests, not `contains(.float32)`: inside this method that name resolves to this very
        // overload and recursed forever.
        case .float32: return rawValue & WireDTypeSet.float32.rawValue != 0
        case .float64: return rawValue & WireDTypeSet.float64.rawValue != 0
        }
    }
}
