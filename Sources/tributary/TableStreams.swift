import FlowData

/// Reads a CSV/TSV or NPY file chunk by chunk, whichever its extension names.
final class ChunkedTableReader {
    private enum Source {
        case csv(CSVReader)
        case npy(NPYReader, next: Int)
    }

    private var source: Source
    /// Columns per row.
    let columns: Int
    /// Total rows, when known without reading the file (NPY).
    let rowCount: Int?

    init(path: String, nonFinite: NonFinitePolicy) throws {
        switch try DataFormat(path: path) {
        case .npy:
            let reader = try NPYReader(path: path, nonFinite: nonFinite)
            source = .npy(reader, next: 0)
            columns = reader.columns
            rowCount = reader.rows
        case .csv, .tsv:
            let reader = try CSVReader(path: path, nonFinite: nonFinite)
            source = .csv(reader)
            columns = reader.columns
            rowCount = nil
        }
    }

    /// The next at most `maxRows` rows, or `nil` at the end.
    func next(maxRows: Int) throws -> Table? {
        switch source {
        case .csv(let reader):
            return try reader.nextChunk(maxRows: maxRows)
        case .npy(let reader, let next):
            guard next < reader.rows else { return nil }
            let end = min(reader.rows, next + maxRows)
            source = .npy(reader, next: end)
            return try reader.read(rows: next..<end)
        }
    }
}
