import ArgumentParser
import FlowData
import Flows
import Foundation

/// `tributary score`: log p(x) for every row of a file, in the input's order.
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Compute log p(x) for every row of a CSV/NPY file.",
        discussion: """
            The input is streamed in chunks, so files larger than memory can be scored. The output \
            (NPY or CSV by extension) has one row per input row, in the same order. Rows holding \
            NaN or infinity get NaN.
            """
    )

    @Option(help: "The model file (safetensors).")
    var model: String

    @Option(help: "Rows to score (.csv, .tsv or .npy).")
    var input: String

    @Option(help: "Where to write log p(x) (.npy, .csv or .tsv).")
    var output: String

    @Option(help: "Rows per chunk.")
    var chunk: Int = 65536

    @Option(help: "Threads (row chunks scored at once, one BLAS thread each); the output does not depend on it.")
    var threads: Int = 1

    func validate() throws {
        guard chunk >= 1 else { throw ValidationError("--chunk must be at least 1") }
    }

    func run() throws {
        BLASThreads.set(1)
        let (loaded, _) = try ModelFile.read(from: model)
        switch loaded {
        case .float32(let m): try score(m)
        case .float64(let m): try score(m)
        }
    }

    private func score<S: FlowScalar>(_ flow: RealNVP<S>) throws {
        let D = flow.dimension
        let dtype: DataType = S.self == Float.self ? .float32 : .float64
        let reader = try ChunkedTableReader(path: input, nonFinite: .allow)
        guard reader.columns == D else {
            throw CLIError("\(input) has \(reader.columns) columns but the model \(model) expects \(D)")
        }
        let writer = try DataFormat.writer(path: output, columns: 1, header: ["log_prob"], dtype: dtype)
        let workspaces = (0..<max(1, threads)).map { _ in InferenceWorkspace<S>(configuration: flow.configuration, capacity: 1024) }
        var x = [S](), lp = [S](), lpDouble = [Double]()
        var done = 0, nonFinite = 0
        let start = Date()
        let display = ProgressDisplay(total: reader.rowCount ?? 0, label: "rows")
        while let table = try reader.next(maxRows: chunk) {
            x.removeAll(keepingCapacity: true)
            x.append(contentsOf: table.values.lazy.map { S($0) })
            lp = [S](repeating: 0, count: table.rows)
            flow.logProbability(x, rows: table.rows, into: &lp, latent: nil, workspaces: workspaces)
            lpDouble.removeAll(keepingCapacity: true)
            lpDouble.append(contentsOf: lp.lazy.map { Double($0) })
            nonFinite += lp.reduce(0) { $0 + ($1.isFinite ? 0 : 1) }
            try writer.append(values: lpDouble, rows: table.rows)
            done += table.rows
            if reader.rowCount != nil {
                display.update(done: done, rate: Double(done) / max(Date().timeIntervalSince(start), 1e-9), rateUnit: "rows/s", fields: [])
            }
        }
        try writer.finish()
        let seconds = Date().timeIntervalSince(start)
        var summary = "scored \(done) rows in \(String(format: "%.2f", seconds)) s (\(ProgressDisplay.format(Double(done) / max(seconds, 1e-9))) rows/s); wrote \(output)"
        if nonFinite > 0 { summary += "; \(nonFinite) rows have no finite log p (NaN/Inf input or overflow)" }
        print(summary)
    }
}
