/// The parsed preamble of an NPY file (format versions 1.0, 2.0 and 3.0) and its encoder.
///
/// Layout: the magic string `\x93NUMPY`, one byte each for the major and minor version, the
/// header length as a little-endian `UInt16` (version 1) or `UInt32` (versions 2 and 3), and
/// the header: a Python dictionary literal with exactly the keys `'descr'`, `'fortran_order'`
/// and `'shape'`, padded with spaces and ended by `\n`. The array's bytes follow.
struct NPYHeader: Equatable {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    var dtype: DataType
    var rows: Int
    var columns: Int
    /// Byte offset of the first element.
    var dataOffset: Int

    /// Number of bytes the whole file must have.
    var expectedFileSize: Int {
        dataOffset + rows * columns * dtype.itemSize
    }

    /// Parses and validates the preamble in `bytes` (the start of the file, or all of it).
    ///
    /// The checks, in order: magic, version, header length, dictionary syntax and keys, dtype,
    /// Fortran order, dimensionality, and finally the file size against the shape.
    static func parse(_ bytes: UnsafeRawBufferPointer, fileSize: Int, path: String) throws(DataError) -> NPYHeader {
        guard bytes.count >= 6, bytes.prefix(6).elementsEqual(magic) else {
            throw DataError.npyBadMagic(file: path, found: Array(bytes.prefix(6)))
        }
        guard bytes.count >= 8 else {
            throw DataError.npyTruncated(file: path, expectedBytes: 10, fileBytes: fileSize)
        }
        let major = Int(bytes[6])
        let minor = Int(bytes[7])
        guard (1...3).contains(major), minor == 0 else {
            throw DataError.npyUnsupportedVersion(file: path, major: major, minor: minor)
        }
        let lengthSize = major == 1 ? 2 : 4
        let prefix = 8 + lengthSize
        guard bytes.count >= prefix else {
            throw DataError.npyTruncated(file: path, expectedBytes: prefix, fileBytes: fileSize)
        }
        var headerLength = 0
        for k in 0..<lengthSize {
            headerLength |= Int(bytes[8 + k]) << (8 * k)
        }
        guard bytes.count >= prefix + headerLength else {
            throw DataError.npyTruncated(file: path, expectedBytes: prefix + headerLength, fileBytes: fileSize)
        }
        let text = Array(bytes[prefix..<(prefix + headerLength)])
        let dictionary: [String: PythonLiteral.Value]
        do throws(PythonLiteral.Failure) {
            dictionary = try PythonLiteral.parseHeaderDictionary(text)
        } catch {
            throw DataError.npyBadHeader(file: path, reason: error.reason)
        }

        // Keys: exactly descr, fortran_order, shape.
        for key in dictionary.keys.sorted() where !["descr", "fortran_order", "shape"].contains(key) {
            throw DataError.npyBadHeader(file: path, reason: "unexpected key '\(key)'")
        }
        for key in ["descr", "fortran_order", "shape"] where dictionary[key] == nil {
            throw DataError.npyBadHeader(file: path, reason: "missing key '\(key)'")
        }

        let descr = dictionary["descr"]!
        guard case let .string(descrText) = descr.kind, let dtype = Self.dataType(descr: descrText) else {
            throw DataError.npyUnsupportedDtype(file: path, descr: descr.kind.isString ? descr.stringValue! : descr.source)
        }
        let fortran = dictionary["fortran_order"]!
        guard case let .bool(isFortran) = fortran.kind else {
            throw DataError.npyBadHeader(file: path, reason: "'fortran_order' must be True or False, found \(fortran.source)")
        }
        let shapeValue = dictionary["shape"]!
        guard case let .tuple(items) = shapeValue.kind else {
            throw DataError.npyBadHeader(file: path, reason: "'shape' must be a tuple of integers, found \(shapeValue.source)")
        }
        var shape: [Int] = []
        for item in items {
            guard case let .integer(n) = item.kind, n >= 0 else {
                throw DataError.npyBadHeader(
                    file: path, reason: "'shape' must hold non-negative integers, found \(item.source)")
            }
            shape.append(n)
        }
        if isFortran {
            throw DataError.npyFortranOrder(file: path)
        }
        guard shape.count == 2 else {
            throw DataError.npyNotTwoDimensional(file: path, shape: shape)
        }
        let (elements, overflow1) = shape[0].multipliedReportingOverflow(by: shape[1])
        let (dataBytes, overflow2) = elements.multipliedReportingOverflow(by: dtype.itemSize)
        let (total, overflow3) = dataBytes.addingReportingOverflow(prefix + headerLength)
        if overflow1 || overflow2 || overflow3 {
            throw DataError.npyBadHeader(file: path, reason: "shape (\(shape[0]), \(shape[1])) is too large")
        }
        if fileSize < total {
            throw DataError.npyTruncated(file: path, expectedBytes: total, fileBytes: fileSize)
        }
        if fileSize > total {
            throw DataError.npyTrailingBytes(file: path, expectedBytes: total, fileBytes: fileSize)
        }
        return NPYHeader(dtype: dtype, rows: shape[0], columns: shape[1], dataOffset: prefix + headerLength)
    }

    /// The dtype for a `descr` string: `<f4`/`<f8`, and the native-order spellings `f4`,
    /// `f8`, `=f4`, `=f8` (little-endian on every platform Tributary supports); nil otherwise.
    static func dataType(descr: String) -> DataType? {
        switch descr {
        case "<f4", "f4", "=f4": .float32
        case "<f8", "f8", "=f8": .float64
        default: nil
        }
    }

    /// A version 1.0 preamble for a C-order array, byte for byte as `numpy.save` writes it:
    /// the dictionary, room for a 21-digit row count (numpy's `GROWTH_AXIS_MAX_DIGITS`), space
    /// padding so that the preamble's length is a multiple of 64, and `\n`. Its length does
    /// not depend on the row count, so the count can be patched in place when a stream ends.
    static func encode(dtype: DataType, rows: Int, columns: Int) -> [UInt8] {
        func dictionary(_ rows: String) -> String {
            "{'descr': '\(dtype.npyDescr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }"
        }
        let widest = dictionary("").utf8.count + 21
        let total = (10 + widest + 1 + 63) / 64 * 64
        let text = dictionary(String(rows))
        var bytes = magic + [1, 0]
        let headerLength = total - 10
        bytes.append(UInt8(headerLength & 0xFF))
        bytes.append(UInt8(headerLength >> 8))
        bytes.append(contentsOf: text.utf8)
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: total - bytes.count - 1))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}
