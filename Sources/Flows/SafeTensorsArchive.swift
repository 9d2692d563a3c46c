/// A safetensors archive: named tensors plus a string-to-string metadata map, as read and
/// written by Hugging Face's `safetensors` (Python `safetensors.numpy.load_file`,
/// `safetensors.torch.load_file`, the Rust crate).
///
/// ## File layout
///
/// 1. 8 bytes: N, the header length, a little-endian `UInt64`.
/// 2. N bytes: a UTF-8 JSON object. Each tensor is a member
///    `"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}` whose offsets
///    are relative to the start of the data buffer; the optional member `"__metadata__"` maps
///    strings to strings. The header may be padded with trailing spaces.
/// 3. The data buffer: every tensor's little-endian elements in row-major order. The
///    tensors' byte ranges tile the buffer exactly — no overlaps, holes or trailing bytes.
///
/// ## Determinism
///
/// ``encoded()`` produces the same bytes for equal archives: tensors are laid out in array
/// order, the header is written by hand with `__metadata__` first and its keys sorted, then the
/// tensors in array order, each as `{"dtype":…,"shape":…,"data_offsets":…}` without
/// whitespace, padded with spaces so that the data buffer starts at a multiple of 8 bytes.
/// ``decode(_:file:)`` followed by ``encoded()`` reproduces the bytes of any
/// archive ``encoded()`` wrote, and `decode(encoded())` equals the archive.
public struct SafeTensorsArchive: Sendable, Equatable {
    /// The largest header a reader accepts: 100,000,000 bytes (as the Rust crate).
    public static let maximumHeaderLength = 100_000_000

    /// The `__metadata__` map; empty if the file has none. An empty map is not written.
    public var metadata: [String: String]
    /// The tensors, in data-buffer order. Names must be distinct and not `__metadata__`.
    /// Equality of archives compares this order too.
    public var tensors: [SafeTensorsTensor]

    /// Creates an archive; validation happens in ``encoded()``.
    public init(metadata: [String: String] = [:], tensors: [SafeTensorsTensor] = []) {
        self.metadata = metadata
        self.tensors = tensors
    }

    /// The first tensor named `name`, or `nil`. Linear in the number of tensors.
    public subscript(name: String) -> SafeTensorsTensor? {
        tensors.first { $0.name == name }
    }

    /// The archive as safetensors file bytes; deterministic (see the type's documentation).
    ///
    /// - Throws: ``SafeTensorsError`` (with `file == nil`) if two tensors share a name, a
    ///   tensor is named `__metadata__`, a dimension is outside 0...2^53, a byte count
    ///   overflows, a tensor's ``SafeTensorsTensor/bytes`` do not match its shape and dtype,
    ///   the data buffer would end beyond 2^53, or the header would exceed
    ///   ``maximumHeaderLength``.
    public func encoded() throws -> [UInt8] {
        var seen = Set<String>()
        var offsets: [(begin: Int, end: Int)] = []
        offsets.reserveCapacity(tensors.count)
        var cursor = 0
        for tensor in tensors {
            guard tensor.name != "__metadata__" else {
                throw SafeTensorsError(tensor: tensor.name, problem: .reservedTensorName)
            }
            guard seen.insert(tensor.name).inserted else {
                throw SafeTensorsError(tensor: tensor.name, problem: .duplicateTensorName)
            }
            _ = try tensor.checkedElementCount()  // bytes.count == shape × dtype size
            let (end, overflow) = cursor.addingReportingOverflow(tensor.bytes.count)
            guard !overflow, end <= SafeTensorsJSON.maximumInteger else {
                throw SafeTensorsError(
                    tensor: tensor.name,
                    problem: .invalidDataOffsets(found: "[\(cursor), \(end)]"))
            }
            offsets.append((cursor, end))
            cursor = end
        }

        var header: [UInt8] = [UInt8(ascii: "{")]
        var needsComma = false
        if !metadata.isEmpty {
            header.append(contentsOf: "\"__metadata__\":{".utf8)
            let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                SafeTensorsJSON.appendQuoted(key, to: &header)
                header.append(UInt8(ascii: ":"))
                SafeTensorsJSON.appendQuoted(metadata[key]!, to: &header)
            }
            header.append(UInt8(ascii: "}"))
            needsComma = true
        }
        for (tensor, range) in zip(tensors, offsets) {
            if needsComma { header.append(UInt8(ascii: ",")) }
            needsComma = true
            SafeTensorsJSON.appendQuoted(tensor.name, to: &header)
            header.append(contentsOf: ":{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[".utf8)
            for (index, dimension) in tensor.shape.enumerated() {
                if index > 0 { header.append(UInt8(ascii: ",")) }
                SafeTensorsJSON.appendInteger(dimension, to: &header)
            }
            header.append(contentsOf: "],\"data_offsets\":[".utf8)
            SafeTensorsJSON.appendInteger(range.begin, to: &header)
            header.append(UInt8(ascii: ","))
            SafeTensorsJSON.appendInteger(range.end, to: &header)
            header.append(contentsOf: "]}".utf8)
        }
        header.append(UInt8(ascii: "}"))
        // Pad with spaces so that 8 + N, the start of the data buffer, is a multiple of 8.
        header.append(
            contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        guard header.count <= Self.maximumHeaderLength else {
            throw SafeTensorsError(
                problem: .headerTooLarge(
                    length: UInt64(header.count), limit: Self.maximumHeaderLength))
        }

        var output: [UInt8] = []
        output.reserveCapacity(8 + header.count + cursor)
        let length = UInt64(header.count)
        for shift in stride(from: 0, to: 64, by: 8) {
            output.append(UInt8(truncatingIfNeeded: length >> UInt64(shift)))
        }
        output.append(contentsOf: header)
        for tensor in tensors {
            output.append(contentsOf: tensor.bytes)
        }
        return output
    }
}
