import CZeroMQ

/// Z85, ZeroMQ's printable encoding of binary data (RFC 32/Z85): every 4 bytes, read as a
/// big-endian 32-bit number, become 5 characters of an 85-character alphabet. CURVE keys are
/// 32 bytes, so 40 characters. Implemented in Swift (checked against `zmq_z85_encode`/`decode`
/// by the tests) so that encoding needs no C buffers and every malformed input is a thrown
/// error.
public enum Z85 {
    static let alphabet: [UInt8] = Array(
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#".utf8)

    /// The alphabet index of each byte, 0xFF for bytes outside it.
    static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Encodes `bytes`, whose length must be a multiple of 4 (else
    /// ``ZeroMQError/z85InvalidLength(length:multiple:)``), into `bytes.count / 4 * 5`
    /// characters.
    public static func encode(_ bytes: [UInt8]) throws -> String {
        guard bytes.count % 4 == 0 else {
            throw ZeroMQError.z85InvalidLength(length: bytes.count, multiple: 4)
        }
        return encodeUnchecked(bytes)
    }

    /// Encodes bytes whose length is known to be a multiple of 4.
    static func encodeUnchecked(_ bytes: [UInt8]) -> String {
        var text = [UInt8]()
        text.reserveCapacity(bytes.count / 4 * 5)
        var index = 0
        while index + 4 <= bytes.count {
            var value = UInt32(bytes[index]) << 24 | UInt32(bytes[index + 1]) << 16
                | UInt32(bytes[index + 2]) << 8 | UInt32(bytes[index + 3])
            var group = [UInt8](repeating: 0, count: 5)
            for position in stride(from: 4, through: 0, by: -1) {
                group[position] = alphabet[Int(value % 85)]
                value /= 85
            }
            text.append(contentsOf: group)
            index += 4
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// Decodes Z85 `text` into `text.utf8.count / 5 * 4` bytes.
    ///
    /// - Throws: ``ZeroMQError/z85InvalidLength(length:multiple:)`` when the length is not a
    ///   multiple of 5, ``ZeroMQError/z85InvalidCharacter(offset:byte:)`` for a byte outside
    ///   the alphabet, ``ZeroMQError/z85Overflow(offset:)`` for a group above 2³²−1.
    public static func decode(_ text: String) throws -> [UInt8] {
        let characters = Array(text.utf8)
        guard characters.count % 5 == 0 else {
            throw ZeroMQError.z85InvalidLength(length: characters.count, multiple: 5)
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(characters.count / 5 * 4)
        var offset = 0
        while offset < characters.count {
            var value: UInt64 = 0
            for position in offset..<(offset + 5) {
                let digit = decodeTable[Int(characters[position])]
                guard digit != 0xFF else {
                    throw ZeroMQError.z85InvalidCharacter(offset: position, byte: characters[position])
                }
                value = value * 85 + UInt64(digit)
            }
            guard value <= UInt64(UInt32.max) else { throw ZeroMQError.z85Overflow(offset: offset) }
            bytes.append(UInt8(truncatingIfNeeded: value >> 24))
            bytes.append(UInt8(truncatingIfNeeded: value >> 16))
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
            offset += 5
        }
        return bytes
    }

    // MARK: libzmq's implementation, the reference the tests compare against

    /// `zmq_z85_encode`, or nil when libzmq refuses the input.
    static func libzmqEncode(_ bytes: [UInt8]) -> String? {
        var text = [CChar](repeating: 0, count: bytes.count / 4 * 5 + 1)
        let ok = text.withUnsafeMutableBufferPointer { destination in
            bytes.withUnsafeBufferPointer { source in
                zmq_z85_encode(destination.baseAddress, source.baseAddress, source.count) != nil
            }
        }
        guard ok else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `zmq_z85_decode`, or nil when libzmq refuses the input.
    static func libzmqDecode(_ text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: text.utf8.count / 5 * 4 + 4)
        let ok = bytes.withUnsafeMutableBufferPointer { destination in
            zmq_z85_decode(destination.baseAddress, text) != nil
        }
        return ok ? Array(bytes.prefix(text.utf8.count / 5 * 4)) : nil
    }
}
