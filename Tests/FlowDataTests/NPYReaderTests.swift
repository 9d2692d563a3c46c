import Foundation
import Testing
@testable import FlowData

/// An NPY file laid out exactly as numpy's `write_array` lays it out: magic, version, header
/// length (2 bytes for 1.0, 4 bytes for 2.0/3.0), the dictionary, numpy's growth padding of
/// `21 − digits(rows)` spaces, spaces up to a multiple of 64, `\n`, then the data.
func numpyStyleFile(
    version: UInt8 = 1, dictionary: String, growthPadding: Int = 0, payload: [UInt8]
) -> [UInt8] {
    let lengthSize = version == 1 ? 2 : 4
    let text = dictionary + String(repeating: " ", count: growthPadding)
    let unpadded = 8 + lengthSize + text.utf8.count + 1
    let total = (unpadded + 63) / 64 * 64
    let headerLength = total - 8 - lengthSize
    var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, version, 0]
    for k in 0..<lengthSize { bytes.append(UInt8((headerLength >> (8 * k)) & 0xFF)) }
    bytes += Array(text.utf8)
    bytes += Array(repeating: UInt8(ascii: " "), count: total - bytes.count - 1)
    bytes.append(UInt8(ascii: "\n"))
    return bytes + payload
}

func littleEndianBytes(_ values: [Double], dtype: DataType) -> [UInt8] {
    var bytes: [UInt8] = []
    for v in values {
        switch dtype {
        case .float32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 }
        case .float64: withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes += $0 }
        }
    }
    return bytes
}

struct NPYReaderTests {
    static let values: [Double] = [0, 1, 2, 3, 4, 5.5]

    static func standard(_ dtype: DataType = .float64, version: UInt8 = 1, rows: Int = 3, columns: Int = 2,
                         values: [Double] = values) -> [UInt8] {
        numpyStyleFile(
            version: version,
            dictionary: "{'descr': '\(dtype.npyDescr)', 'fortran_order': False, 'shape': (\(rows), \(columns)), }",
            growthPadding: 21 - String(rows).count,
            payload: littleEndianBytes(values, dtype: dtype))
    }

    @Test func handCraftedFileMatchesNumpyBytes() throws {
        // The first 16 bytes numpy 2.x writes for np.save of a (3, 2) float64 array.
        let bytes = Self.standard()
        #expect(bytes.count == 128 + 48)
        #expect(Array(bytes[0..<10]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, 0x76, 0])
        #expect(bytes[127] == UInt8(ascii: "\n"))
    }

    @Test(arguments: [UInt8(1), 2, 3], [DataType.float32, .float64])
    func readsVersionsAndDtypes(version: UInt8, dtype: DataType) throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.npy", bytes: Self.standard(dtype, version: version))
        let reader = try NPYReader(path: path)
        #expect(reader.rows == 3 && reader.columns == 2 && reader.dtype == dtype)
        #expect(reader.dataOffset == 128)
        #expect(try reader.read(rows: 0..<3) == Table(rows: 3, columns: 2, values: Self.values))
        #expect(try reader.read(rows: 1..<2).values == [2, 3])
        #expect(try reader.read(rows: 3..<3).rows == 0)
    }

    @Test func float32ValuesConvertExactly() throws {
        let dir = TemporaryDirectory()
        let values = [0.1, -1e-30, 3.4e38, 1.0 / 3.0, 7, 8]
        let path = dir.write("f.npy", bytes: Self.standard(.float32, values: values))
        let table = try NPYReader.readAll(path: path)
        #expect(table.values == values.map { Double(Float($0)) })
    }

    @Test(arguments: [
        "{'descr': 'f8', 'fortran_order': False, 'shape': (3, 2)}",
        "{'descr': '=f8', 'fortran_order': False, 'shape': (3, 2), }",
        "{\"shape\": (3,2), \"fortran_order\": False, \"descr\": \"<f8\"}",
        "  { 'descr' : '<f8' ,\n 'fortran_order' : False , 'shape' : ( 3 , 2 , ) }",
    ])
    func acceptsEquivalentHeaderSpellings(dictionary: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.write("a.npy", bytes: numpyStyleFile(dictionary: dictionary,
                                                             payload: littleEndianBytes(Self.values, dtype: .float64)))
        #expect(try NPYReader.readAll(path: path).values == Self.values)
    }

    @Test func emptyArrays() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("e.npy", bytes: Self.standard(rows: 0, columns: 4, values: []))
        let table = try NPYReader.readAll(path: path)
        #expect(table.rows == 0 && table.columns == 4)
    }

    // MARK: Errors

    func error(for bytes: [UInt8], nonFinite: NonFinitePolicy = .reject) -> (DataError?, String) {
        let dir = TemporaryDirectory()
        let path = dir.write("bad.npy", bytes: bytes)
        let error = #expect(throws: DataError.self) { _ = try NPYReader.readAll(path: path, nonFinite: nonFinite) }
        return (error, path)
    }

    @Test func badMagic() {
        let (e, path) = error(for: [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00, 0x00])
        #expect(e == .npyBadMagic(file: path, found: [0x50, 0x4B, 0x03, 0x04, 0x14, 0x00]))
        #expect(e?.description == "\(path): not an NPY file (expected magic bytes 93 4e 55 4d 50 59 \"\\x93NUMPY\", found 50 4b 03 04 14 00)")
        let (empty, emptyPath) = error(for: [])
        #expect(empty == .npyBadMagic(file: emptyPath, found: []))
    }

    @Test(arguments: [(UInt8(4), UInt8(0)), (1, 1), (0, 9)])
    func unsupportedVersion(major: UInt8, minor: UInt8) {
        var bytes = Self.standard()
        bytes[6] = major
        bytes[7] = minor
        let (e, path) = error(for: bytes)
        #expect(e == .npyUnsupportedVersion(file: path, major: Int(major), minor: Int(minor)))
        #expect(e?.description == "\(path): NPY format version \(major).\(minor) is not supported (supported: 1.0, 2.0, 3.0)")
    }

    @Test(arguments: [
        ("'<i4'", "<i4"), ("'>f4'", ">f4"), ("'>f8'", ">f8"), ("'|O'", "|O"), ("'<f2'", "<f2"),
        ("'float64'", "float64"), ("[('x', '<f8'), ('y', '<f8')]", "[('x', '<f8'), ('y', '<f8')]"),
    ])
    func unsupportedDtype(literal: String, descr: String) {
        let bytes = numpyStyleFile(dictionary: "{'descr': \(literal), 'fortran_order': False, 'shape': (3, 2), }",
                                   payload: littleEndianBytes(Self.values, dtype: .float64))
        let (e, path) = error(for: bytes)
        #expect(e == .npyUnsupportedDtype(file: path, descr: descr))
        #expect(e?.description.hasPrefix("\(path): NPY dtype \"\(descr)\" is not supported") == true)
    }

    @Test(arguments: [("(6,)", [6]), ("()", []), ("(1, 3, 2)", [1, 3, 2])])
    func notTwoDimensional(shape: String, dims: [Int]) {
        let bytes = numpyStyleFile(dictionary: "{'descr': '<f8', 'fortran_order': False, 'shape': \(shape), }",
                                   payload: littleEndianBytes(dims.isEmpty ? [1] : Self.values, dtype: .float64))
        let (e, path) = error(for: bytes)
        #expect(e == .npyNotTwoDimensional(file: path, shape: dims))
        if dims == [6] {
            #expect(e?.description == "\(path): NPY array has shape (6,); a two-dimensional array (rows, columns) is required")
        }
    }

    @Test func fortranOrder() {
        let bytes = numpyStyleFile(dictionary: "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 2), }",
                                   payload: littleEndianBytes(Self.values, dtype: .float64))
        let (e, path) = error(for: bytes)
        #expect(e == .npyFortranOrder(file: path))
        #expect(e?.description == "\(path): NPY array is in Fortran (column-major) order; only C order is supported (save np.ascontiguousarray(a))")
    }

    @Test func truncatedAndTrailingBytes() {
        let full = Self.standard()
        let (short, path) = error(for: Array(full.dropLast(5)))
        #expect(short == .npyTruncated(file: path, expectedBytes: 176, fileBytes: 171))
        #expect(short?.description == "\(path): NPY file is truncated: header and shape need 176 bytes, the file has 171")
        let (insideHeader, path2) = error(for: Array(full.prefix(40)))
        #expect(insideHeader == .npyTruncated(file: path2, expectedBytes: 128, fileBytes: 40))
        let (long, path3) = error(for: full + [0, 0, 0])
        #expect(long == .npyTrailingBytes(file: path3, expectedBytes: 176, fileBytes: 179))
        #expect(long?.description == "\(path3): NPY file has 3 unexpected trailing bytes: header and shape need 176 bytes, the file has 179")
    }

    @Test(arguments: [
        ("{'descr': '<f8', 'fortran_order': False}", "missing key 'shape'"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'extra': 1}", "unexpected key 'extra'"),
        ("{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}", "duplicate key 'descr'"),
        ("['descr', '<f8']", "the header does not start with '{' (found \"['descr', '<f8']\")"),
        ("", "the header is empty"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': [3, 2]}", "'shape' must be a tuple of integers, found [3, 2]"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, -2)}", "'shape' must hold non-negative integers, found -2"),
        ("{'descr': '<f8', 'fortran_order': 0, 'shape': (3, 2)}", "'fortran_order' must be True or False, found 0"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3.0, 2)}", "only decimal integers are allowed, found \".0, 2)}\""),
        ("{'descr': '<f8, 'fortran_order': False, 'shape': (3, 2)}", "expected ',' or '}' in the dictionary, found \"fortran_order': Fals…\""),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)} x", "unexpected text after the dictionary: \"x\""),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999, 2)}", "integer 99999999999999999999 is too large"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (9223372036854775807, 2)}", "shape (9223372036854775807, 2) is too large"),
        ("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)", "expected ',' or '}' in the dictionary, found the end of the header"),
        ("{descr: '<f8'}", "unsupported value \"descr: '<f8'}\""),
    ])
    func badHeader(dictionary: String, reason: String) {
        let bytes = numpyStyleFile(dictionary: dictionary, payload: littleEndianBytes(Self.values, dtype: .float64))
        let (e, path) = error(for: bytes)
        #expect(e == .npyBadHeader(file: path, reason: reason))
        #expect(e?.description == "\(path): malformed NPY header: \(reason)")
    }

    @Test func nonFiniteValuesNameRowAndColumn() throws {
        let values: [Double] = [0, 1, 2, .infinity, 4, .nan]
        for dtype in DataType.allCases {
            let bytes = Self.standard(dtype, values: values)
            let (e, path) = error(for: bytes)
            #expect(e == .nonFiniteValue(file: path, location: .npy(row: 1, column: 1), text: "inf"))
            #expect(e?.description == "\(path) row 1, column 1 (0-based): inf is not finite (NaN and infinity are rejected)")
            let dir = TemporaryDirectory()
            let ok = dir.write("ok.npy", bytes: bytes)
            let table = try NPYReader.readAll(path: ok, nonFinite: .allow)
            #expect(table[1, 1] == .infinity && table[2, 1].isNaN)
            // Rows without non-finite values read fine under .reject.
            #expect(try NPYReader(path: ok).read(rows: 0..<1).values == [0, 1])
        }
    }

    @Test func missingFile() {
        let error = #expect(throws: DataError.self) { _ = try NPYReader(path: "/nonexistent/x.npy") }
        #expect(error == .ioError(file: "/nonexistent/x.npy", operation: "open", errno: ENOENT))
    }

    // MARK: numpy itself

    @Test(.enabled(if: numpyAvailable, "python3 with numpy is not installed; numpy fixtures skipped"))
    func readsFilesWrittenByNumpy() throws {
        let dir = TemporaryDirectory()
        let program = """
            import numpy as np
            a = (np.arange(35, dtype=np.float64).reshape(7, 5) - 17) / 3
            np.save('\(dir.file("f8.npy"))', a)
            np.save('\(dir.file("f4.npy"))', a.astype(np.float32))
            np.lib.format.write_array(open('\(dir.file("v2.npy"))', 'wb'), a, version=(2, 0))
            np.lib.format.write_array(open('\(dir.file("v3.npy"))', 'wb'), a, version=(3, 0))
            np.save('\(dir.file("fortran.npy"))', np.asfortranarray(a))
            np.save('\(dir.file("int.npy"))', np.arange(6, dtype='<i4').reshape(3, 2))
            np.save('\(dir.file("big.npy"))', a.astype('>f4'))
            np.save('\(dir.file("one.npy"))', np.arange(4.0))
            """
        #expect(try runPython(program) == 0)
        let expected = (0..<35).map { (Double($0) - 17) / 3 }
        for name in ["f8.npy", "v2.npy", "v3.npy"] {
            #expect(try NPYReader.readAll(path: dir.file(name)).values == expected, "\(name)")
        }
        #expect(try NPYReader.readAll(path: dir.file("f4.npy")).values == expected.map { Double(Float($0)) })
        #expect(throws: DataError.npyFortranOrder(file: dir.file("fortran.npy"))) {
            _ = try NPYReader(path: dir.file("fortran.npy"))
        }
        #expect(throws: DataError.npyUnsupportedDtype(file: dir.file("int.npy"), descr: "<i4")) {
            _ = try NPYReader(path: dir.file("int.npy"))
        }
        #expect(throws: DataError.npyUnsupportedDtype(file: dir.file("big.npy"), descr: ">f4")) {
            _ = try NPYReader(path: dir.file("big.npy"))
        }
        #expect(throws: DataError.npyNotTwoDimensional(file: dir.file("one.npy"), shape: [4])) {
            _ = try NPYReader(path: dir.file("one.npy"))
        }
        // numpy's own bytes equal the hand-crafted layout used by the other tests.
        let handMade = numpyStyleFile(
            dictionary: "{'descr': '<f8', 'fortran_order': False, 'shape': (7, 5), }",
            growthPadding: 20, payload: littleEndianBytes(expected, dtype: .float64))
        #expect(contents(of: dir.file("f8.npy")) == handMade)
    }
}
