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
        switch try DataFormat(path: path) {
        case .npy:
            let writer = try NPYWriter(path: path, columns: table.columns, dtype: dtype)
            try writer.append(table)
            try writer.finish()
        case .csv, .tsv:
            let writer = try CSVWriter(path: path, columns: table.columns, header: table.columnNames,
                                       delimiter: .auto, dtype: dtype)
            try writer.append(table)
            try writer.finish()
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
