/// One named tensor of a safetensors archive: a dtype, a shape and the raw little-endian bytes
/// of its elements in row-major (C) order.
///
/// The memberwise and typed initialisers do not validate; ``SafeTensorsArchive/encoded()``
/// and the element accessors check that `bytes.count == shape.product × dtype.byteSize` and
/// throw ``SafeTensorsError`` otherwise. A tensor returned by
/// ``SafeTensorsArchive/decode(_:file:)`` is always consistent.
///
/// Equality compares name, dtype, shape and bytes, so two tensors holding NaNs with the same
/// bit patterns are equal (unlike `[Float] ==`).
public struct SafeTensorsTensor: Sendable, Equatable {
    /// The tensor's key in the header, e.g. `couplings.0.net.0.weight`. Any Unicode string
    /// except `__metadata__`.
    public var name: String
    /// The element type.
    public var dtype: SafeTensorsDType
    /// The dimensions, outermost first; `[]` is a scalar (one element), and a 0 anywhere
    /// makes an empty tensor. Each dimension must be in 0...2^53.
    public var shape: [Int]
    /// The elements' little-endian bytes in row-major order.
    public var bytes: [UInt8]

    /// Creates a tensor from raw little-endian bytes, without validation.
    public init(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }

    /// Creates an `F32` tensor holding `floats` in row-major order (bit patterns, NaN payloads
    /// included, are kept exactly). `floats.count` should equal the product of `shape`;
    /// a mismatch is reported by ``SafeTensorsArchive/encoded()`` and ``floats()``.
    public init(name: String, shape: [Int], floats: [Float]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * 4)
        for value in floats {
            let bits = value.bitPattern
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 8))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 16))
            bytes.append(UInt8(truncatingIfNeeded: bits >> 24))
        }
        self.init(name: name, dtype: .F32, shape: shape, bytes: bytes)
    }

    /// Creates an `F64` tensor holding `doubles` in row-major order (bit patterns kept exactly).
    /// `doubles.count` should equal the product of `shape`; a mismatch is reported by
    /// ``SafeTensorsArchive/encoded()`` and ``doubles()``.
    public init(name: String, shape: [Int], doubles: [Double]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(doubles.count * 8)
        for value in doubles {
            let bits = value.bitPattern
            for shift in stride(from: 0, to: 64, by: 8) {
                bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
            }
        }
        self.init(name: name, dtype: .F64, shape: shape, bytes: bytes)
    }

    /// The number of elements, the product of ``shape`` (1 for a scalar), or `nil` if a
    /// dimension is negative or the product overflows `Int`.
    public var elementCount: Int? {
        SafeTensorsDType.elementCount(shape: shape)
    }

    /// The elements as `Float`, in row-major order.
    ///
    /// `F32` is read bit for bit. `F16` and `BF16` are widened; both are exact (every binary16
    /// and bfloat16 value, subnormals, infinities and NaN included, is a binary32 value).
    ///
    /// - Throws: ``SafeTensorsError/Problem/dtypeMismatch(expected:found:)`` for any other
    ///   dtype (`F64` is not narrowed silently: use ``doubles()``), or a shape/byte-count error
    ///   if ``bytes`` does not match ``shape``.
    public func floats() throws -> [Float] {
        switch dtype {
        case .F32:
            let count = try checkedElementCount()
            return (0..<count).map { Float(bitPattern: loadUInt32(at: $0 &* 4)) }
        case .F16:
            let count = try checkedElementCount()
            return (0..<count).map { Self.floatFromBinary16(loadUInt16(at: $0 &* 2)) }
        case .BF16:
            let count = try checkedElementCount()
            return (0..<count).map { Float(bitPattern: UInt32(loadUInt16(at: $0 &* 2)) << 16) }
        default:
            throw SafeTensorsError(
                tensor: name, problem: .dtypeMismatch(expected: [.F32, .F16, .BF16], found: dtype))
        }
    }

    /// The elements as `Double`, in row-major order.
    ///
    /// `F64` is read bit for bit. `F32`, `F16` and `BF16` are widened exactly (every such value
    /// is a binary64 value; NaNs stay NaN).
    ///
    /// - Throws: ``SafeTensorsError/Problem/dtypeMismatch(expected:found:)`` for integer and
    ///   boolean dtypes, or a shape/byte-count error if ``bytes`` does not match ``shape``.
    public func doubles() throws -> [Double] {
        switch dtype {
        case .F64:
            let count = try checkedElementCount()
            return (0..<count).map { Double(bitPattern: loadUInt64(at: $0 &* 8)) }
        case .F32, .F16, .BF16:
            return try floats().map { Double($0) }
        default:
            throw SafeTensorsError(
                tensor: name,
                problem: .dtypeMismatch(expected: [.F64, .F32, .F16, .BF16], found: dtype))
        }
    }

    /// Checks that ``shape`` is valid and ``bytes`` holds exactly its elements; returns the
    /// element count.
    func checkedElementCount() throws -> Int {
        for (index, dimension) in shape.enumerated()
        where dimension < 0 || dimension > SafeTensorsJSON.maximumInteger {
            throw SafeTensorsError(
                tensor: name, problem: .invalidDimension(index: index, found: String(dimension)))
        }
        guard let count = elementCount,
            SafeTensorsDType.byteCount(shape: shape, dtype: dtype) != nil
        else {
            throw SafeTensorsError(
                tensor: name, problem: .elementCountOverflow(shape: shape, dtype: dtype))
        }
        guard bytes.count == count * dtype.byteSize else {
            throw SafeTensorsError(
                tensor: name,
                problem: .byteCountMismatch(byteCount: bytes.count, shape: shape, dtype: dtype))
        }
        return count
    }

    private func loadUInt16(at offset: Int) -> UInt16 {
        UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
    }

    private func loadUInt32(at offset: Int) -> UInt32 {
        var value: UInt32 = 0
        for index in 0..<4 { value |= UInt32(bytes[offset + index]) << UInt32(8 * index) }
        return value
    }

    private func loadUInt64(at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for index in 0..<8 { value |= UInt64(bytes[offset + index]) << UInt64(8 * index) }
        return value
    }

    /// Exact conversion of an IEEE 754 binary16 bit pattern to binary32 (portable: `Float16`
    /// is unavailable on some platforms).
    static func floatFromBinary16(_ bits: UInt16) -> Float {
        let sign: UInt32 = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let fraction = UInt32(bits & 0x03FF)
        switch exponent {
        case 0x1F:  // infinity or NaN: keep the payload in the top fraction bits
            return Float(bitPattern: sign | 0x7F80_0000 | fraction << 13)
        case 0:  // zero or subnormal: fraction × 2^-24, exact in binary32
            let magnitude = Float(fraction) * 0x1p-24
            return Float(bitPattern: sign | magnitude.bitPattern)
        default:  // normal: rebias the exponent from 15 to 127
            return Float(bitPattern: sign | (exponent + 112) << 23 | fraction << 13)
        }
    }
}
