import ArgumentParser
import FlowCluster
import FlowData
import FlowWire
import Flows
import Foundation

/// `tributary score`: log p(x) for every row of a file, in the input's order — in one process,
/// on a local cluster (`--workers N`) or on workers that connect (`--bind ENDPOINT`).
struct ScoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score",
        abstract: "Compute log p(x) for every row of a CSV/NPY file, in one process or on a cluster.",
        discussion: """
            The input is read chunk by chunk, so files larger than memory can be scored. The output \
            (NPY or CSV by extension) has one row per input row, in the same order, and is the same \
            bytes whatever --chunk, --threads and number of workers, and after --resume. Rows that \
            cannot be scored (NaN/Inf, wrong width, not a number) get NaN and are listed in a side \
            report (OUTPUT.unscored.csv). With --workers or --bind a journal records finished chunks \
            durably; --resume continues a killed run, computing only the unfinished chunks. \
            See docs/scoring.md.
            """
    )

    @Option(help: "The model file (safetensors).")
    var model: String

    @Option(help: "Rows to score (.csv, .tsv or .npy).")
    var input: String

    @Option(help: "Where to write log p(x) (.npy, .csv or .tsv).")
    var output: String

    @Option(help: "Also write the latents z = f(x) here (.npy, .csv or .tsv).")
    var latent: String?

    @Option(help: "Where to list the rows that could not be scored (default: OUTPUT.unscored.csv).")
    var report: String?

    @Option(help: "Rows per chunk (the unit of work and of the journal); the output does not depend on it. Multiples of 1024 waste no work.")
    var chunk: Int = 65536

    @Option(help: "Threads (row blocks scored at once, one BLAS thread each) in one process or per local worker.")
    var threads: Int = 1

    @Option(help: "Start a local cluster of N worker processes.")
    var workers: Int?

    @Option(help: "Bind this endpoint and score on the workers that connect (tributary worker --connect ENDPOINT).")
    var bind: String?

    @Option(help: "The journal directory of a cluster run (default: OUTPUT.journal).")
    var journal: String?

    @Flag(help: "Continue the run recorded in the journal: compute only the chunks it does not hold.")
    var resume = false

    @OptionGroup var security: CoordinatorSecurityOptions

    @Option(name: .customLong("heartbeat-ms"), help: "Heartbeat interval of a cluster run (milliseconds).")
    var heartbeatMilliseconds: Int = 250

    @Option(name: .customLong("verify-fraction"), help: "Fraction P of chunks computed by two different workers and compared bit for bit; a disagreement is settled by a third and the odd worker is quarantined (cluster runs).")
    var verifyFraction: Double = 0

    @Option(name: .customLong("prometheus-textfile"), help: "Cluster runs: rewrite this file (atomically, every 2 s and at the end) with the run's figures in the Prometheus text format, for node_exporter's textfile collector; name it *.prom.")
    var prometheusTextfile: String?

    @Option(name: .customLong("in-flight"), help: ArgumentHelp("Chunks a worker may hold at once.", visibility: .hidden))
    var inFlight: Int = 2

    func validate() throws {
        guard chunk >= 1 else { throw ValidationError("--chunk must be at least 1") }
        guard chunk <= 1 << 20 else { throw ValidationError("--chunk must be at most \(1 << 20) (the rows a worker accepts in one message)") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if workers != nil && bind != nil { throw ValidationError("--workers and --bind exclude each other") }
        if (resume || journal != nil) && workers == nil && bind == nil {
            throw ValidationError("--journal and --resume apply to cluster runs (--workers or --bind)")
        }
        guard inFlight >= 1 else { throw ValidationError("--in-flight must be at least 1") }
        if prometheusTextfile != nil && workers == nil && bind == nil {
            throw ValidationError("--prometheus-textfile applies to cluster runs (--workers or --bind)")
        }
        guard verifyFraction >= 0 && verifyFraction <= 1 else { throw ValidationError("--verify-fraction must be in [0, 1]") }
        if verifyFraction > 0 {
            guard workers != nil || bind != nil else { throw ValidationError("--verify-fraction applies to cluster runs (--workers or --bind)") }
            if let workers, workers < 3 {
                throw ValidationError("--verify-fraction needs --workers 3 or more (two to compare, a third to settle a disagreement)")
            }
        }
        guard heartbeatMilliseconds >= 10 else { throw ValidationError("--heartbeat-ms must be at least 10") }
        if (security.key != nil || security.authorizedKeys != nil) && bind == nil {
            throw ValidationError("--key and --authorized-keys apply to --bind (a --workers cluster runs over a private IPC socket)")
        }
        if (security.key == nil) != (security.authorizedKeys == nil) {
            throw ValidationError("--key and --authorized-keys go together: the coordinator needs its key pair and the workers' public keys")
        }
        if let bind {
            _ = try ClusterSecuritySetup.parse(bind, role: .bind)
            if security.key == nil { try ClusterError.checkEndpoint(bind, insecure: security.insecure) }
        }
    }

    func run() throws {
        BLASThreads.set(1)
        try OutputPlan().reading("--model", model).reading("--input", input)
            .writing("--output", output).writing("--latent", latent).writing("--report", reportPath)
            .writing("--journal", workers != nil || bind != nil ? journal ?? output + ".journal" : nil, kind: .directory)
            .writing("--prometheus-textfile", prometheusTextfile)
            .check()
        // A handled SIGINT/SIGTERM removes the outputs' temporary files (and a cluster's workers).
        SignalCleanup.install()
        let (loaded, _) = try ModelFile.read(from: model)
        switch loaded {
        case .float32(let m): try score(m, scorer: ChunkScorer(model: m, threads: threads))
        case .float64(let m): try score(m, scorer: ChunkScorer(model: m, threads: threads))
        }
    }

    private var reportPath: String { report ?? ScoreOutputWriter.defaultReportPath(output: output) }

    private func score<S: FlowScalar>(_ flow: RealNVP<S>, scorer: ChunkScorer) throws {
        let indexing = Date()
        let isText = (try? DataFormat(path: input)) != .npy
        if isText { StandardErrorLog.write("indexing \(input) (one streaming pass)…") }
        let source = try ScoringInput(path: input, chunkRows: chunk)
        if isText {
            StandardErrorLog.write(String(
                format: "indexed %d rows in %d chunks in %.1f s", source.rowCount, source.chunkCount, Date().timeIntervalSince(indexing)))
        }
        guard source.columns == flow.dimension else {
            throw CLIError("\(input) has \(source.columns) columns but the model \(model) expects \(flow.dimension); nothing was scored")
        }
        let writer = try ScoreOutputWriter(
            output: output, latent: latent, report: reportPath, dimension: flow.dimension, dtype: scorer.dtype)
        for path in writer.removedStaleFiles {
            StandardErrorLog.write("removed \(path), a temporary file an interrupted run left")
        }
        if workers != nil || bind != nil {
            try ClusterScoreRun(command: self, source: source, writer: writer, reportPath: reportPath)
                .run(flow)
            try Self.refuseIfNothingScored(rows: source.rowCount, input: input, writer: writer)
            return
        }
        let start = Date()
        let display = ProgressDisplay(total: source.rowCount, label: "rows")
        for k in 0..<source.chunkCount {
            let rows = try source.read(chunk: k)
            source.release(chunk: k)
            var scored = scorer.score(scorer.encode(rows.values), rows: rows.rows, firstRow: rows.firstRow, wantLatent: latent != nil)
            scored.markMalformed(rows.malformed.map(\.row))
            try writer.append(
                firstRow: rows.firstRow, result: scored,
                reasons: Dictionary(rows.malformed.map { ($0.row, $0.reason) }, uniquingKeysWith: { a, _ in a }),
                line: source.lineNumber(ofRow:))
            display.update(
                done: writer.rowsWritten, rate: Double(writer.rowsWritten) / max(Date().timeIntervalSince(start), 1e-9),
                rateUnit: "rows/s", fields: [])
        }
        try writer.finish()
        let seconds = Date().timeIntervalSince(start)
        print(Self.summary(rows: source.rowCount, seconds: seconds, writer: writer, extra: []))
        try Self.refuseIfNothingScored(rows: source.rowCount, input: input, writer: writer)
    }

    /// Ends a run in which not one row could be scored with exit code 65 (`EX_DATAERR`), after
    /// the outputs and the report are written: a log-prob file of NaN only is not a success.
    static func refuseIfNothingScored(rows: Int, input: String, writer: ScoreOutputWriter) throws {
        guard rows > 0, writer.unscoredCount == rows else { return }
        let error = ScoreError.nothingScored(rows: rows, input: input, report: writer.reportPath)
        FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
        throw ExitCode(ScoreError.exitCode)
    }

    /// The final summary line(s).
    /// `computed` rows were scored in this run (the others came from a journal).
    static func summary(rows: Int, computed: Int? = nil, seconds: Double, writer: ScoreOutputWriter, extra: [String]) -> String {
        var text = "scored \(rows) rows in \(String(format: "%.2f", seconds)) s (\(ProgressDisplay.format(Double(computed ?? rows) / max(seconds, 1e-9))) rows/s)"
        text += extra.map { "; " + $0 }.joined()
        if let peak = peakResidentMiB() { text += "; peak RSS \(peak) MiB" }
        text += "; wrote \(writer.outputPath)"
        if let latent = writer.latentPath { text += " and \(latent)" }
        let unscored = writer.unscoredCount
        if unscored == 0 {
            text += "\nall rows scored"
        } else {
            let parts = [WireRowStatus.malformedInput, .nonFiniteInput, .nonFiniteResult].compactMap { status in
                writer.unscored[status].map { "\($0) \(ScoreOutputWriter.statusName(status))" }
            }
            text += "\n\(unscored) rows not scored (NaN in the output: \(parts.joined(separator: ", "))); listed in \(writer.reportPath)"
        }
        return text
    }
}

/// This process's peak resident set (`VmHWM` in `/proc/self/status`), in MiB; nil where there is no procfs.
func peakResidentMiB() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { return nil }
    return (kilobytes + 1023) / 1024
}
