import Foundation

/// Metrics as JSON lines: one object per step (DESIGN §5), for `plot` and other tools.
final class MetricsLog {
    private let handle: FileHandle

    /// Creates (truncates) `path`.
    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil) else {
            throw CLIError("\(path): cannot create the metrics file (\(String(cString: strerror(errno))))")
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError("\(path): cannot open the metrics file for writing")
        }
        handle = h
    }

    /// Appends one line; `nil` values are omitted, non-finite numbers written as `null`.
    func write(_ fields: KeyValuePairs<String, Double?>) {
        let body = fields.compactMap { key, value -> String? in
            guard let value else { return nil }
            let text = value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)") : "null"
            return "\"\(key)\":\(text)"
        }.joined(separator: ",")
        handle.write(Data(("{" + body + "}\n").utf8))
    }

    deinit { try? handle.close() }
}
