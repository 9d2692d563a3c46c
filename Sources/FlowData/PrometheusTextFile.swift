/// Metrics in the Prometheus text exposition format (version 0.0.4), for node_exporter's
/// textfile collector: `# HELP` and `# TYPE` lines, then one line per sample
/// (`name{label="value",…} value`). `write(to:)` replaces the file atomically (a hidden
/// temporary file in the same directory, fsynced and renamed), so the collector never reads a
/// half-written file and never picks up the temporary one (it reads `*.prom` only).
public struct PrometheusTextFile: Sendable {
    /// A metric family's type.
    public enum Kind: String, Sendable {
        case gauge, counter
    }

    private struct Family: Sendable {
        var name: String
        var help: String
        var kind: Kind
        var samples: [(labels: [(String, String)], value: Double)]
    }

    private var families: [Family] = []

    public init() {}

    /// Adds a sample of family `name` (created with `kind` and `help` at its first sample;
    /// counters' names end in `_total` by convention).
    public mutating func add(_ name: String, _ kind: Kind, help: String, value: Double, labels: [(String, String)] = []) {
        if let i = families.firstIndex(where: { $0.name == name }) {
            families[i].samples.append((labels, value))
        } else {
            families.append(Family(name: name, help: help, kind: kind, samples: [(labels, value)]))
        }
    }

    /// The exposition text.
    public var text: String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escape(family.help, quotes: false))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                if !sample.labels.isEmpty {
                    out += "{" + sample.labels.map { "\($0.0)=\"\(Self.escape($0.1, quotes: true))\"" }.joined(separator: ",") + "}"
                }
                out += " \(Self.format(sample.value))\n"
            }
        }
        return out
    }

    /// Replaces the file at `path` with `text`, atomically.
    public func write(to path: String) throws(DataError) {
        let staged = try StagedFile.create(destination: path)
        try staged.file.writeAll(Array(text.utf8))
        try staged.commit()
    }

    /// A sample value as the format spells it (`NaN`, `+Inf`, `-Inf`, or a decimal).
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// Escapes `\` and newlines (and `"` in label values).
    static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        for c in text {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\"" where quotes: out += "\\\""
            default: out.append(c)
            }
        }
        return out
    }
}
