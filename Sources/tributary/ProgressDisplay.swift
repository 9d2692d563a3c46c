import Foundation

/// Progress for long work: one rewritten line on a terminal, plain log lines otherwise
/// (about twenty over a run, plus every line that carries a validation figure).
final class ProgressDisplay {
    private let interactive: Bool
    private let total: Int
    private let label: String
    private var lastPrinted = 0
    private var lastDraw = Date.distantPast

    /// Progress over `total` units (steps or rows) written to standard error.
    init(total: Int, label: String) {
        self.total = total
        self.label = label
        interactive = StandardErrorLog.isTerminal
    }

    /// Reports `done` units; `fields` are appended (`loss 3.81`, …). `important` lines are always
    /// logged in non-interactive mode.
    func update(done: Int, rate: Double, rateUnit: String, fields: [String], important: Bool = false) {
        let remaining = rate > 0 ? Double(total - done) / rate : 0
        let head = "\(label) \(done)/\(total)"
        let line = ([head] + fields + ["\(Self.format(rate)) \(rateUnit)", "ETA \(Self.duration(remaining))"]).joined(separator: " | ")
        if interactive {
            let now = Date()
            guard done == total || important || now.timeIntervalSince(lastDraw) > 0.1 else { return }
            lastDraw = now
            FileHandle.standardError.write(Data(("\r\u{1B}[2K" + line).utf8))
            if done == total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let step = max(1, total / 20)
            guard important || done == total || done - lastPrinted >= step else { return }
            lastPrinted = done
            StandardErrorLog.write(line)
        }
    }

    /// Ends an interactive line early (e.g. before an error message).
    func finish() {
        if interactive { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    /// `185,300` style figures.
    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "–" }
        if value >= 100 {
            let n = Int(value.rounded())
            var s = String(n)
            var i = s.count - 3
            while i > 0 { s.insert(",", at: s.index(s.startIndex, offsetBy: i)); i -= 3 }
            return s
        }
        return String(format: "%.1f", value)
    }

    /// `1:02:03` or `2:03`.
    static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "–" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
