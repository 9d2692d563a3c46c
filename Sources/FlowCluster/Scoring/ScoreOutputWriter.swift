import FlowData
import FlowWire
import Foundation

/// Writes the outputs of a scoring job from chunk results taken **in chunk order**: log p(x)
/// (NPY or CSV by extension, column `log_prob`), optionally the latents z (columns `z0…`), and
/// the side report of rows that could not be scored. `tributary score` in one process and the
/// scoring coordinator (when it assembles the journal's chunk parts) both write through this
/// type, so their files are the same bytes.
///
/// Every file is written under a temporary name and renamed onto its path by ``finish()``
/// (after an fsync): a run that stops earlier leaves no file that could be mistaken for a
/// complete output. A stale side report of an earlier run is removed when this run has no
/// unscored rows, and temporary files that dead earlier runs left for these outputs are removed
/// when the writer is created. Temporary files are registered with `TemporaryFiles`, so that a
/// handled signal (SIGINT, SIGTERM) removes them.
public final class ScoreOutputWriter {
    /// The log-prob file.
    public let outputPath: String
    /// The latent file, if any.
    public let latentPath: String?
    /// The side report's path.
    public let reportPath: String
    /// Temporary files that dead earlier runs left for these outputs, removed by `init`.
    public let removedStaleFiles: [String]
    /// Rows written so far.
    public private(set) var rowsWritten = 0
    /// Rows whose status is not `ok`, per status.
    public private(set) var unscored: [WireRowStatus: Int] = [:]

    private let logProbs: any RowWriter
    private let latents: (any RowWriter)?
    private let dimension: Int
    private var report: FileHandle?
    private let reportTemporary: String
    private var buffer: [Double] = []

    /// The side report's default path for an output path: `OUTPUT.unscored.csv`.
    public static func defaultReportPath(output: String) -> String { output + ".unscored.csv" }

    /// The side report's first line.
    public static let reportHeader = "row,line,status,reason\n"

    /// Creates the writers (temporary files).
    public init(output: String, latent: String?, report: String, dimension: Int, dtype: WireDType) throws {
        let type: DataType = dtype == .float32 ? .float32 : .float64
        removedStaleFiles = ([output, report] + (latent.map { [$0] } ?? [])).flatMap { TemporaryFiles.removeStale(for: $0) }
        outputPath = output
        latentPath = latent
        reportPath = report
        self.dimension = dimension
        logProbs = try DataFormat.writer(path: output, columns: 1, header: ["log_prob"], dtype: type)
        latents = try latent.map { try DataFormat.writer(path: $0, columns: dimension, header: (0..<dimension).map { "z\($0)" }, dtype: type) }
        reportTemporary = TemporaryFiles.temporaryPath(for: report, attempt: 0)
    }

    deinit {
        if report != nil {
            try? report?.close()
            unlink(reportTemporary)
            TemporaryFiles.unregister(reportTemporary)
        }
    }

    /// Appends the rows of the next chunk. `lines` gives the input line of a row (CSV) for the
    /// report; `reasons` the reader's description of malformed rows (by row within the chunk).
    public func append(
        firstRow: Int, result: ScoredChunk, reasons: [Int: String], line: (Int) -> Int?
    ) throws {
        precondition(firstRow == rowsWritten, "ScoreOutputWriter: chunks must come in order")
        let rows = result.statuses.count
        try append(result.logProbs, rows: rows, to: logProbs)
        if let latents, let z = result.latent { try append(z, rows: rows, to: latents) }
        var text = ""
        for (r, status) in result.statuses.enumerated() where status != .ok {
            unscored[status, default: 0] += 1
            let row = firstRow + r
            let reason = reasons[r] ?? status.description
            text += "\(row),\(line(row).map(String.init) ?? ""),\(Self.statusName(status)),\(Self.quoted(reason))\n"
        }
        if !text.isEmpty { try writeReport(text) }
        rowsWritten += rows
    }

    /// Makes every file durable and puts it at its path.
    public func finish() throws {
        try logProbs.finish()
        try latents?.finish()
        if let report {
            try report.synchronize()
            try report.close()
            self.report = nil
            guard rename(reportTemporary, reportPath) == 0 else {
                throw DataError.ioError(file: reportPath, operation: "rename from \(reportTemporary)", errno: errno)
            }
            TemporaryFiles.unregister(reportTemporary)
        } else {
            unlink(reportPath)
        }
    }

    /// Rows not scored, all statuses together.
    public var unscoredCount: Int { unscored.values.reduce(0, +) }

    private func writeReport(_ text: String) throws {
        if report == nil {
            unlink(reportTemporary)
            guard FileManager.default.createFile(atPath: reportTemporary, contents: Data(Self.reportHeader.utf8)),
                  let handle = FileHandle(forWritingAtPath: reportTemporary)
            else { throw DataError.ioError(file: reportTemporary, operation: "create", errno: errno) }
            TemporaryFiles.register(reportTemporary)
            try handle.seekToEnd()
            report = handle
        }
        try report!.write(contentsOf: Data(text.utf8))
    }

    private func append(_ vector: WireVector, rows: Int, to writer: any RowWriter) throws {
        buffer.removeAll(keepingCapacity: true)
        switch vector {
        case .float32(let values): buffer.append(contentsOf: values.lazy.map { Double($0) })
        case .float64(let values): buffer.append(contentsOf: values)
        }
        try writer.append(values: buffer, rows: rows)
    }

    /// The report's name for a status: `non_finite_input`, `non_finite_result`, `malformed`.
    public static func statusName(_ status: WireRowStatus) -> String {
        switch status {
        case .ok: return "ok"
        case .nonFiniteInput: return "non_finite_input"
        case .nonFiniteResult: return "non_finite_result"
        case .malformedInput: return "malformed"
        }
    }

    /// A CSV field: quoted, with `""` for a quote, when it holds a comma, quote or line break.
    static func quoted(_ text: String) -> String {
        let flat = text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\r", with: " ")
        guard flat.contains(",") || flat.contains("\"") else { return flat }
        return "\"" + flat.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
