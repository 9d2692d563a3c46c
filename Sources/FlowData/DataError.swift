#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong while reading, writing or generating data.
///
/// Every case carries what a person needs to find the problem: the file, the place in it
/// (CSV: 1-based line and 1-based column; NPY: 0-based row and column, as numpy indexes them),
/// and what was expected versus what was found. ``description`` turns that into one sentence
/// that names the file, the place and the reason, for example
///
///     data.csv line 7, column 3: "abc" is not a number
///
/// Every message is listed with an example in `docs/data.md`.
public enum DataError: Error, CustomStringConvertible, Equatable, Sendable {
    /// Where in a file a value sits.
    public enum Location: Equatable, Sendable {
        /// A CSV field: 1-based line number and 1-based column number.
        case csv(line: Int, column: Int)
        /// An NPY element: 0-based row and 0-based column, as numpy indexes the array.
        case npy(row: Int, column: Int)
    }

    // MARK: CSV

    /// A CSV field is not a decimal number (the whole trimmed field must be one).
    case nonNumericField(file: String, line: Int, column: Int, text: String)
    /// A value is NaN or ±infinity (or overflows to infinity) while non-finite values are
    /// rejected. `text` is the field as written (CSV) or the value printed by Swift (NPY).
    case nonFiniteValue(file: String, location: Location, text: String)
    /// A CSV line has a different number of fields than the first line of the file.
    case raggedRow(file: String, line: Int, expected: Int, found: Int)
    /// An empty (or all-space) line followed by more data; only trailing empty lines are
    /// allowed.
    case emptyLine(file: String, line: Int)
    /// The file holds no data: it is empty or contains only empty lines.
    case emptyFile(file: String)
    /// A single CSV line is longer than the reader accepts (`limit` bytes) — most likely the
    /// file is not a text file.
    case lineTooLong(file: String, line: Int, limit: Int)
    /// A CSV reader was asked to resume at a byte offset that is not the start of a data line.
    case badResumeOffset(file: String, offset: Int)

    // MARK: NPY

    /// The file does not start with the NPY magic string `\x93NUMPY`.
    case npyBadMagic(file: String, found: [UInt8])
    /// The NPY format version is not 1.0, 2.0 or 3.0.
    case npyUnsupportedVersion(file: String, major: Int, minor: Int)
    /// The array's dtype is not little-endian float32 or float64 (`descr` as written).
    case npyUnsupportedDtype(file: String, descr: String)
    /// The array is not two-dimensional (`shape` as written in the header).
    case npyNotTwoDimensional(file: String, shape: [Int])
    /// The array is stored in Fortran (column-major) order.
    case npyFortranOrder(file: String)
    /// The file is shorter than its header says: `expectedBytes` = header + rows·columns·itemsize.
    case npyTruncated(file: String, expectedBytes: Int, fileBytes: Int)
    /// The file is longer than its header says: extra bytes follow the array data.
    case npyTrailingBytes(file: String, expectedBytes: Int, fileBytes: Int)
    /// The header dictionary is malformed; `reason` says what is wrong.
    case npyBadHeader(file: String, reason: String)

    // MARK: Files in general

    /// A system call failed. `operation` names it (`open`, `read`, `mmap`, `rename`, …).
    case ioError(file: String, operation: String, errno: Int32)
    /// A file name's extension does not say which format to use (`.npy`, `.csv`, `.tsv`).
    case unsupportedExtension(file: String)
    /// Data of the wrong width was handed to a writer, or a header of the wrong length.
    case columnCountMismatch(file: String, expected: Int, found: Int)
    /// A CSV column name cannot be written (it contains a line break).
    case invalidColumnName(file: String, name: String)

    // MARK: Datasets, splits and plans

    /// The name is not one of the built-in datasets.
    case unknownDataset(name: String)
    /// A built-in dataset's parameter is out of range (for example `mixture:1`).
    case badDatasetParameter(name: String, reason: String)
    /// A train/validation split cannot be made with these arguments.
    case badSplit(rows: Int, validationFraction: Double, reason: String)
    /// A batch plan cannot be made with these arguments.
    case badBatchPlan(reason: String)

    /// One sentence naming the file (or object), the place and the reason.
    public var description: String {
        switch self {
        case let .nonNumericField(file, line, column, text):
            if text.isEmpty {
                return "\(file) line \(line), column \(column): empty field is not a number"
            }
            return "\(file) line \(line), column \(column): \(Self.quoted(text)) is not a number"
        case let .nonFiniteValue(file, location, text):
            switch location {
            case let .csv(line, column):
                return "\(file) line \(line), column \(column): \(Self.quoted(text)) is not finite"
                    + " (NaN and infinity are rejected)"
            case let .npy(row, column):
                return "\(file) row \(row), column \(column) (0-based): \(text) is not finite"
                    + " (NaN and infinity are rejected)"
            }
        case let .raggedRow(file, line, expected, found):
            return "\(file) line \(line): expected \(expected) \(Self.plural(expected, "field")),"
                + " found \(found)"
        case let .emptyLine(file, line):
            return "\(file) line \(line): empty line inside the data"
                + " (only trailing empty lines are allowed)"
        case let .emptyFile(file):
            return "\(file): the file contains no data"
        case let .lineTooLong(file, line, limit):
            return "\(file) line \(line): line is longer than \(limit) bytes (is this a text file?)"
        case let .badResumeOffset(file, offset):
            return "\(file): byte offset \(offset) is not the start of a data line"
        case let .npyBadMagic(file, found):
            let hex = found.map { byte in
                let digits = String(byte, radix: 16)
                return digits.count == 1 ? "0" + digits : digits
            }.joined(separator: " ")
            return "\(file): not an NPY file (expected magic bytes 93 4e 55 4d 50 59"
                + " \"\\x93NUMPY\", found \(hex.isEmpty ? "nothing" : hex))"
        case let .npyUnsupportedVersion(file, major, minor):
            return "\(file): NPY format version \(major).\(minor) is not supported"
                + " (supported: 1.0, 2.0, 3.0)"
        case let .npyUnsupportedDtype(file, descr):
            return "\(file): NPY dtype \(Self.quoted(descr)) is not supported"
                + " (supported: '<f4' float32 and '<f8' float64, little-endian)"
        case let .npyNotTwoDimensional(file, shape):
            let tuple = shape.count == 1
                ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
            return "\(file): NPY array has shape \(tuple); a two-dimensional array"
                + " (rows, columns) is required"
        case let .npyFortranOrder(file):
            return "\(file): NPY array is in Fortran (column-major) order; only C order is"
                + " supported (save np.ascontiguousarray(a))"
        case let .npyTruncated(file, expectedBytes, fileBytes):
            return "\(file): NPY file is truncated: header and shape need \(expectedBytes) bytes,"
                + " the file has \(fileBytes)"
        case let .npyTrailingBytes(file, expectedBytes, fileBytes):
            return "\(file): NPY file has \(fileBytes - expectedBytes) unexpected trailing bytes:"
                + " header and shape need \(expectedBytes) bytes, the file has \(fileBytes)"
        case let .npyBadHeader(file, reason):
            return "\(file): malformed NPY header: \(reason)"
        case let .ioError(file, operation, errno):
            return "\(file): \(operation) failed: \(Self.systemMessage(errno)) (errno \(errno))"
        case let .unsupportedExtension(file):
            return "\(file): cannot tell the format from the file name"
                + " (use .npy, .csv or .tsv)"
        case let .columnCountMismatch(file, expected, found):
            return "\(file): expected \(expected) \(Self.plural(expected, "column")), got \(found)"
        case let .invalidColumnName(file, name):
            return "\(file): column name \(Self.quoted(name)) contains a line break"
        case let .unknownDataset(name):
            return "unknown dataset \(Self.quoted(name))"
                + " (built-in: moons, 8gaussians, checkerboard, rings, mixture:D)"
        case let .badDatasetParameter(name, reason):
            return "dataset \(Self.quoted(name)): \(reason)"
        case let .badSplit(rows, fraction, reason):
            return "cannot split \(rows) rows with validation fraction \(fraction): \(reason)"
        case let .badBatchPlan(reason):
            return "invalid batch plan: \(reason)"
        }
    }

    /// `text` in double quotes, shortened to 60 characters, with control characters escaped,
    /// so a binary file cannot flood or garble the message.
    static func quoted(_ text: String) -> String {
        var shown = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == 60 {
                shown += "…"
                break
            }
            switch scalar {
            case "\"": shown += "\\\""
            case "\\": shown += "\\\\"
            case "\t": shown += "\\t"
            case "\r": shown += "\\r"
            case "\n": shown += "\\n"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    shown += "\\u{" + String(scalar.value, radix: 16) + "}"
                } else {
                    shown.unicodeScalars.append(scalar)
                }
            }
            count += 1
        }
        return "\"" + shown + "\""
    }

    private static func plural(_ n: Int, _ word: String) -> String {
        n == 1 ? word : word + "s"
    }

    private static func systemMessage(_ code: Int32) -> String {
        guard let message = strerror(code) else { return "unknown error" }
        return String(cString: message)
    }
}
