import Foundation

extension SafeTensorsArchive {
    /// Decodes and fully validates safetensors file bytes. Never traps, whatever the bytes.
    ///
    /// Checks, in order: at least 8 bytes; header length N ≤ file size − 8 and
    /// ≤ ``maximumHeaderLength``; the header is UTF-8 without NUL bytes, starts with `{` and is
    /// a JSON object with no repeated key in any object; `__metadata__`, if present, maps
    /// strings to strings; every other member is an object with exactly the keys `dtype` (a
    /// known ``SafeTensorsDType``), `shape` (integers in 0...2^53 whose product times the
    /// dtype size fits `Int`) and `data_offsets` (two integers in 0...2^53, begin ≤ end ≤ the
    /// data buffer's size, `end − begin` = elements × dtype size); and the tensors' byte ranges,
    /// sorted, tile the data buffer with no overlap, hole or trailing byte. Numbers must be JSON
    /// integer literals: `2.0`, `1e3`, `true` and strings are rejected. Entries are checked in
    /// name order, so the first error reported is the same on every run.
    ///
    /// - Parameters:
    ///   - bytes: The whole file.
    ///   - file: The path or source name to put in errors.
    /// - Returns: The archive, tensors in order of their data offsets (zero-byte tensors that
    ///   share an offset in header order), so `decode(a.encoded()) == a`.
    /// - Throws: ``SafeTensorsError`` with `file` set and the entry's name as `tensor` where
    ///   one is concerned.
    public static func decode(_ bytes: [UInt8], file: String) throws -> SafeTensorsArchive {
        try SafeTensorsDecoder(bytes: bytes, file: file).decode()
    }

    /// Decodes and fully validates safetensors file bytes held in any collection (`Data`,
    /// `ArraySlice<UInt8>`, `UnsafeRawBufferPointer`, …); the bytes are copied once. See
    /// ``decode(_:file:)``.
    public static func decode<Bytes: Collection>(_ bytes: Bytes, file: String) throws
        -> SafeTensorsArchive where Bytes.Element == UInt8
    {
        try SafeTensorsDecoder(bytes: Array(bytes), file: file).decode()
    }
}

/// The validating reader behind ``SafeTensorsArchive/decode(_:file:)``.
private struct SafeTensorsDecoder {
    let bytes: [UInt8]
    let file: String

    /// One validated tensor entry before ordering.
    struct Entry {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var begin: Int
        var end: Int
        var headerPosition: Int
    }

    func failure(_ problem: SafeTensorsError.Problem, tensor: String? = nil) -> SafeTensorsError {
        SafeTensorsError(file: file, tensor: tensor, problem: problem)
    }

    func decode() throws -> SafeTensorsArchive {
        // Container.
        guard bytes.count >= 8 else { throw failure(.fileTooShort(size: bytes.count)) }
        var length: UInt64 = 0
        for index in 0..<8 { length |= UInt64(bytes[index]) << UInt64(8 * index) }
        guard length <= UInt64(bytes.count - 8) else {
            throw failure(.headerExceedsFile(length: length, fileSize: bytes.count))
        }
        guard length <= UInt64(SafeTensorsArchive.maximumHeaderLength) else {
            throw failure(
                .headerTooLarge(length: length, limit: SafeTensorsArchive.maximumHeaderLength))
        }
        let headerRange = 8..<(8 + Int(length))
        let header = bytes[headerRange]
        let bufferStart = headerRange.upperBound
        let bufferSize = bytes.count - bufferStart

        // Header text. JSONSerialization guesses UTF-16/32 from NUL bytes, and JSON never
        // contains a raw NUL, so refuse them before it sees the bytes.
        guard String(validating: header, as: UTF8.self) != nil else {
            throw failure(.headerNotUTF8)
        }
        if let nul = header.firstIndex(of: 0) {
            throw failure(
                .headerNotJSON(reason: "NUL byte at header offset \(nul - headerRange.lowerBound)"))
        }
        guard header.first == UInt8(ascii: "{") else { throw failure(.headerNotObject) }
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(header), options: [])
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
            throw failure(.headerNotJSON(reason: reason ?? "\(error)"))
        }
        guard let object = parsed as? [String: Any] else { throw failure(.headerNotObject) }
        let scan = SafeTensorsJSON.scanKeys(bytes, in: headerRange)
        if let duplicate = scan.duplicate {
            throw failure(.duplicateKey(duplicate.key), tensor: duplicate.entry)
        }
        var headerPosition: [String: Int] = [:]
        for (position, key) in scan.topLevelKeys.enumerated() where headerPosition[key] == nil {
            headerPosition[key] = position
        }

        // Entries, in name order so that the first error is reproducible.
        var metadata: [String: String] = [:]
        var entries: [Entry] = []
        entries.reserveCapacity(object.count)
        for name in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            let value = object[name]!
            if name == "__metadata__" {
                metadata = try decodeMetadata(value)
            } else {
                var entry = try decodeEntry(name: name, value: value, bufferSize: bufferSize)
                entry.headerPosition = headerPosition[name] ?? Int.max
                entries.append(entry)
            }
        }

        // Layout: sorted byte ranges must tile the buffer.
        entries.sort {
            if ($0.begin, $0.end, $0.headerPosition) != ($1.begin, $1.end, $1.headerPosition) {
                return ($0.begin, $0.end, $0.headerPosition) < ($1.begin, $1.end, $1.headerPosition)
            }
            return $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
        var cursor = 0
        var previous: String?
        for entry in entries {
            if entry.begin < cursor, let previous {
                throw failure(
                    .overlap(begin: entry.begin, previous: previous, previousEnd: cursor),
                    tensor: entry.name)
            }
            if entry.begin > cursor {
                throw failure(.hole(begin: cursor, end: entry.begin), tensor: entry.name)
            }
            cursor = entry.end
            previous = entry.name
        }
        guard cursor == bufferSize else {
            throw failure(.trailingBytes(begin: cursor, bufferSize: bufferSize))
        }

        let tensors = entries.map { entry in
            SafeTensorsTensor(
                name: entry.name, dtype: entry.dtype, shape: entry.shape,
                bytes: Array(bytes[(bufferStart + entry.begin)..<(bufferStart + entry.end)]))
        }
        return SafeTensorsArchive(metadata: metadata, tensors: tensors)
    }

    func decodeMetadata(_ value: Any) throws -> [String: String] {
        guard let object = value as? [String: Any] else {
            throw failure(.metadataNotObject(found: SafeTensorsJSON.describe(value)))
        }
        var metadata: [String: String] = [:]
        for key in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            guard let string = object[key] as? String else {
                throw failure(
                    .metadataValueNotString(key: key, found: SafeTensorsJSON.describe(object[key]!))
                )
            }
            metadata[key] = string
        }
        return metadata
    }

    func decodeEntry(name: String, value: Any, bufferSize: Int) throws -> Entry {
        guard let fields = value as? [String: Any] else {
            throw failure(.entryNotObject(found: SafeTensorsJSON.describe(value)), tensor: name)
        }
        let allowed: Set<String> = ["dtype", "shape", "data_offsets"]
        for key in fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        where !allowed.contains(key) {
            throw failure(.unexpectedField(key), tensor: name)
        }
        func field(_ key: String) throws -> Any {
            guard let value = fields[key] else { throw failure(.missingField(key), tensor: name) }
            return value
        }

        // dtype
        let dtypeValue = try field("dtype")
        guard let dtypeName = dtypeValue as? String else {
            throw failure(
                .wrongFieldType(
                    field: "dtype", expected: "a string",
                    found: SafeTensorsJSON.describe(dtypeValue)),
                tensor: name)
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw failure(.unknownDType(dtypeName), tensor: name)
        }

        // shape
        let shapeValue = try field("shape")
        guard let shapeArray = shapeValue as? [Any] else {
            throw failure(
                .wrongFieldType(
                    field: "shape", expected: "an array of integers",
                    found: SafeTensorsJSON.describe(shapeValue)),
                tensor: name)
        }
        var shape: [Int] = []
        shape.reserveCapacity(shapeArray.count)
        for (index, element) in shapeArray.enumerated() {
            guard let dimension = SafeTensorsJSON.integer(element),
                (0...SafeTensorsJSON.maximumInteger).contains(dimension)
            else {
                throw failure(
                    .invalidDimension(index: index, found: SafeTensorsJSON.describe(element)),
                    tensor: name)
            }
            shape.append(dimension)
        }
        guard let byteCount = SafeTensorsDType.byteCount(shape: shape, dtype: dtype) else {
            throw failure(.elementCountOverflow(shape: shape, dtype: dtype), tensor: name)
        }

        // data_offsets
        let offsetsValue = try field("data_offsets")
        guard let offsets = offsetsValue as? [Any], offsets.count == 2,
            let begin = SafeTensorsJSON.integer(offsets[0]),
            let end = SafeTensorsJSON.integer(offsets[1]),
            (0...SafeTensorsJSON.maximumInteger).contains(begin),
            (0...SafeTensorsJSON.maximumInteger).contains(end)
        else {
            throw failure(
                .invalidDataOffsets(found: SafeTensorsJSON.describe(offsetsValue)), tensor: name)
        }
        guard begin <= end else {
            throw failure(.dataOffsetsReversed(begin: begin, end: end), tensor: name)
        }
        guard end <= bufferSize else {
            throw failure(
                .dataOffsetsBeyondBuffer(begin: begin, end: end, bufferSize: bufferSize),
                tensor: name)
        }
        guard end - begin == byteCount else {
            throw failure(
                .dataOffsetsMismatch(begin: begin, end: end, shape: shape, dtype: dtype),
                tensor: name)
        }
        return Entry(
            name: name, dtype: dtype, shape: shape, begin: begin, end: end, headerPosition: 0)
    }
}
