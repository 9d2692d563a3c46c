/// A streaming writer of NPY files (format version 1.0, C order, little-endian float32 or
/// float64), for outputs whose row count is known only at the end.
///
/// The header is written first with room for a 20-digit row count (its length is a multiple
/// of 64 bytes, as numpy writes it); rows are appended as they come; ``finish()`` patches the
/// final count into the header, fsyncs the file and atomically renames it from a temporary
/// name in the same directory onto `path`. A writer that is never finished leaves no file at
/// `path` (its temporary file is removed when the writer is deallocated).
///
/// Values are stored as `Float(value)` for `.float32` (round to nearest) and unchanged for
/// `.float64`; NaN and infinity are written as they are.
public final class NPYWriter: RowWriter {
    /// The destination path.
    public let path: String
    /// Number of columns of every row.
    public let columns: Int
    /// The element type written.
    public let dtype: DataType
    /// Rows appended so far.
    public private(set) var rowsWritten = 0

    private let file: StagedFile
    private let headerLength: Int
    private var buffer: [UInt8] = []
    private var finished = false
    private static let flushThreshold = 1 << 20

    /// Creates the temporary file and writes a provisional header.
    ///
    /// - Precondition: `columns ≥ 0`.
    /// - Throws: ``DataError/ioError(file:operation:errno:)`` if the file cannot be created.
    public init(path: String, columns: Int, dtype: DataType = .float32) throws(DataError) {
        precondition(columns >= 0, "NPYWriter: negative column count")
        self.path = path
        self.columns = columns
        self.dtype = dtype
        file = try StagedFile.create(destination: path)
        let header = NPYHeader.encode(dtype: dtype, rows: 0, columns: columns)
        headerLength = header.count
        buffer.reserveCapacity(Self.flushThreshold + 4096)
        buffer.append(contentsOf: header)
    }

    deinit {
        file.abandon()  // removes the temporary file unless finish() committed it
    }

    /// Appends `rows` rows given as row-major `values` (`values.count == rows * columns`).
    ///
    /// - Throws: ``DataError/columnCountMismatch(file:expected:found:)`` if `values.count` is
    ///   not `rows * columns` (`found` is then `values.count / rows`).
    public func append<C: Collection>(values: C, rows: Int) throws(DataError) where C.Element == Double {
        precondition(!finished, "NPYWriter.append after finish()")
        guard rows >= 0, values.count == rows * columns else {
            throw DataError.columnCountMismatch(file: path, expected: columns, found: rows > 0 ? values.count / rows : values.count)
        }
        let itemSize = dtype.itemSize
        var index = values.startIndex
        var remaining = values.count
        while remaining > 0 {
            let count = min(remaining, Self.flushThreshold / itemSize)
            let start = buffer.count
            buffer.append(contentsOf: repeatElement(0, count: count * itemSize))
            buffer.withUnsafeMutableBytes { raw in
                let base = raw.baseAddress! + start
                for k in 0..<count {
                    let v = values[index]
                    switch dtype {
                    case .float32:
                        base.storeBytes(of: Float(v).bitPattern.littleEndian, toByteOffset: 4 * k, as: UInt32.self)
                    case .float64:
                        base.storeBytes(of: v.bitPattern.littleEndian, toByteOffset: 8 * k, as: UInt64.self)
                    }
                    values.formIndex(after: &index)
                }
            }
            remaining -= count
            if buffer.count >= Self.flushThreshold { try flush() }
        }
        rowsWritten += rows
    }

    /// Writes the final header, fsyncs, and renames the file onto ``path``.
    ///
    /// - Precondition: called once.
    public func finish() throws(DataError) {
        precondition(!finished, "NPYWriter.finish called twice")
        finished = true
        do throws(DataError) {
            try flush()
            let header = NPYHeader.encode(dtype: dtype, rows: rowsWritten, columns: columns)
            precondition(header.count == headerLength)
            try file.file.writeAll(header, at: 0)
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
}
