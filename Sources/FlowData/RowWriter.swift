/// A streaming writer of numeric rows to a file (NPY or CSV/TSV), atomic on `finish()`.
///
/// `NPYWriter` and `CSVWriter` conform; `DataFormat.writer(path:columns:header:dtype:)` picks one
/// by the file's extension.
public protocol RowWriter: AnyObject {
    /// The destination path.
    var path: String { get }
    /// Values per row.
    var columns: Int { get }
    /// Appends `rows` rows given as row-major `values` (`values.count == rows * columns`).
    func append<C: Collection>(values: C, rows: Int) throws(DataError) where C.Element == Double
    /// Makes the file durable and puts it at `path` (until then `path` is untouched).
    func finish() throws(DataError)
}

extension RowWriter {
    /// Appends the rows of `table`.
    ///
    /// - Throws: ``DataError/columnCountMismatch(file:expected:found:)`` if the table's width
    ///   is not ``columns``; ``DataError/ioError(file:operation:errno:)`` on a write failure.
    public func append(_ table: Table) throws(DataError) {
        guard table.columns == columns else {
            throw DataError.columnCountMismatch(file: path, expected: columns, found: table.columns)
        }
        try append(values: table.values, rows: table.rows)
    }
}
