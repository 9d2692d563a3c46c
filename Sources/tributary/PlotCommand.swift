import ArgumentParser
import Foundation

/// `tributary plot`: training curves from metrics files (`--metrics`) as an SVG chart.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Draw training curves from metrics files (train/coordinator --metrics) as an SVG chart.",
        discussion: """
            Each field given with --fields becomes one line per file, against "step" (or the field \
            given with --x, e.g. elapsed_s). Several files compare runs: \
            tributary plot --metrics a.jsonl --metrics b.jsonl --fields val_nll --out cmp.svg
            """)

    @Option(name: .customLong("metrics"), help: "A metrics file (repeat to compare runs).")
    var metrics: [String] = []

    @Option(help: "Fields to draw, comma-separated (default: loss,val_nll).")
    var fields: String = "loss,val_nll"

    @Option(help: "The x axis: step, or another numeric field such as elapsed_s.")
    var x: String = "step"

    @Flag(name: .customLong("log-y"), help: "Logarithmic y axis (values ≤ 0 are left out).")
    var logY = false

    @Option(help: "The chart's title (default: the file names).")
    var title: String?

    @Option(help: "Where to write the chart (.svg).")
    var out: String

    func validate() throws {
        guard !metrics.isEmpty else { throw ValidationError("give at least one --metrics file") }
        guard out.hasSuffix(".svg") else { throw ValidationError("--out must end in .svg, found \(out)") }
        guard !fieldList.isEmpty else { throw ValidationError("--fields names no field") }
    }

    var fieldList: [String] { fields.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } }

    func run() throws {
        var chart = SVGChart(
            title: title ?? metrics.map { ($0 as NSString).lastPathComponent }.joined(separator: " vs "),
            xLabel: x, yLabel: fieldList.joined(separator: ", "), logY: logY)
        for path in metrics {
            let file = try MetricsSeries(path: path)
            if file.tornLastLine {
                StandardErrorLog.write("warning: \(path): the last line is cut short (a run killed while writing it); ignored")
            }
            // A field missing from a file (no validation line yet, say) is left out with a
            // warning; a file holding none of the fields is an error.
            let missing = fieldList.filter { file.fields[$0] == nil }
            if missing.count == fieldList.count {
                throw CLIError("\(path): no field \(fieldList.map { "\"\($0)\"" }.joined(separator: " or ")) (fields: \(file.fields.keys.sorted().joined(separator: ", ")))")
            }
            for field in missing {
                StandardErrorLog.write("warning: \(path): no \"\(field)\" values yet; drawing the other fields")
            }
            for field in fieldList {
                guard let points = file.fields[field] else { continue }
                let xs: [Double]
                if x == "step" {
                    xs = points.map(\.step)
                } else {
                    guard let axis = file.fields[x] else { throw CLIError("\(path): no field \"\(x)\" for the x axis") }
                    let byStep = Dictionary(axis.map { ($0.step, $0.value) }, uniquingKeysWith: { _, last in last })
                    xs = points.map { byStep[$0.step] ?? .nan }
                }
                let label = metrics.count > 1 ? "\(field) (\((path as NSString).lastPathComponent))" : field
                chart.series.append(.init(label: label, points: zip(xs, points).filter { $0.0.isFinite }.map { ($0.0, $0.1.value) }))
            }
        }
        do {
            try Data(chart.render().utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        } catch {
            throw CLIError("\(out): cannot write the chart: \(error.localizedDescription)")
        }
        print("wrote \(chart.series.count) curve(s) to \(out)")
    }
}
