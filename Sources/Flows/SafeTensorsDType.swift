/// The element type of a safetensors tensor, spelled as in the file's `dtype` field.
///
/// Every type is stored little-endian without padding: `F64`/`F32` are IEEE 754
/// binary64/binary32, `F16` is IEEE 754 binary16, `BF16` is bfloat16 (the high 16 bits of a
/// binary32), `I*` are two's-complement signed integers, `U8` is an unsigned byte and `BOOL`
/// is one byte per element (0 false, 1 true).
public enum SafeTensorsDType: String, Sendable, Hashable, CaseIterable {
    /// IEEE 754 binary64, 8 bytes.
    case F64
    /// IEEE 754 binary32, 4 bytes.
    case F32
    /// IEEE 754 binary16, 2 bytes.
    case F16
    /// bfloat16 (8-bit exponent, 7-bit fraction), 2 bytes.
    case BF16
    /// Signed 64-bit integer, 8 bytes.
    case I64
    /// Signed 32-bit integer, 4 bytes.
    case I32
    /// Signed 16-bit integer, 2 bytes.
    case I16
    /// Signed 8-bit integer, 1 byte.
    case I8
    /// Unsigned 8-bit integer, 1 byte.
    case U8
    /// Boolean, 1 byte.
    case BOOL

    /// The number of bytes one element occupies: 8, 4, 2 or 1.
    public var byteSize: Int {
        switch self {
        case .F64, .I64: return 8
        case .F32, .I32: return 4
        case .F16, .BF16, .I16: return 2
        case .I8, .U8, .BOOL: return 1
        }
    }

    /// The number of elements of `shape` (1 for the scalar shape `[]`), or `nil` if a
    /// dimension is negative or the product overflows `Int`.
    static func elementCount(shape: [Int]) -> Int? {
        var count = 1
        for dimension in shape {
            guard dimension >= 0 else { return nil }
            let (product, overflow) = count.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            count = product
        }
        return count
    }

    /// The number of bytes `shape` of `dtype` occupies, or `nil` if a dimension is negative or
    /// the count overflows `Int`.
    static func byteCount(shape: [Int], dtype: SafeTensorsDType) -> Int? {
        guard let count = elementCount(shape: shape) else { return nil }
        let (bytes, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        return overflow ? nil : bytes
    }
}
