import Foundation

/// The numbers of one metrics file (`--metrics`, one JSON object per line): for each field, its
/// (step, value) points in file order.
struct MetricsSeries {
    /// The file read.
    let path: String
    /// Field name → points; only numeric fields, `null`s skipped (a non-finite value).
    private(set) var fields: [String: [(step: Double, value: Double)]] = [:]
    /// A last line cut short (a run killed while writing it), ignored with a warning.
    private(set) var tornLastLine = false

    /// Reads `path`. Every line must be a JSON object with a numeric `step`; anything else is an
    /// error naming the file and line — except an unterminated last line, which a killed run can
    /// leave behind: it is ignored and reported in `tornLastLine`.
    init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError("\(path): cannot read the metrics file")
        }
        let text = String(decoding: data, as: UTF8.self)
        let endsWithNewline = text.hasSuffix("\n")
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, line) in lines.enumerated() where !line.isEmpty {
            let isLast = index == lines.count - 1
            let object: [String: Any]
            do {
                guard let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    throw CLIError("not a JSON object")
                }
                object = parsed
            } catch {
                if isLast && !endsWithNewline {
                    tornLastLine = true
                    break
                }
                throw CLIError("\(path) line \(index + 1): not a JSON object (\(String(line.prefix(60))))")
            }
            guard let step = (object["step"] as? NSNumber)?.doubleValue else {
                throw CLIError("\(path) line \(index + 1): no numeric \"step\" field")
            }
            for (key, value) in object where key != "step" {
                guard let number = value as? NSNumber else { continue }
                let v = number.doubleValue
                if v.isFinite { fields[key, default: []].append((step, v)) }
            }
        }
        if fields.isEmpty && !tornLastLine && lines.allSatisfy(\.isEmpty) {
            throw CLIError("\(path): the metrics file is empty")
        }
    }
}
