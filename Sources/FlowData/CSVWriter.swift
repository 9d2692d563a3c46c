/// A streaming writer of CSV/TSV files whose numbers read back exactly.
///
/// Numbers are printed with Swift's shortest round-trip representation: `Double.description`
/// for `.float64`, `Float(value).description` for `.float32` (so a float32 result is written
/// with the few digits it has, and reading it back and rounding to `Float` gives the same
/// value). NaN and infinity are written `nan`, `inf`, `-inf`. Lines end in `\n`.
///
/// Header names are written quoted (`"…"`, with `""` for a quote) when they are empty,
/// contain the delimiter, a tab, a quote or surrounding spaces, or would read as a number — so that
/// ``CSVReader`` with `header: .auto` recognises the header and gives back the same names.
///
/// Like ``NPYWriter`` the file is written under a temporary name and renamed onto `path` by
/// ``finish()``; a writer that is never finished leaves no file at `path`.
public final class CSVWriter: RowWriter {
    /// The destination path.
    public let path: String
    /// Number of fields of every line.
    public let columns: Int
    /// The delimiter in use (`.comma` or `.tab`).
    public let delimiter: CSVDelimiter
    /// The precision numbers are printed with.
    public let dtype: DataType
    /// Data rows appended so far.
    public private(set) var rowsWritten = 0

    private let file: StagedFile
    private let separator: UInt8
    private var buffer: [UInt8] = []
    private var finished = false
    private static let flushThreshold = 1 << 20

    /// Creates the temporary file and writes the header line, if any.
    ///
    /// - Parameters:
    ///   - delimiter: `.auto` chooses tab for a path ending in `.tsv` (any letter case), else comma.
    ///   - dtype: `.float32` prints each value as the nearest `Float`.
    /// - Throws: ``DataError/columnCountMismatch(file:expected:found:)`` if `header` does not
    ///   have `columns` names, ``DataError/invalidColumnName(file:name:)`` for a name with a
    ///   line break, ``DataError/ioError(file:operation:errno:)`` if the file cannot be created.
    public init(
        path: String, columns: Int, header: [String]? = nil, delimiter: CSVDelimiter = .auto,
        dtype: DataType = .float64
    ) throws(DataError) {
        precondition(columns >= 0, "CSVWriter: negative column count")
        if let header {
            guard header.count == columns else {
                throw DataError.columnCountMismatch(file: path, expected: columns, found: header.count)
            }
            for name in header where name.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) {
                throw DataError.invalidColumnName(file: path, name: name)
            }
        }
        self.path = path
        self.columns = columns
        self.dtype = dtype
        let resolved: CSVDelimiter
        switch delimiter {
        case .auto: resolved = path.lowercased().hasSuffix(".tsv") ? .tab : .comma
        default: resolved = delimiter
        }
        self.delimiter = resolved
        separator = resolved.byte!
        file = try StagedFile.create(destination: path)
        buffer.reserveCapacity(Self.flushThreshold + 4096)
        if let header {
            for (k, name) in header.enumerated() {
                if k > 0 { buffer.append(separator) }
                buffer.append(contentsOf: Self.headerField(name, separator: separator).utf8)
            }
            buffer.append(UInt8(ascii: "\n"))
        }
    }

    deinit {
        file.abandon()  // removes the temporary file unless finish() committed it
    }

    /// Appends `rows` rows given as row-major `values` (`values.count == rows * columns`).
    public func append<C: Collection>(values: C, rows: Int) throws(DataError) where C.Element == Double {
        precondition(!finished, "CSVWriter.append after finish()")
        guard rows >= 0, values.count == rows * columns else {
            throw DataError.columnCountMismatch(file: path, expected: columns, found: rows > 0 ? values.count / rows : values.count)
        }
        var column = 0
        for v in values {
            if column > 0 { buffer.append(separator) }
            switch dtype {
            case .float32: buffer.append(contentsOf: Float(v).description.utf8)
            case .float64: buffer.append(contentsOf: v.description.utf8)
            }
            column += 1
            if column == columns {
                buffer.append(UInt8(ascii: "\n"))
                column = 0
                if buffer.count >= Self.flushThreshold { try flush() }
            }
        }
        if columns == 0 {
            buffer.append(contentsOf: repeatElement(UInt8(ascii: "\n"), count: rows))
        }
        rowsWritten += rows
    }

    /// Flushes, fsyncs, and renames the file onto ``path``.
    ///
    /// - Precondition: called once.
    public func finish() throws(DataError) {
        precondition(!finished, "CSVWriter.finish called twice")
        finished = true
        do throws(DataError) {
            try flush()
            try file.commit()
        } catch {
            file.abandon()
            throw error
        }
    }

    private func flush() throws(DataError) {
        if buffer.isEmpty { return }
        try file.file.writeAll(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// `name`, quoted when a reader could otherwise misread it.
    static func headerField(_ name: String, separator: UInt8) -> String {
        let bytes = Array(name.utf8)
        let needsQuotes = bytes.isEmpty
            || bytes.contains(separator)
            || bytes.contains(UInt8(ascii: "\""))
            || bytes.contains(UInt8(ascii: "\t"))
            || bytes.first == UInt8(ascii: " ") || bytes.last == UInt8(ascii: " ")
            || bytes.withUnsafeBufferPointer { DecimalNumber.parse($0.baseAddress!, count: $0.count) != nil }
        guard needsQuotes else { return name }
        var quoted = "\""
        for character in name {
            quoted += character == "\"" ? "\"\"" : String(character)
        }
        return quoted + "\""
    }
}
