/// A dense two-dimensional table of `Double` values in row-major order — the in-memory form
/// of every dataset, chunk and result that FlowData reads, writes or generates.
///
/// Element (i, j) is `values[i * columns + j]`. Equality compares shape, names and values as
/// `[Double]` does: element-wise `==`, so tables built separately that hold NaN differ.
public struct Table: Sendable, Equatable {
    /// Number of rows (≥ 0).
    public private(set) var rows: Int
    /// Number of columns (≥ 0).
    public let columns: Int
    /// The elements, row-major; `values.count == rows * columns`.
    public private(set) var values: [Double]
    /// Column names from a CSV header, if there was one; `columnNames?.count == columns`.
    public var columnNames: [String]?

    /// Creates a table from row-major values.
    ///
    /// - Precondition: `rows ≥ 0`, `columns ≥ 0`, `values.count == rows * columns`, and
    ///   `columnNames` is nil or has `columns` entries.
    public init(rows: Int, columns: Int, values: [Double], columnNames: [String]? = nil) {
        precondition(rows >= 0 && columns >= 0, "Table: negative shape \(rows)×\(columns)")
        precondition(
            values.count == rows * columns,
            "Table: \(values.count) values for a \(rows)×\(columns) table")
        precondition(
            columnNames == nil || columnNames!.count == columns,
            "Table: \(columnNames?.count ?? 0) column names for \(columns) columns")
        self.rows = rows
        self.columns = columns
        self.values = values
        self.columnNames = columnNames
    }

    /// An empty table (zero rows) with the given width.
    public init(columns: Int, columnNames: [String]? = nil) {
        self.init(rows: 0, columns: columns, values: [], columnNames: columnNames)
    }

    /// The element in row `row`, column `column` (both 0-based).
    public subscript(row: Int, column: Int) -> Double {
        get {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Table: index (\(row), \(column)) out of range \(rows)×\(columns)")
            return values[row * columns + column]
        }
        set {
            precondition(row >= 0 && row < rows && column >= 0 && column < columns,
                         "Table: index (\(row), \(column)) out of range \(rows)×\(columns)")
            values[row * columns + column] = newValue
        }
    }

    /// Row `i` (0-based) as a slice of ``values`` (its indices are those of `values`).
    public func row(_ i: Int) -> ArraySlice<Double> {
        precondition(i >= 0 && i < rows, "Table: row \(i) out of range 0..<\(rows)")
        return values[(i * columns)..<((i + 1) * columns)]
    }

    /// A new table made of the given rows, in the given order (rows may repeat).
    ///
    /// - Precondition: every index is in `0..<rows`.
    public func gather(rows indices: [Int]) -> Table {
        var out = [Double]()
        out.reserveCapacity(indices.count * columns)
        for i in indices {
            precondition(i >= 0 && i < rows, "Table.gather: row \(i) out of range 0..<\(rows)")
            out.append(contentsOf: values[(i * columns)..<((i + 1) * columns)])
        }
        return Table(rows: indices.count, columns: columns, values: out, columnNames: columnNames)
    }

    /// Appends the rows of `other`, which must have the same number of columns.
    /// Column names are kept from `self`.
    public mutating func append(_ other: Table) {
        precondition(other.columns == columns,
                     "Table.append: \(other.columns) columns appended to \(columns)")
        values.append(contentsOf: other.values)
        rows += other.rows
    }

    /// Appends one row.
    ///
    /// - Precondition: `row.count == columns`.
    public mutating func appendRow<C: Collection>(_ row: C) where C.Element == Double {
        precondition(row.count == columns,
                     "Table.appendRow: \(row.count) values for \(columns) columns")
        values.append(contentsOf: row)
        rows += 1
    }
}
