/// Sequential, length-checked little-endian reads from one message's bytes.
///
/// Invariant (why holding a pointer is safe): a `WireReader` is created only inside the
/// `withUnsafeBytes`-style closure of ``WireMessage/decode(_:limits:)``'s
/// callers and never escapes it; every read checks the remaining length first and throws
/// ``WireError/truncated(field:needed:available:)`` instead of reading past the end.
/// Counts are checked against their limit and against the remaining bytes *before* anything
/// is allocated.
struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    /// Bytes consumed so far.
    private(set) var offset: Int = 0
    /// The limits counts are checked against.
    let limits: WireLimits

    init(_ bytes: UnsafeRawBufferPointer, limits: WireLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// Bytes not yet consumed.
    var remaining: Int { bytes.count - offset }

    /// Throws `truncated` unless `count` more bytes are present.
    private func require(_ count: Int, _ field: String) throws(WireError) {
        guard count <= remaining else {
            throw .truncated(field: field, needed: count, available: remaining)
        }
    }

    // MARK: Scalars

    /// A little-endian fixed-width integer.
    mutating func integer<T: FixedWidthInteger & BitwiseCopyable>(_ field: String, as type: T.Type = T.self) throws(WireError) -> T {
        let size = MemoryLayout<T>.size
        try require(size, field)
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    mutating func u8(_ field: String) throws(WireError) -> UInt8 { try integer(field) }
    mutating func u16(_ field: String) throws(WireError) -> UInt16 { try integer(field) }
    mutating func u32(_ field: String) throws(WireError) -> UInt32 { try integer(field) }
    mutating func u64(_ field: String) throws(WireError) -> UInt64 { try integer(field) }

    /// An IEEE-754 binary64, bit for bit (NaN payloads and the sign of zero are kept).
    mutating func f64(_ field: String) throws(WireError) -> Double {
        Double(bitPattern: try integer(field, as: UInt64.self))
    }

    /// A boolean byte: exactly 0 or 1 (anything else is `outOfRange`, so every accepted
    /// message re-encodes to the same bytes).
    mutating func bool(_ field: String) throws(WireError) -> Bool {
        let byte = try u8(field)
        guard byte <= 1 else { throw .outOfRange(field: field, value: String(byte), allowed: "0 or 1") }
        return byte == 1
    }

    /// An optional value: presence byte 0 (absent) or 1 (present, followed by the value).
    mutating func optional<T>(
        _ field: String, _ read: (inout WireReader) throws(WireError) -> T
    ) throws(WireError) -> T? {
        guard try bool(field + ".present") else { return nil }
        return try read(&self)
    }

    /// A dtype code.
    mutating func dtype(_ field: String) throws(WireError) -> WireDType {
        let code = try u8(field)
        guard let dtype = WireDType(rawValue: code) else {
            throw .outOfRange(field: field, value: String(code), allowed: WireDType.allowedDescription)
        }
        return dtype
    }

    // MARK: Counts, strings, arrays

    /// A `u32` element count, checked against `limit` and then against the bytes left
    /// (`count × elementSize` must be present) — in that order, before any allocation.
    mutating func count(_ field: String, limit: Int, elementSize: Int) throws(WireError) -> Int {
        let count = Int(try u32(field + ".count"))
        guard count <= limit else { throw .countTooLarge(field: field, count: count, limit: limit) }
        try require(count * elementSize, field)
        return count
    }

    /// A string: `u32` byte length, then that many bytes of well-formed UTF-8.
    mutating func string(_ field: String) throws(WireError) -> String {
        let length = try count(field, limit: limits.maxStringBytes, elementSize: 1)
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + length)])
        offset += length
        let invalid = transcode(slice.makeIterator(), from: UTF8.self, to: UTF32.self, stoppingOnError: true) { _ in }
        guard !invalid else { throw .invalidUTF8(field: field) }
        return String(decoding: slice, as: UTF8.self)
    }

    /// An array of `u64`: `u32` count (at most `limit`), then the elements.
    mutating func u64Array(_ field: String, limit: Int) throws(WireError) -> [UInt64] {
        let count = try count(field, limit: limit, elementSize: 8)
        return copyElements(count: count, as: UInt64.self)
    }

    /// An array of `u32`: `u32` count (at most `limit`), then the elements.
    mutating func u32Array(_ field: String, limit: Int) throws(WireError) -> [UInt32] {
        let count = try count(field, limit: limit, elementSize: 4)
        return copyElements(count: count, as: UInt32.self)
    }

    /// An array of bytes: `u32` count (at most `limit`), then the bytes.
    mutating func byteArray(_ field: String, limit: Int) throws(WireError) -> [UInt8] {
        let count = try count(field, limit: limit, elementSize: 1)
        return copyElements(count: count, as: UInt8.self)
    }

    /// A ``WireVector``: dtype `u8`, count `u32` (at most `maxVectorElements`), elements.
    mutating func vector(_ field: String) throws(WireError) -> WireVector {
        let dtype = try dtype(field + ".dtype")
        let count = try count(field, limit: limits.maxVectorElements, elementSize: dtype.byteWidth)
        switch dtype {
        case .float32:
            let bits = copyElements(count: count, as: UInt32.self)
            #if _endian(big)
            return .float32(bits.map { Float(bitPattern: $0) })
            #else
            return .float32(unsafeBitCast(bits, to: [Float].self))
            #endif
        case .float64:
            let bits = copyElements(count: count, as: UInt64.self)
            #if _endian(big)
            return .float64(bits.map { Double(bitPattern: $0) })
            #else
            return .float64(unsafeBitCast(bits, to: [Double].self))
            #endif
        }
    }

    /// `count` little-endian elements copied with one `memcpy` (byte-swapped afterwards on a
    /// big-endian host). The caller has checked that `count × size` bytes remain.
    private mutating func copyElements<T: FixedWidthInteger & BitwiseCopyable>(count: Int, as type: T.Type) -> [T] {
        let byteCount = count * MemoryLayout<T>.size
        let source = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + byteCount)])
        offset += byteCount
        #if _endian(big)
        return (0..<count).map { T(littleEndian: source.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
        #else
        return [T](unsafeUninitializedCapacity: count) { destination, initialized in
            if byteCount > 0 { UnsafeMutableRawBufferPointer(destination).copyMemory(from: source) }
            initialized = count
        }
        #endif
    }
}
