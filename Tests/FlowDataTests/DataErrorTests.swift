import Testing
@testable import FlowData

/// Every message of `DataError`, exactly as `docs/data.md` lists it.
struct DataErrorTests {
    @Test(arguments: [
        (DataError.nonNumericField(file: "data.csv", line: 7, column: 3, text: "abc"),
         "data.csv line 7, column 3: \"abc\" is not a number"),
        (DataError.nonNumericField(file: "data.csv", line: 2, column: 1, text: ""),
         "data.csv line 2, column 1: empty field is not a number"),
        (DataError.nonFiniteValue(file: "data.csv", location: .csv(line: 4, column: 2), text: "nan"),
         "data.csv line 4, column 2: \"nan\" is not finite (NaN and infinity are rejected)"),
        (DataError.nonFiniteValue(file: "x.npy", location: .npy(row: 12, column: 0), text: "inf"),
         "x.npy row 12, column 0 (0-based): inf is not finite (NaN and infinity are rejected)"),
        (DataError.raggedRow(file: "data.csv", line: 5, expected: 3, found: 2),
         "data.csv line 5: expected 3 fields, found 2"),
        (DataError.raggedRow(file: "data.csv", line: 5, expected: 1, found: 2),
         "data.csv line 5: expected 1 field, found 2"),
        (DataError.emptyLine(file: "data.csv", line: 9),
         "data.csv line 9: empty line inside the data (only trailing empty lines are allowed)"),
        (DataError.emptyFile(file: "data.csv"), "data.csv: the file contains no data"),
        (DataError.lineTooLong(file: "blob.csv", line: 1, limit: 67_108_864),
         "blob.csv line 1: line is longer than 67108864 bytes (is this a text file?)"),
        (DataError.badResumeOffset(file: "data.csv", offset: 17),
         "data.csv: byte offset 17 is not the start of a data line"),
        (DataError.npyBadMagic(file: "x.npy", found: [0x50, 0x4B, 0x03, 0x04]),
         "x.npy: not an NPY file (expected magic bytes 93 4e 55 4d 50 59 \"\\x93NUMPY\", found 50 4b 03 04)"),
        (DataError.npyBadMagic(file: "x.npy", found: []),
         "x.npy: not an NPY file (expected magic bytes 93 4e 55 4d 50 59 \"\\x93NUMPY\", found nothing)"),
        (DataError.npyUnsupportedVersion(file: "x.npy", major: 4, minor: 0),
         "x.npy: NPY format version 4.0 is not supported (supported: 1.0, 2.0, 3.0)"),
        (DataError.npyUnsupportedDtype(file: "x.npy", descr: ">f4"),
         "x.npy: NPY dtype \">f4\" is not supported (supported: '<f4' float32 and '<f8' float64, little-endian)"),
        (DataError.npyNotTwoDimensional(file: "x.npy", shape: [5]),
         "x.npy: NPY array has shape (5,); a two-dimensional array (rows, columns) is required"),
        (DataError.npyNotTwoDimensional(file: "x.npy", shape: [2, 3, 4]),
         "x.npy: NPY array has shape (2, 3, 4); a two-dimensional array (rows, columns) is required"),
        (DataError.npyFortranOrder(file: "x.npy"),
         "x.npy: NPY array is in Fortran (column-major) order; only C order is supported (save np.ascontiguousarray(a))"),
        (DataError.npyTruncated(file: "x.npy", expectedBytes: 176, fileBytes: 170),
         "x.npy: NPY file is truncated: header and shape need 176 bytes, the file has 170"),
        (DataError.npyTrailingBytes(file: "x.npy", expectedBytes: 176, fileBytes: 180),
         "x.npy: NPY file has 4 unexpected trailing bytes: header and shape need 176 bytes, the file has 180"),
        (DataError.npyBadHeader(file: "x.npy", reason: "missing key 'shape'"),
         "x.npy: malformed NPY header: missing key 'shape'"),
        (DataError.ioError(file: "missing.csv", operation: "open", errno: 2),
         "missing.csv: open failed: No such file or directory (errno 2)"),
        (DataError.unsupportedExtension(file: "out.parquet"),
         "out.parquet: cannot tell the format from the file name (use .npy, .csv or .tsv)"),
        (DataError.columnCountMismatch(file: "out.npy", expected: 2, found: 3),
         "out.npy: expected 2 columns, got 3"),
        (DataError.invalidColumnName(file: "out.csv", name: "a\nb"),
         "out.csv: column name \"a\\nb\" contains a line break"),
        (DataError.unknownDataset(name: "swissroll"),
         "unknown dataset \"swissroll\" (built-in: moons, 8gaussians, checkerboard, rings, mixture:D)"),
        (DataError.badDatasetParameter(name: "mixture:1", reason: "the dimension must be between 2 and 4096, got 1"),
         "dataset \"mixture:1\": the dimension must be between 2 and 4096, got 1"),
        (DataError.badSplit(rows: 10, validationFraction: 1.5, reason: "the validation fraction must be in [0, 1)"),
         "cannot split 10 rows with validation fraction 1.5: the validation fraction must be in [0, 1)"),
        (DataError.badBatchPlan(reason: "there are no training rows"),
         "invalid batch plan: there are no training rows"),
    ])
    func message(error: DataError, expected: String) {
        #expect(error.description == expected)
    }

    @Test func quotingEscapesControlCharactersAndShortensLongText() {
        #expect(DataError.quoted("a\"b\\c\td\u{1}") == "\"a\\\"b\\\\c\\td\\u{1}\"")
        let long = String(repeating: "x", count: 100)
        #expect(DataError.quoted(long) == "\"" + String(repeating: "x", count: 60) + "…\"")
    }
}
