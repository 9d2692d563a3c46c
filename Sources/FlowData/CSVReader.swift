#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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

    /// Size of one read(2) call.
    static let blockSize = 1 << 20
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
    public var byteOffset: Int { bufferFileOffset + bufferStart }
    /// 1-based line number of the next line to be read.
    public private(set) var lineNumber: Int
    /// 0-based index (among data rows) of the next row to be delivered.
    public private(set) var rowIndex: Int
    /// Lines replaced by NaN rows so far under ``BadRowPolicy/markNaN`` (the caller may clear
    /// it between chunks).
    public var badRows: [BadRow] = []

    private let file: PosixFile
    private let lineLimit: Int
    private let separator: UInt8
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var bufferStart = 0
    private var bufferEnd = 0
    private var bufferFileOffset = 0
    private var atEndOfFile = false
    private var finished = false
    private var failure: DataError?
    /// One parsed row, and the field boundaries of one line (columns + 1 entries).
    private let scratchRow: UnsafeMutablePointer<Double>
    private let fieldStarts: UnsafeMutablePointer<Int>

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
        try self.init(path: path, header: header, delimiter: delimiter, nonFinite: nonFinite,
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
        try self.init(path: path, header: header, delimiter: delimiter, nonFinite: nonFinite,
                      onBadRow: onBadRow, resume: (byteOffset, firstLine, firstRow),
                      lineLimit: Self.maximumLineLength)
    }

    /// For tests: a reader with a smaller line-length limit.
    convenience init(path: String, lineLimit: Int) throws(DataError) {
        try self.init(path: path, header: .auto, delimiter: .auto, nonFinite: .reject,
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
        self.lineLimit = lineLimit
        self.nonFinite = nonFinite
        self.onBadRow = onBadRow
        let file = try PosixFile.openForReading(path)
        self.file = file

        // The first line decides everything else.
        var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: Self.blockSize)
        var bufferCapacity = Self.blockSize
        var filled = 0
        var sawEnd = false
        let line: (start: Int, end: Int, next: Int)
        let analysis: FirstLine
        do throws(DataError) {
            guard let found = try Self.firstLine(
                file: file, storage: &buffer, capacity: &bufferCapacity, end: &filled,
                atEndOfFile: &sawEnd, lineLimit: lineLimit)
            else { throw DataError.emptyFile(file: path) }
            line = found
            analysis = Self.analyseFirstLine(
                buffer, start: line.start, end: line.end, delimiter: delimiter, header: header)
            if analysis.isBlank {
                // A blank first line: the file is empty unless something else follows.
                if try Self.onlyBlankBytes(
                    file: file, storage: buffer, from: line.next, to: filled,
                    fileOffset: filled, atEndOfFile: sawEnd,
                    tabIsBlank: analysis.delimiter != .tab)
                {
                    throw DataError.emptyFile(file: path)
                }
                throw DataError.emptyLine(file: path, line: 1)
            }
        } catch {
            buffer.deallocate()
            file.close()
            throw error
        }
        storage = buffer
        capacity = bufferCapacity
        bufferEnd = filled
        atEndOfFile = sawEnd
        lineNumber = 1
        rowIndex = 0
        self.delimiter = analysis.delimiter
        separator = analysis.delimiter.byte!
        hasHeader = analysis.isHeader
        columns = analysis.fields.count
        columnNames = analysis.isHeader ? analysis.fields : nil
        scratchRow = .allocate(capacity: max(columns, 1))
        fieldStarts = .allocate(capacity: columns + 2)
        bufferStart = analysis.contentStart
        if hasHeader {
            bufferStart = line.next
            lineNumber = 2
        }

        if let resume {
            let dataStart = byteOffset
            do throws(DataError) {
                let size = try file.size()
                var valid = resume.offset >= dataStart && resume.offset <= size
                if valid && resume.offset > dataStart {
                    var previous: UInt8 = 0
                    let n = try file.read(into: &previous, count: 1, at: resume.offset - 1)
                    valid = n == 1 && previous == UInt8(ascii: "\n")
                }
                guard valid, resume.line >= 1, resume.row >= 0 else {
                    throw DataError.badResumeOffset(file: path, offset: resume.offset)
                }
                try file.seek(to: resume.offset)
            } catch {
                failure = error
                throw error
            }
            bufferStart = 0
            bufferEnd = 0
            bufferFileOffset = resume.offset
            atEndOfFile = false
            lineNumber = resume.line
            rowIndex = resume.row
        }
    }

    deinit {
        storage.deallocate()
        scratchRow.deallocate()
        fieldStarts.deallocate()
        file.close()
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
                guard let line = try nextLineBounds() else {
                    finished = true
                    break
                }
                let number = lineNumber
                var problem: DataError?
                if isBlank(start: line.start, end: line.end) {
                    if try Self.onlyBlankBytes(
                        file: file, storage: storage, from: line.next, to: bufferEnd,
                        fileOffset: bufferFileOffset + bufferEnd, atEndOfFile: atEndOfFile,
                        tabIsBlank: separator != UInt8(ascii: "\t"))
                    {
                        finished = true
                        break
                    }
                    problem = .emptyLine(file: path, line: number)
                } else {
                    problem = parseRow(start: line.start, end: line.end, line: number)
                }
                bufferStart = line.next
                lineNumber += 1
                if let problem {
                    guard onBadRow == .markNaN else { throw problem }
                    badRows.append(BadRow(row: rowIndex, line: number, error: problem))
                    values.append(contentsOf: repeatElement(Double.nan, count: columns))
                } else {
                    values.append(contentsOf: UnsafeBufferPointer(start: scratchRow, count: columns))
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

    // MARK: - Lines

    /// The bounds of the next line in `storage` (`end` excludes the line break, `next` is the
    /// index after it), reading more of the file as needed; nil at the end of the file.
    private func nextLineBounds() throws(DataError) -> (start: Int, end: Int, next: Int)? {
        var searchFrom = bufferStart
        while true {
            if searchFrom < bufferEnd,
               let found = memchr(storage + searchFrom, Int32(UInt8(ascii: "\n")), bufferEnd - searchFrom)
            {
                let newline = UnsafeMutablePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - storage
                var end = newline
                if end > bufferStart && storage[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                if end - bufferStart > lineLimit {
                    throw DataError.lineTooLong(file: path, line: lineNumber, limit: lineLimit)
                }
                return (bufferStart, end, newline + 1)
            }
            if bufferEnd - bufferStart > lineLimit {
                throw DataError.lineTooLong(file: path, line: lineNumber, limit: lineLimit)
            }
            if atEndOfFile {
                if bufferStart == bufferEnd { return nil }
                var end = bufferEnd
                if storage[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                return (bufferStart, end, bufferEnd)
            }
            // Everything buffered has been searched; continue after it once more is read.
            let searched = bufferEnd - bufferStart
            try fill()
            searchFrom = bufferStart + searched
        }
    }

    /// Moves the unconsumed bytes to the front of the buffer (growing it when full) and reads
    /// one more block.
    private func fill() throws(DataError) {
        if bufferStart > 0 {
            let remaining = bufferEnd - bufferStart
            if remaining > 0 { memmove(storage, storage + bufferStart, remaining) }
            bufferFileOffset += bufferStart
            bufferEnd = remaining
            bufferStart = 0
        }
        if capacity - bufferEnd < Self.blockSize / 2 {
            Self.grow(&storage, capacity: &capacity, keeping: bufferEnd)
        }
        let n = try file.read(into: storage + bufferEnd, count: capacity - bufferEnd)
        if n == 0 { atEndOfFile = true }
        bufferEnd += n
    }

    private static func grow(_ storage: inout UnsafeMutablePointer<UInt8>, capacity: inout Int, keeping count: Int) {
        let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
        bigger.update(from: storage, count: count)
        storage.deallocate()
        storage = bigger
        capacity *= 2
    }

    /// True if the line holds only spaces (and tabs in a comma-separated file).
    private func isBlank(start: Int, end: Int) -> Bool {
        let tabIsBlank = separator != UInt8(ascii: "\t")
        for i in start..<end {
            let b = storage[i]
            if b == UInt8(ascii: " ") || (tabIsBlank && b == UInt8(ascii: "\t")) { continue }
            return false
        }
        return true
    }

    /// True if every byte from `from` to the end of the file is a space, line break (or tab,
    /// when tabs are blank): the bytes `storage[from..<to]`, then the file from `fileOffset`.
    /// Reads ahead with pread(2), leaving the reader's position unchanged.
    private static func onlyBlankBytes(
        file: PosixFile, storage: UnsafeMutablePointer<UInt8>, from: Int, to: Int,
        fileOffset: Int, atEndOfFile: Bool, tabIsBlank: Bool
    ) throws(DataError) -> Bool {
        func blank(_ b: UInt8) -> Bool {
            b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
                || (tabIsBlank && b == UInt8(ascii: "\t"))
        }
        var i = from
        while i < to {
            if !blank(storage[i]) { return false }
            i += 1
        }
        if atEndOfFile { return true }
        let block = 1 << 16
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: block)
        defer { scratch.deallocate() }
        var offset = fileOffset
        while true {
            let n = try file.read(into: scratch, count: block, at: offset)
            if n == 0 { return true }
            for k in 0..<n where !blank(scratch[k]) {
                return false
            }
            offset += n
        }
    }

    // MARK: - Fields

    /// Parses one non-blank data line into `scratchRow`; returns what is wrong, or nil.
    private func parseRow(start: Int, end: Int, line: Int) -> DataError? {
        // Split: fieldStarts[k] is the index of field k's first byte; a virtual field starts
        // one past the line's end.
        var fields = 0
        fieldStarts[0] = start
        var i = start
        while i < end {
            if storage[i] == separator {
                fields += 1
                if fields < columns { fieldStarts[fields] = i + 1 }
            }
            i += 1
        }
        fields += 1
        if fields != columns {
            return .raggedRow(file: path, line: line, expected: columns, found: fields)
        }
        fieldStarts[columns] = end + 1
        let tabIsSpace = separator != UInt8(ascii: "\t")
        for column in 0..<columns {
            var a = fieldStarts[column]
            var b = fieldStarts[column + 1] - 1
            while a < b && (storage[a] == UInt8(ascii: " ") || (tabIsSpace && storage[a] == UInt8(ascii: "\t"))) {
                a += 1
            }
            while b > a && (storage[b - 1] == UInt8(ascii: " ") || (tabIsSpace && storage[b - 1] == UInt8(ascii: "\t"))) {
                b -= 1
            }
            guard let value = DecimalNumber.parse(UnsafePointer(storage + a), count: b - a) else {
                return .nonNumericField(file: path, line: line, column: column + 1, text: text(a, b))
            }
            if !value.isFinite && nonFinite == .reject {
                return .nonFiniteValue(file: path, location: .csv(line: line, column: column + 1),
                                       text: text(a, b))
            }
            scratchRow[column] = value
        }
        return nil
    }

    private func text(_ a: Int, _ b: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: storage + a, count: b - a), as: UTF8.self)
    }

    // MARK: - First line

    private struct FirstLine {
        var delimiter: CSVDelimiter
        var fields: [String]
        var isHeader: Bool
        var isBlank: Bool
        /// Index of the line's first byte after a byte-order mark.
        var contentStart: Int
    }

    /// Reads until the first line is complete (or the file ends) and returns its bounds.
    private static func firstLine(
        file: PosixFile, storage: inout UnsafeMutablePointer<UInt8>, capacity: inout Int,
        end: inout Int, atEndOfFile: inout Bool, lineLimit: Int
    ) throws(DataError) -> (start: Int, end: Int, next: Int)? {
        var searched = 0
        while true {
            for i in searched..<end where storage[i] == UInt8(ascii: "\n") {
                var lineEnd = i
                if lineEnd > 0 && storage[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                if lineEnd > lineLimit {
                    throw DataError.lineTooLong(file: file.path, line: 1, limit: lineLimit)
                }
                return (0, lineEnd, i + 1)
            }
            searched = end
            if end > lineLimit {
                throw DataError.lineTooLong(file: file.path, line: 1, limit: lineLimit)
            }
            if atEndOfFile {
                if end == 0 { return nil }
                var lineEnd = end
                if storage[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                return (0, lineEnd, end)
            }
            if capacity - end < blockSize / 2 {
                grow(&storage, capacity: &capacity, keeping: end)
            }
            let n = try file.read(into: storage + end, count: capacity - end)
            if n == 0 { atEndOfFile = true }
            end += n
        }
    }

    /// Settles delimiter and header from the first line, splitting it with quote handling.
    private static func analyseFirstLine(
        _ storage: UnsafeMutablePointer<UInt8>, start: Int, end: Int,
        delimiter: CSVDelimiter, header: HeaderMode
    ) -> FirstLine {
        var start = start
        if end - start >= 3 && storage[start] == 0xEF && storage[start + 1] == 0xBB
            && storage[start + 2] == 0xBF
        {
            start += 3
        }
        let bytes = UnsafeBufferPointer(start: storage + start, count: end - start)
        var resolved = delimiter
        if resolved == .auto {
            // A tab outside double quotes makes the file tab-separated.
            var quoted = false
            var tab = false
            for b in bytes {
                if b == UInt8(ascii: "\"") { quoted.toggle() }
                if b == UInt8(ascii: "\t") && !quoted {
                    tab = true
                    break
                }
            }
            resolved = tab ? .tab : .comma
        }
        let separator = resolved.byte!
        let spaceBytes: Set<UInt8> = separator == UInt8(ascii: "\t")
            ? [UInt8(ascii: " ")] : [UInt8(ascii: " "), UInt8(ascii: "\t")]
        let blank = bytes.allSatisfy { spaceBytes.contains($0) }

        // Split with RFC 4180 quotes (within this one line).
        var fields: [[UInt8]] = []
        var quotedField: [Bool] = []
        var current: [UInt8] = []
        var inQuotes = false
        var wasQuoted = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if inQuotes {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        current.append(b)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.append(b)
                }
            } else if b == separator {
                fields.append(current)
                quotedField.append(wasQuoted)
                current = []
                wasQuoted = false
            } else if b == UInt8(ascii: "\"") && current.allSatisfy({ spaceBytes.contains($0) }) && !wasQuoted {
                current = []
                inQuotes = true
                wasQuoted = true
            } else {
                current.append(b)
            }
            i += 1
        }
        fields.append(current)
        quotedField.append(wasQuoted)

        var names: [String] = []
        var anyNonNumeric = false
        for (k, raw) in fields.enumerated() {
            var a = 0
            var b = raw.count
            if !quotedField[k] {
                while a < b && spaceBytes.contains(raw[a]) { a += 1 }
            }
            while b > a && spaceBytes.contains(raw[b - 1]) { b -= 1 }
            let trimmed = Array(raw[a..<b])
            if quotedField[k] {
                anyNonNumeric = true
            } else {
                let isNumber = !trimmed.isEmpty && trimmed.withUnsafeBufferPointer { p in
                    DecimalNumber.parse(p.baseAddress!, count: p.count) != nil
                }
                if !isNumber { anyNonNumeric = true }
            }
            names.append(String(decoding: trimmed, as: UTF8.self))
        }
        let isHeader: Bool
        switch header {
        case .auto: isHeader = anyNonNumeric
        case .present: isHeader = true
        case .absent: isHeader = false
        }
        return FirstLine(delimiter: resolved, fields: names, isHeader: isHeader, isBlank: blank,
                         contentStart: start)
    }
}
