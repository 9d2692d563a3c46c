/// The field separator of a delimited text file.
public enum CSVDelimiter: Sendable, Equatable {
    /// Readers: tab if the first line contains a tab (outside double quotes), else comma.
    /// Writers: tab if the file name ends in `.tsv`, else comma.
    case auto
    /// `,`
    case comma
    /// `\t`
    case tab

    /// The separator byte, or nil for `.auto`.
    var byte: UInt8? {
        switch self {
        case .auto: nil
        case .comma: UInt8(ascii: ",")
        case .tab: UInt8(ascii: "\t")
        }
    }
}
