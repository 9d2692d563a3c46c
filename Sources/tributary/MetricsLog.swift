import Foundation

/// Metrics as JSON lines: one object per step (DESIGN §5), for `plot` and other tools.
final class MetricsLog {
    private let handle: FileHandle

    /// Opens `path` for a run. A fresh run (`keepingStepsThrough` nil) truncates it; a resumed
    /// run keeps the lines of steps up to and including the checkpoint's step and drops later
    /// ones (written after the checkpoint by the run that died, and about to be written again),
    /// so the file reads as one uninterrupted run. The kept part is rewritten atomically.
    init(path: String, keepingStepsThrough resumedStep: Int? = nil) throws {
        if let resumedStep, FileManager.default.fileExists(atPath: path) {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw CLIError("\(path): cannot read the metrics file to continue it")
            }
            let kept = String(decoding: data, as: UTF8.self).split(separator: "\n").filter { line in
                guard let step = Self.step(of: line) else { return false }
                return step <= resumedStep
            }
            let text = kept.map { $0 + "\n" }.joined()
            do {
                try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            } catch {
                throw CLIError("\(path): cannot rewrite the metrics file: \(error.localizedDescription)")
            }
        } else if !FileManager.default.createFile(atPath: path, contents: nil) {
            throw CLIError("\(path): cannot create the metrics file (\(String(cString: strerror(errno))))")
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError("\(path): cannot open the metrics file for writing")
        }
        handle = h
        handle.seekToEndOfFile()
    }

    /// The `"step"` field of a line this class wrote (nil for anything else, e.g. a torn last line).
    static func step(of line: Substring) -> Int? {
        guard line.hasPrefix("{"), line.hasSuffix("}"), let range = line.range(of: "\"step\":") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// Appends one line; `nil` values are omitted, non-finite numbers written as `null`.
    func write(_ fields: KeyValuePairs<String, Double?>) {
        write(fields.map { ($0.key, $0.value) })
    }

    /// Appends one line of `fields` in order (see `write(_:)`).
    func write(_ fields: [(String, Double?)]) {
        let body = fields.compactMap { key, value -> String? in
            guard let value else { return nil }
            let text = value.isFinite ? (value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)") : "null"
            return "\"\(key)\":\(text)"
        }.joined(separator: ",")
        handle.write(Data(("{" + body + "}\n").utf8))
    }

    deinit { try? handle.close() }
}
