import FlowCluster
import FlowData
import Flows
import Foundation

/// `score --workers N` and `score --bind ENDPOINT`: a scoring coordinator in this process, with
/// local worker processes over IPC (all cleaned up on success, failure and Ctrl-C) or external
/// workers that connect.
struct ClusterScoreRun {
    let command: ScoreCommand
    let source: ScoringInput
    let writer: ScoreOutputWriter
    let reportPath: String

    func run<S: FlowScalar>(_ flow: RealNVP<S>) throws {
        let job = ScoringStateMachine.Job(
            model: flow, rowCount: source.rowCount, chunkRows: command.chunk, wantLatent: command.latent != nil,
            inFlightPerWorker: command.inFlight, heartbeatInterval: Double(command.heartbeatMilliseconds) / 1000,
            verifyFraction: command.verifyFraction)
        let journalDirectory = command.journal ?? command.output + ".journal"
        let jobIdentity = try identity(dtype: job.dtypeName)

        var directory: String?
        let endpoint: String
        var security: ClusterSecurity.Server?
        if let bind = command.bind {
            endpoint = bind
            // CURVE with the allow-list, or the plain-TCP rule (and its --insecure warning).
            security = try command.security.server(endpoint: bind)
        } else {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tributary-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            directory = dir
            endpoint = "ipc://\(dir)/coordinator"
        }
        defer { if let directory { try? FileManager.default.removeItem(atPath: directory) } }
        let launcher = WorkerLauncher(executable: WorkerLauncher.currentExecutable)
        if let directory { SignalCleanup.install(removing: directory, socket: "\(directory)/coordinator") }
        defer { launcher.terminateAll() }

        // The journal is created last, and removed again if the job never starts (the bind
        // fails, say), so that a failed start does not block the next fresh run.
        let journalExisted = FileManager.default.fileExists(atPath: ScoreJournal.journalPath(journalDirectory))
        let directoryExisted = FileManager.default.fileExists(atPath: journalDirectory)
        let journal = try ScoreJournal(directory: journalDirectory, identity: jobIdentity, resume: command.resume)
        var started = false
        func discardJournalIfNeverStarted() {
            guard !started, !journalExisted else { return }
            unlink(ScoreJournal.journalPath(journalDirectory))
            if !directoryExisted { rmdir(journalDirectory) }
        }
        if journal.ignoredRecords > 0 {
            log("journal: \(journal.ignoredRecords) torn or damaged records ignored (their chunks are computed again)")
        }
        if command.resume {
            log("journal \(journalDirectory): \(journal.done.count) of \(source.chunkCount) chunks already done")
        }
        let coordinator = ScoringCoordinator(
            job: job, model: flow, input: source, journal: journal, output: writer,
            bind: endpoint, security: security, log: { log($0) })
        let display = ProgressDisplay(total: source.rowCount, label: "rows")
        let exporters = try RunExporters(tensorboard: nil, prometheus: command.prometheusTextfile)
        func exportPrometheus(_ p: ScoringProgress, final: Bool) {
            guard exporters.prometheusDue(now: p.elapsed, final: final) else { return }
            var file = PrometheusTextFile()
            file.add("tributary_rows_done", .gauge, help: "Rows scored (chunks taken from the journal included).", value: Double(p.rowsDone))
            file.add("tributary_rows", .gauge, help: "Rows of the input.", value: Double(p.rowCount))
            file.add("tributary_rows_per_second", .gauge, help: "Rows scored per second in this run.", value: Double(p.rowsThisRun) / max(p.elapsed, 1e-9))
            for w in p.perWorker {
                let labels = [("worker", w.name), ("id", String(w.id))]
                if let r = w.rowsPerSecond {
                    file.add("tributary_worker_rows_per_second", .gauge, help: "Rows each worker scores per busy second (its own rate).", value: r, labels: labels)
                }
                file.add("tributary_worker_share", .gauge, help: "Each worker's part of the rows since the previous report.", value: w.share, labels: labels)
                file.add("tributary_worker_straggler", .gauge, help: "1 for a worker below half the median rate.", value: w.straggler ? 1 : 0, labels: labels)
            }
            file.add("tributary_finished", .gauge, help: "1 once every chunk is done.", value: final ? 1 : 0)
            file.add(coordinator.counters)
            exporters.prometheus(file, now: p.elapsed)
        }
        var lastProgress: ScoringProgress?
        var startError: Error?
        let summary: ScoringSummary
        do {
            summary = try coordinator.run(ready: { bound in
                started = true
                if let count = command.workers {
                    do {
                        for i in 0..<count {
                            try launcher.start(arguments: [
                                "worker", "--connect", bound, "--name", "local-\(i + 1)", "--threads", String(command.threads),
                                "--parent-pid", String(getpid()),
                            ])
                        }
                    } catch {
                        startError = error
                    }
                    log("scoring \(source.rowCount) rows in \(source.chunkCount) chunks of \(command.chunk) on \(count) local workers")
                } else {
                    log("scoring \(source.rowCount) rows in \(source.chunkCount) chunks of \(command.chunk); waiting for workers on \(bound)")
                }
            }, progress: { p in
                lastProgress = p
                exportPrometheus(p, final: false)
                let rate = Double(p.rowsThisRun) / max(p.elapsed, 1e-9)
                display.update(
                    done: p.rowsDone, rate: rate, rateUnit: "rows/s",
                    fields: ["\(p.perWorker.count) workers"] + p.perWorker.map(TrainingOptionGroup.describe))
            }, watch: {
                if let startError { throw startError }
                if let count = command.workers, launcher.running() == 0 {
                    throw CLIError("all \(count) worker processes exited before the job finished; their messages are above (the journal keeps the finished chunks: rerun with --resume)")
                }
                if command.verifyFraction > 0, command.workers != nil, launcher.running() < 2 {
                    throw CLIError("fewer than two worker processes are left, so chunks can no longer be verified; their messages are above (rerun with --resume)")
                }
            })
        } catch {
            discardJournalIfNeverStarted()
            throw error
        }
        // The final figures (a run wholly taken from the journal reported no progress).
        if var last = lastProgress {
            last.rowsDone = summary.rows
            last.rowsThisRun = summary.computedRows
            last.elapsed = summary.seconds
            exportPrometheus(last, final: true)
        } else if command.prometheusTextfile != nil {
            var file = PrometheusTextFile()
            file.add("tributary_rows_done", .gauge, help: "Rows scored (chunks taken from the journal included).", value: Double(summary.rows))
            file.add("tributary_finished", .gauge, help: "1 once every chunk is done.", value: 1)
            exporters.prometheus(file, now: summary.seconds)
        }
        var extra = ["\(summary.computedChunks) chunks computed, \(summary.journaledChunks) taken from the journal"]
        if !summary.rowsPerWorker.isEmpty {
            extra.append("rows per worker: " + summary.rowsPerWorker.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if summary.droppedMessages > 0 { extra.append("\(summary.droppedMessages) duplicate or late results dropped") }
        if summary.invalidMessages > 0 { extra.append("\(summary.invalidMessages) invalid messages dropped") }
        if command.verifyFraction > 0 {
            extra.append("\(summary.verifiedChunks) chunks verified by two workers (\(summary.mismatches) disagreements settled by a third, \(summary.quarantinedWorkers) workers quarantined)")
        }
        print(ScoreCommand.summary(rows: summary.rows, computed: summary.computedRows, seconds: summary.seconds, writer: writer, extra: extra))
    }

    /// What the journal must match: the model's bytes, the input file, the outputs, the chunking.
    private func identity(dtype: String) throws -> ScoreJournal.Identity {
        func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }
        let modelBytes = try Data(contentsOf: URL(fileURLWithPath: command.model))
        var info = stat()
        guard stat(command.input, &info) == 0 else { throw CLIError("cannot stat \(command.input)") }
        let mtime = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        return ScoreJournal.Identity(fields: [
            ("model", ScoreJournal.hex(ScoreJournal.fnv1a(modelBytes))),
            ("input", absolute(command.input)),
            ("inputBytes", String(info.st_size)),
            ("inputModified", String(mtime)),
            ("rows", String(source.rowCount)),
            ("chunkRows", String(command.chunk)),
            ("dtype", dtype),
            ("output", absolute(command.output)),
            ("latent", command.latent.map(absolute) ?? "-"),
            ("report", absolute(reportPath)),
        ])
    }
}

private func log(_ line: String) {
    StandardErrorLog.write(line)
}
