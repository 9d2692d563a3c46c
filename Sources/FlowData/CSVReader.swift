/// A streaming reader of numeric CSV/TSV files: it reads the file in 1 MiB blocks and hands
/// out tables of at most `maxRows` rows, so files larger than memory can be processed.
///
/// The rules (see `docs/data.md`):
/// - Lines end in `\n` or `\r\n`; the last line may lack its line break. A UTF-8 byte-order
///   mark at the start of the file is skipped.
/// - The delimiter is a comma or a tab (`.auto`: tab if the first line contains a tab outside
///   double quotes).
/// - The first line is a header if `header` is `.present`, or if it is `.auto` and any field of
///   the first line is not a number. Header names may be quoted with `"` (with `""` for a
///   quote inside); data fields may not.
/// - Every line must have as many fields as the first line. Spaces around a field (and tabs,
///   in a comma-separated file) are ignored; the rest must be one decimal number in full
///   (`1`, `-0.5`, `1e3`, `.5`, `nan`, `inf`; not `0x1p3`, `1,5`, `"1"` or an empty field).
/// - NaN and ±infinity (including overflow such as `1e999`) are rejected unless
///   `nonFinite` is `.allow`.
/// - Empty (or all-space) lines at the end of the file are ignored; an empty line followed by
///   more data is an error (``DataError/emptyLine(file:line:)``).
///
/// With `onBadRow: .markNaN` a malformed line (non-numeric field, non-finite value under
/// `.reject`, wrong field count, empty line inside the data) does not stop reading: it becomes
/// a row of NaN of the file's width and is recorded in ``badRows``, so row order and row count
/// always match the file's data lines.
///
/// A thrown error ends reading: later calls rethrow it.
public final class CSVReader {
    /// Whether the first line is a header.
    public enum HeaderMode: Sendable, Equatable {
        /// A header if any field of the first line is not a number.
        case auto
        /// The first line is a header.
        case present
        /// The first line is data.
        case absent
    }

    /// What the reader does with a malformed data line.
    public enum BadRowPolicy: Sendable, Equatable {
        /// Throw the ``DataError`` (the default).
        case `throw`
        /// Deliver a row of NaN and record the line in ``CSVReader/badRows``.
        case markNaN
    }

    /// A data line that was replaced by a row of NaN under ``BadRowPolicy/markNaN``.
    public struct BadRow: Sendable, Equatable {
        /// 0-based index of the row among the file's data rows.
        public let row: Int
        /// 1-based line number in the file.
        public let line: Int
        /// What is wrong with the line.
        public let error: DataError

        /// Creates a record (the reader makes these; public for tests and callers' fixtures).
        public init(row: Int, line: Int, error: DataError) {
            self.row = row
            self.line = line
            self.error = error
        }
    }

    /// Longest line accepted, in bytes.
    public static let maximumLineLength = 64 << 20

    /// The file being read, as given.
    public let path: String
    /// The delimiter in use (`.comma` or `.tab`, never `.auto`).
    public let delimiter: CSVDelimiter
    /// Whether the first line was taken as a header.
    public let hasHeader: Bool
    /// Number of fields of every line (that of the first line).
    public let columns: Int
    /// The header's names (unquoted and trimmed), or nil without a header.
    public let columnNames: [String]?
    /// The policy for NaN and infinity.
    public let nonFinite: NonFinitePolicy
    /// The policy for malformed lines.
    public let onBadRow: BadRowPolicy

    /// Byte offset in the file of the next line to be read: after `init`, the first data line;
    /// after `nextChunk`, the start of the next chunk. Pass it (with ``lineNumber`` and
    /// ``rowIndex``) to ``init(path:header:delimiter:nonFinite:onBadRow:startingAt:firstLine:firstRow:)``
    /// to resume there.
    public var byteOffset: Int { lines.byteOffset }
    /// 1-based line number of the next line to be read.
    public private(set) var lineNumber: Int
    /// 0-based index (among data rows) of the next row to be delivered.
    public private(set) var rowIndex: Int
    /// Lines replaced by NaN rows so far under ``BadRowPolicy/markNaN`` (the caller may clear
    /// it between chunks).
    public var badRows: [BadRow] = []

    /// The file's bytes and lines (the reader's only raw buffer).
    private let lines: CSVLineBuffer
    private let separator: UInt8
    /// Whether a tab counts as a space around fields (in a comma-separated file).
    private let tabIsSpace: Bool
    private var finished = false
    private var failure: DataError?
    /// One parsed row, and the field boundaries of one line (columns + 1 entries).
    private var scratchRow: [Double]
    private var fieldStarts: [Int]

    /// Opens `path` and reads its first line to settle the delimiter, the header and the width.
    ///
    /// - Throws: ``DataError/ioError(file:operation:errno:)`` if the file cannot be opened or
    ///   read; ``DataError/emptyFile(file:)`` if it holds no non-empty line.
    public convenience init(
        path: String,
        header: HeaderMode = .auto,
        delimiter: CSVDelimiter = .auto,
        nonFinite: NonFinitePolicy = .reject,
        onBadRow: BadRowPolicy = .throw
    ) throws(DataError) {
        try self.init(
            path: path, header: header, delimiter: delimiter, nonFinite: nonFinite,
            onBadRow: onBadRow, resume: nil, lineLimit: Self.maximumLineLength)
    }

    /// Opens `path` like ``init(path:header:delimiter:nonFinite:onBadRow:)`` (the first line
    /// still decides delimiter, header and width) and then continues at `byteOffset`, a value
    /// of ``byteOffset`` recorded by an earlier reader of the same file with the same options.
    ///
    /// - Parameters:
    ///   - byteOffset: the start of a data line (or the end of the file).
    ///   - firstLine: the 1-based line number of that line (used in messages and ``badRows``).
    ///   - firstRow: the 0-based data-row index of that line (used in ``badRows``).
    /// - Throws: ``DataError/badResumeOffset(file:offset:)`` if `byteOffset` lies before the
    ///   data, beyond the end of the file, or not at the start of a line.
    public convenience init(
        path: String,
        header: HeaderMode = .auto,
        delimiter: CSVDelimiter = .auto,
        nonFinite: NonFinitePolicy = .reject,
        onBadRow: BadRowPolicy = .throw,
        startingAt byteOffset: Int,
        firstLine: Int,
        firstRow: Int = 0
    ) throws(DataError) {
        try self.init(
            path: path, header: header, delimiter: delimiter, nonFinite: nonFinite,
            onBadRow: onBadRow, resume: (byteOffset, firstLine, firstRow),
            lineLimit: Self.maximumLineLength)
    }

    /// For tests: a reader with a smaller line-length limit.
    convenience init(path: String, lineLimit: Int) throws(DataError) {
        try self.init(
            path: path, header: .auto, delimiter: .auto, nonFinite: .reject,
            onBadRow: .throw, resume: nil, lineLimit: lineLimit)
    }

    private init(
        path: String,
        header: HeaderMode,
        delimiter: CSVDelimiter,
        nonFinite: NonFinitePolicy,
        onBadRow: BadRowPolicy,
        resume: (offset: Int, line: Int, row: Int)?,
        lineLimit: Int
    ) throws(DataError) {
        self.path = path
        self.nonFinite = nonFinite
        self.onBadRow = onBadRow
        let lines = try CSVLineBuffer(path: path, lineLimit: lineLimit)
        self.lines = lines

        // The first line decides everything else.
        guard let line = try lines.nextLine(number: 1) else { throw DataError.emptyFile(file: path) }
        let analysis = lines.withBytes(of: line) {
            CSVFirstLine.analyse($0, delimiter: delimiter, header: header)
        }
        if analysis.isBlank {
            // A blank first line: the file is empty unless something else follows.
            if try lines.restIsBlank(after: line, tabIsBlank: analysis.delimiter != .tab) {
                throw DataError.emptyFile(file: path)
            }
            throw DataError.emptyLine(file: path, line: 1)
        }
        self.delimiter = analysis.delimiter
        separator = analysis.delimiter.byte!
        tabIsSpace = analysis.delimiter != .tab
        hasHeader = analysis.isHeader
        columns = analysis.fields.count
        columnNames = analysis.isHeader ? analysis.fields : nil
        scratchRow = [Double](repeating: 0, count: columns)
        fieldStarts = [Int](repeating: 0, count: columns + 1)
        if hasHeader {
            lines.consume(upTo: line.next)
            lineNumber = 2
        } else {
            lines.consume(upTo: line.start + analysis.byteOrderMarkLength)
            lineNumber = 1
        }
        rowIndex = 0

        if let resume {
            do throws(DataError) {
                guard resume.line >= 1, resume.row >= 0 else {
                    throw DataError.badResumeOffset(file: path, offset: resume.offset)
                }
                try lines.restart(at: resume.offset, earliest: lines.byteOffset)
            } catch {
                failure = error
                throw error
            }
            lineNumber = resume.line
            rowIndex = resume.row
        }
    }

    /// Reads the whole file into one table (for files that fit in memory).
    ///
    /// - Throws: any ``DataError`` of the reader; a header-only file gives a table with zero rows.
    public static func readAll(
        path: String,
        header: HeaderMode = .auto,
        delimiter: CSVDelimiter = .auto,
        nonFinite: NonFinitePolicy = .reject
    ) throws(DataError) -> Table {
        let reader = try CSVReader(path: path, header: header, delimiter: delimiter, nonFinite: nonFinite)
        return try reader.nextChunk(maxRows: Int.max)
            ?? Table(columns: reader.columns, columnNames: reader.columnNames)
    }

    /// The next at most `maxRows` data rows, or nil when no rows remain.
    ///
    /// A chunk has fewer than `maxRows` rows only at the end of the file. Under
    /// ``BadRowPolicy/markNaN`` malformed lines are NaN rows recorded in ``badRows``.
    ///
    /// - Precondition: `maxRows > 0`.
    public func nextChunk(maxRows: Int) throws(DataError) -> Table? {
        precondition(maxRows > 0, "CSVReader.nextChunk: maxRows must be positive")
        if let failure { throw failure }
        if finished { return nil }
        var values = [Double]()
        values.reserveCapacity(min(maxRows, 1 << 16) * columns)
        var count = 0
        do throws(DataError) {
            while count < maxRows {
                guard let line = try lines.nextLine(number: lineNumber) else {
                    finished = true
                    break
                }
                let number = lineNumber
                var problem: DataError?
                if lines.isBlank(line, tabIsBlank: tabIsSpace) {
                    if try lines.restIsBlank(after: line, tabIsBlank: tabIsSpace) {
                        finished = true
                        break
                    }
                    problem = .emptyLine(file: path, line: number)
                } else {
                    problem = lines.withBytes(of: line) { parseRow($0, line: number) }
                }
                lines.consume(upTo: line.next)
                lineNumber += 1
                if let problem {
                    guard onBadRow == .markNaN else { throw problem }
                    badRows.append(BadRow(row: rowIndex, line: number, error: problem))
                    values.append(contentsOf: repeatElement(Double.nan, count: columns))
                } else {
                    values.append(contentsOf: scratchRow)
                }
                count += 1
                rowIndex += 1
            }
        } catch {
            failure = error
            throw error
        }
        if count == 0 { return nil }
        return Table(rows: count, columns: columns, values: values, columnNames: columnNames)
    }

    // MARK: - Fields

    /// Parses one non-blank data line into `scratchRow`; returns what is wrong, or nil.
    private func parseRow(_ bytes: UnsafeBufferPointer<UInt8>, line: Int) -> DataError? {
        let (columns, separator, tabIsSpace) = (self.columns, self.separator, self.tabIsSpace)
        func isSpace(_ byte: UInt8) -> Bool {
            byte == UInt8(ascii: " ") || (tabIsSpace && byte == UInt8(ascii: "\t"))
        }
        return fieldStarts.withUnsafeMutableBufferPointer { fieldStarts in
            scratchRow.withUnsafeMutableBufferPointer { row -> DataError? in
                // Split: fieldStarts[k] is the index of field k's first byte; a virtual field
                // starts one past the line's end.
                var fields = 0
                fieldStarts[0] = 0
                for i in 0..<bytes.count where bytes[i] == separator {
                    fields += 1
                    if fields < columns { fieldStarts[fields] = i + 1 }
                }
                fields += 1
                if fields != columns {
                    return .raggedRow(file: path, line: line, expected: columns, found: fields)
                }
                fieldStarts[columns] = bytes.count + 1
                for column in 0..<columns {
                    var a = fieldStarts[column]
                    var b = fieldStarts[column + 1] - 1
                    while a < b && isSpace(bytes[a]) { a += 1 }
                    while b > a && isSpace(bytes[b - 1]) { b -= 1 }
                    guard let value = DecimalNumber.parse(bytes.baseAddress! + a, count: b - a) else {
                        return .nonNumericField(file: path, line: line, column: column + 1, text: Self.text(bytes, a, b))
                    }
                    if !value.isFinite && nonFinite == .reject {
                        return .nonFiniteValue(
                            file: path, location: .csv(line: line, column: column + 1),
                            text: Self.text(bytes, a, b))
                    }
                    row[column] = value
                }
                return nil
            }
        }
    }

    private static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ a: Int, _ b: Int) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: bytes[a..<b]), as: UTF8.self)
    }
}
