/// The element type of a binary data file.
public enum DataType: String, Sendable, Equatable, CaseIterable {
    /// IEEE 754 binary32 (`Float`), NPY dtype `'<f4'`.
    case float32
    /// IEEE 754 binary64 (`Double`), NPY dtype `'<f8'`.
    case float64

    /// Bytes per element: 4 or 8.
    public var itemSize: Int {
        switch self {
        case .float32: 4
        case .float64: 8
        }
    }

    /// The dtype string numpy writes into an NPY header: `'<f4'` or `'<f8'`.
    public var npyDescr: String {
        switch self {
        case .float32: "<f4"
        case .float64: "<f8"
        }
    }
}
