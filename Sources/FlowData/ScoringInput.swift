/// The rows of a file to score, cut into chunks of a fixed number of rows that can be read in
/// any order and more than once — what a scoring coordinator needs to send chunk `k` to a
/// worker, and again to another worker when the first one dies.
///
/// - NPY files are memory-mapped; chunk `k` is rows `k·C ..< (k+1)·C`, and ``release(chunk:)``
///   drops the chunk's pages from the process (so reading a file larger than memory does not
///   grow the resident set).
/// - CSV/TSV files are indexed by one streaming pass when opened: the byte offset, line number
///   and row index where every chunk starts (24 bytes per chunk; the rows themselves are not
///   kept). A chunk is then read by a ``CSVReader`` started at its offset, with the same rules
///   as a reader of the whole file, so a row parses identically whichever path reads it.
///
/// Malformed CSV lines (a non-numeric field, a wrong field count, an empty line inside the
/// data) become rows of NaN, listed in the chunk's ``Chunk/malformed`` with the reader's
/// description; NaN and ±∞ values are allowed (the scorer reports them per row).
public final class ScoringInput {
    /// A chunk of rows.
    public struct Chunk: Sendable {
        /// The chunk index.
        public let index: Int
        /// The 0-based index of the chunk's first row among the file's data rows.
        public let firstRow: Int
        /// Rows in the chunk.
        public let rows: Int
        /// `rows × columns` values, row-major (NaN rows for malformed lines).
        public let values: [Double]
        /// Malformed rows: the row's index within the chunk and what is wrong with it.
        public let malformed: [(row: Int, reason: String)]
    }

    /// Where a CSV chunk starts.
    private struct CSVStart {
        var offset: Int
        var line: Int
        var row: Int
    }

    private enum Source {
        case npy(NPYReader)
        case csv(starts: [CSVStart])
    }

    /// The file, as given.
    public let path: String
    /// Values per row.
    public let columns: Int
    /// Data rows in the file.
    public let rowCount: Int
    /// Rows per chunk (the last chunk may have fewer).
    public let chunkRows: Int
    /// The 1-based line number of the first data row of a CSV file (`nil` for NPY).
    public let firstDataLine: Int?
    private let source: Source

    /// Opens `path` (by extension: `.npy`, `.csv`, `.tsv`) and, for CSV, indexes its chunks.
    ///
    /// - Throws: the readers' ``DataError`` for a file that cannot be opened or whose structure
    ///   is broken (NPY preamble, CSV first line, unreadable bytes).
    public init(path: String, chunkRows: Int) throws(DataError) {
        precondition(chunkRows >= 1, "ScoringInput: chunkRows must be positive")
        self.path = path
        self.chunkRows = chunkRows
        switch try DataFormat(path: path) {
        case .npy:
            let reader = try NPYReader(path: path, nonFinite: .allow)
            columns = reader.columns
            rowCount = reader.rows
            firstDataLine = nil
            source = .npy(reader)
        case .csv, .tsv:
            let reader = try CSVReader(path: path, nonFinite: .allow, onBadRow: .markNaN)
            columns = reader.columns
            firstDataLine = reader.lineNumber
            var starts: [CSVStart] = []
            while true {
                let start = CSVStart(offset: reader.byteOffset, line: reader.lineNumber, row: reader.rowIndex)
                guard let table = try reader.nextChunk(maxRows: chunkRows) else { break }
                reader.badRows.removeAll(keepingCapacity: true)
                starts.append(start)
                if table.rows < chunkRows { break }
            }
            rowCount = reader.rowIndex
            source = .csv(starts: starts)
        }
    }

    /// Number of chunks (0 for a file without data rows).
    public var chunkCount: Int { (rowCount + chunkRows - 1) / chunkRows }

    /// The row range of chunk `index`.
    public func rowRange(ofChunk index: Int) -> Range<Int> {
        let first = index * chunkRows
        return first..<min(rowCount, first + chunkRows)
    }

    /// The 1-based line number of data row `row` in a CSV file (every line after the header is
    /// a row, malformed lines included), `nil` for NPY.
    public func lineNumber(ofRow row: Int) -> Int? {
        firstDataLine.map { $0 + row }
    }

    /// Reads chunk `index`.
    ///
    /// - Precondition: `0 <= index < chunkCount`.
    public func read(chunk index: Int) throws(DataError) -> Chunk {
        precondition(index >= 0 && index < chunkCount, "ScoringInput.read: chunk \(index) outside 0..<\(chunkCount)")
        let range = rowRange(ofChunk: index)
        switch source {
        case .npy(let reader):
            let table = try reader.read(rows: range)
            return Chunk(index: index, firstRow: range.lowerBound, rows: range.count, values: table.values, malformed: [])
        case .csv(let starts):
            let start = starts[index]
            let reader = try CSVReader(
                path: path, nonFinite: .allow, onBadRow: .markNaN, startingAt: start.offset, firstLine: start.line,
                firstRow: start.row)
            guard let table = try reader.nextChunk(maxRows: chunkRows), table.rows == range.count else {
                throw DataError.badResumeOffset(file: path, offset: start.offset)
            }
            let malformed = reader.badRows.map { (row: $0.row - range.lowerBound, reason: $0.error.description) }
            return Chunk(index: index, firstRow: range.lowerBound, rows: range.count, values: table.values, malformed: malformed)
        }
    }

    /// Lets the operating system drop the pages of chunk `index` from this process (NPY; a
    /// no-op for CSV, which is read with `read(2)`).
    public func release(chunk index: Int) {
        if case .npy(let reader) = source {
            reader.releasePages(rows: rowRange(ofChunk: index))
        }
    }
}
