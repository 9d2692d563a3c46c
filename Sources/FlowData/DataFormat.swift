/// The file formats FlowData reads and writes, chosen by file name extension.
public enum DataFormat: Sendable, Equatable {
    /// NumPy `.npy` (2-D, C order, little-endian float32/float64).
    case npy
    /// Comma-separated text, `.csv`.
    case csv
    /// Tab-separated text, `.tsv`.
    case tsv

    /// The format named by `path`'s extension (`.npy`, `.csv`, `.tsv`, in any letter case).
    ///
    /// - Throws: ``DataError/unsupportedExtension(file:)`` for any other name.
    public init(path: String) throws(DataError) {
        let name = PosixFile.baseName(of: path).lowercased()
        if name.hasSuffix(".npy") {
            self = .npy
        } else if name.hasSuffix(".csv") {
            self = .csv
        } else if name.hasSuffix(".tsv") {
            self = .tsv
        } else {
            throw DataError.unsupportedExtension(file: path)
        }
    }

    /// Writes `table` to `path` in the format its extension names, atomically (through a
    /// temporary file renamed onto `path`). CSV/TSV files get a header line when the table has
    /// ``Table/columnNames``.
    ///
    /// - Parameter dtype: NPY element type, or the precision CSV numbers are printed with.
    public static func write(_ table: Table, to path: String, dtype: DataType = .float64) throws(DataError) {
        let output = try writer(path: path, columns: table.columns, header: table.columnNames, dtype: dtype)
        try output.append(table)
        try output.finish()
    }

    /// A streaming writer for `path` in the format its extension names. CSV/TSV files get a
    /// header line when `header` is given.
    public static func writer(path: String, columns: Int, header: [String]?, dtype: DataType) throws(DataError) -> any RowWriter {
        switch try DataFormat(path: path) {
        case .npy:
            return try NPYWriter(path: path, columns: columns, dtype: dtype)
        case .csv, .tsv:
            return try CSVWriter(path: path, columns: columns, header: header, delimiter: .auto, dtype: dtype)
        }
    }

    /// Reads all of `path` in the format its extension names (CSV/TSV with automatic header
    /// and delimiter detection).
    public static func readAll(path: String, nonFinite: NonFinitePolicy = .reject) throws(DataError) -> Table {
        switch try DataFormat(path: path) {
        case .npy:
            return try NPYReader.readAll(path: path, nonFinite: nonFinite)
        case .csv, .tsv:
            return try CSVReader.readAll(path: path, nonFinite: nonFinite)
        }
    }
}
