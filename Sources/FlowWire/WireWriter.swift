/// Where an encoder puts bytes. The encoder runs twice over a message: once into a
/// ``WireByteCounter`` to learn the exact size, then into a ``WireBufferWriter`` that fills a
/// buffer of that size — one allocation, and arrays go in with one `memcpy`.
protocol WireSink {
    /// Appends `value` little-endian.
    mutating func integer<T: FixedWidthInteger & BitwiseCopyable>(_ value: T)
    /// Appends raw bytes as they are.
    mutating func raw(_ bytes: UnsafeRawBufferPointer)
}

extension WireSink {
    mutating func u8(_ value: UInt8) { integer(value) }
    mutating func u16(_ value: UInt16) { integer(value) }
    mutating func u32(_ value: UInt32) { integer(value) }
    mutating func u64(_ value: UInt64) { integer(value) }
    mutating func f64(_ value: Double) { integer(value.bitPattern) }
    mutating func bool(_ value: Bool) { integer(UInt8(value ? 1 : 0)) }

    /// A `u32` count. Counts of 2^32 or more cannot be encoded: that is a programming error
    /// (``WireMessage/validate(limits:)`` reports it as `countTooLarge` first).
    mutating func count(_ count: Int, _ field: StaticString) {
        guard let value = UInt32(exactly: count) else {
            preconditionFailure("FlowWire: \(field) has \(count) elements, more than a u32 count can say")
        }
        u32(value)
    }

    /// An optional value: presence byte, then the value when present.
    mutating func optional<T>(_ value: T?, _ write: (inout Self, T) -> Void) {
        if let value {
            u8(1)
            write(&self, value)
        } else {
            u8(0)
        }
    }

    /// A string: `u32` byte length, UTF-8 bytes.
    mutating func string(_ value: String, _ field: StaticString) {
        var text = value
        text.withUTF8 { utf8 in
            count(utf8.count, field)
            raw(UnsafeRawBufferPointer(utf8))
        }
    }

    /// A ``WireVector``: dtype, count, elements little-endian.
    mutating func vector(_ value: WireVector, _ field: StaticString) {
        u8(value.dtype.rawValue)
        count(value.count, field)
        switch value {
        case .float32(let values):
            #if _endian(big)
            for x in values { u32(x.bitPattern) }
            #else
            values.withUnsafeBytes { raw($0) }
            #endif
        case .float64(let values):
            #if _endian(big)
            for x in values { u64(x.bitPattern) }
            #else
            values.withUnsafeBytes { raw($0) }
            #endif
        }
    }

    /// An array of `u64`: count, elements.
    mutating func u64Array(_ values: [UInt64], _ field: StaticString) {
        count(values.count, field)
        #if _endian(big)
        for x in values { u64(x) }
        #else
        values.withUnsafeBytes { raw($0) }
        #endif
    }

    /// An array of `u32`: count, elements.
    mutating func u32Array(_ values: [UInt32], _ field: StaticString) {
        count(values.count, field)
        #if _endian(big)
        for x in values { u32(x) }
        #else
        values.withUnsafeBytes { raw($0) }
        #endif
    }

    /// An array of bytes: count, bytes.
    mutating func byteArray(_ values: [UInt8], _ field: StaticString) {
        count(values.count, field)
        values.withUnsafeBytes { raw($0) }
    }
}

/// Counts the bytes an encoding would take, without writing them.
struct WireByteCounter: WireSink {
    private(set) var byteCount = 0

    mutating func integer<T: FixedWidthInteger & BitwiseCopyable>(_ value: T) { byteCount += MemoryLayout<T>.size }
    mutating func raw(_ bytes: UnsafeRawBufferPointer) { byteCount += bytes.count }
}

/// Writes into a buffer sized by a ``WireByteCounter`` pass.
///
/// Invariant: created only inside `Array(unsafeUninitializedCapacity:)`'s closure in
/// ``WireMessage/encoded()`` and never escapes it; every write checks the capacity (a failed
/// check is an encoder bug, not something input can cause).
struct WireBufferWriter: WireSink {
    private let buffer: UnsafeMutableRawBufferPointer
    private(set) var offset = 0

    init(_ buffer: UnsafeMutableRawBufferPointer) { self.buffer = buffer }

    mutating func integer<T: FixedWidthInteger & BitwiseCopyable>(_ value: T) {
        let size = MemoryLayout<T>.size
        precondition(offset + size <= buffer.count, "FlowWire: encoder wrote past its computed size")
        buffer.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self)
        offset += size
    }

    mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        precondition(offset + bytes.count <= buffer.count, "FlowWire: encoder wrote past its computed size")
        UnsafeMutableRawBufferPointer(rebasing: buffer[offset..<(offset + bytes.count)]).copyMemory(from: bytes)
        offset += bytes.count
    }
}
