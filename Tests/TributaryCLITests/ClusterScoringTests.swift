import FlowData
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Files shared by the scoring tests: a model and inputs, made once per test process by the CLI.
enum ScoringFixture {
    /// A D = 8 model (8 couplings, H = 256): about 100 000 rows/s on one core, so that a job of
    /// 300 000 rows lasts long enough to kill and stop processes in the middle of it.
    static let modelArguments = [
        "train", "--data", "mixture:8", "--rows", "2000", "--steps", "5", "--batch", "256", "--couplings", "8",
        "--hidden", "256", "--eval-every", "5", "--seed", "3",
    ]

    private static let lock = NSLock()
    nonisolated(unsafe) private static var directory: String?

    /// A directory holding `model.safetensors` and `x.npy` (300 000 float32 rows of mixture:8).
    static func files() throws -> String {
        lock.lock()
        defer { lock.unlock() }
        if let directory { return directory }
        let dir = try TemporaryDirectory()
        try CLI.succeed(modelArguments + ["--out", "model.safetensors"], in: dir.path, timeout: 120)
        try CLI.succeed(["dataset", "mixture:8", "--rows", "300000", "--seed", "5", "--output", "x.npy", "--dtype", "float32"], in: dir.path)
        directory = dir.path
        return dir.path
    }

    /// Copies the fixture's files into `dir`.
    static func copy(into dir: TemporaryDirectory, _ names: [String] = ["model.safetensors", "x.npy"]) throws {
        let source = try files()
        for name in names { try FileManager.default.copyItem(atPath: source + "/" + name, toPath: dir.file(name)) }
    }

    /// The journal's `done` records: chunk indices in record order.
    static func journalRecords(_ path: String) -> [Int] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().compactMap { line in
            let words = line.split(separator: " ")
            return words.count == 5 && words[0] == "done" ? Int(words[1]) : nil
        }
    }
}

extension ClusterTests {
    /// `tributary score` on a cluster (DESIGN §4): the same bytes as one process, whatever dies.
    @Suite struct ClusterScoringTests {
        static let score = ["score", "--model", "model.safetensors", "--input", "x.npy", "--chunk", "1024"]

        /// Requires `name` in `dir` to be the same bytes as `reference`.
        static func expectSame(_ dir: TemporaryDirectory, _ name: String, as reference: String, _ context: @autoclosure () -> String = "",
                               sourceLocation: SourceLocation = #_sourceLocation) {
            let a = try? dir.bytes(name), b = try? dir.bytes(reference)
            #expect(a != nil && a == b, "\(name) differs from \(reference) (\(a?.count ?? -1) vs \(b?.count ?? -1) bytes)\n\(context())",
                    sourceLocation: sourceLocation)
        }

        @Test func localWorkersWriteTheSameBytesAsOneProcess() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            // Fewer rows for speed: the first 40 000 as CSV (text parsing on both paths) too.
            try CLI.succeed(["dataset", "mixture:8", "--rows", "40000", "--seed", "5", "--output", "x.csv"], in: h.dir.path)
            let base = ["score", "--model", "model.safetensors", "--chunk", "1000"]
            try CLI.succeed(base + ["--input", "x.csv", "--output", "one.npy", "--latent", "one-z.csv"], in: h.dir.path, timeout: 60)
            let run = try CLI.succeed(
                base + ["--input", "x.csv", "--output", "three.npy", "--latent", "three-z.csv", "--workers", "3"], in: h.dir.path, timeout: 60)
            #expect(run.stdout.contains("scored 40000 rows") && run.stdout.contains("40 chunks computed, 0 taken from the journal"), "\(run)")
            Self.expectSame(h.dir, "three.npy", as: "one.npy", "\(run)")
            Self.expectSame(h.dir, "three-z.csv", as: "one-z.csv", "\(run)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("three.npy.journal")), "the journal is removed after success")
            // CSV output, float32 NPY input.
            try CLI.succeed(Self.score + ["--output", "one.csv"], in: h.dir.path, timeout: 60)
            let two = try CLI.succeed(Self.score + ["--output", "two.csv", "--workers", "2"], in: h.dir.path, timeout: 90)
            Self.expectSame(h.dir, "two.csv", as: "one.csv", "\(two)")
            let lp = try DataFormat.readAll(path: h.dir.file("two.csv"), nonFinite: .allow)
            #expect(lp.rows == 300_000 && lp.values.allSatisfy(\.isFinite))
        }

        /// One worker SIGKILLed and one SIGSTOPped mid-job (then continued): their chunks are
        /// computed by the others, duplicates are dropped, and the output is unchanged.
        @Test func aKilledAndAStoppedWorkerDoNotChangeTheOutput() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            try CLI.succeed(Self.score + ["--output", "one.npy"], in: h.dir.path, timeout: 60)
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", Self.score + ["--output", "cluster.npy", "--bind", endpoint, "--heartbeat-ms", "50"])
            let w1 = try h.start("w1", ["worker", "--connect", endpoint, "--name", "w1"])
            let w2 = try h.start("w2", ["worker", "--connect", endpoint, "--name", "w2"])
            let w3 = try h.start("w3", ["worker", "--connect", endpoint, "--name", "w3"])
            let journal = h.dir.file("cluster.npy.journal/journal")
            let started = h.waitUntil(timeout: 60) { ScoringFixture.journalRecords(journal).count >= 30 || !coordinator.isRunning }
            #expect(started && coordinator.isRunning, "the job did not get going\n\(h.report())")
            h.signal(w1, SIGKILL)
            h.signal(w2, SIGSTOP)
            let noticed = h.waitUntil(timeout: 20) {
                (!lines(of: coordinator.stderr, containing: "(w1) lost").isEmpty && !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty)
                    || !coordinator.isRunning
            }
            #expect(noticed, "the deaths went unnoticed\n\(h.report())")
            let doneWhenNoticed = ScoringFixture.journalRecords(journal).count
            h.signal(w2, SIGCONT)
            h.expectSuccess(coordinator, timeout: 120)
            h.expectSuccess(w3, timeout: 10)
            if !w2.wait(timeout: 10) {
                // The job ended before w2 woke up and rejoined: nobody is left to say goodbye.
                h.note("w2 did not rejoin before the end (job done at \(doneWhenNoticed) records when the deaths were noticed)")
                h.signal(w2, SIGKILL)
                w2.wait(timeout: 5)
            }
            w1.wait(timeout: 5)
            #expect(w1.terminatingSignal == SIGKILL)
            Self.expectSame(h.dir, "cluster.npy", as: "one.npy", h.report())
            #expect(coordinator.stdout.contains("scored 300000 rows") && coordinator.stdout.contains("293 chunks computed"), "\(h.report())")
        }

        /// The coordinator SIGKILLed mid-job, then rerun with --resume: the journal held each
        /// finished chunk once, the rerun computes exactly the others, and the output is complete.
        @Test func aKilledCoordinatorResumesFromItsJournal() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            try CLI.succeed(Self.score + ["--output", "one.npy"], in: h.dir.path, timeout: 60)
            let first = try h.start("first", Self.score + ["--output", "cluster.npy", "--workers", "2"])
            let journal = h.dir.file("cluster.npy.journal/journal")
            let going = h.waitUntil(timeout: 60) { ScoringFixture.journalRecords(journal).count >= 40 || !first.isRunning }
            #expect(going && first.isRunning, "\(h.report())")
            h.signal(first, SIGKILL)
            first.wait(timeout: 5)
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("cluster.npy")), "no output may appear before the job is complete")
            let records = ScoringFixture.journalRecords(journal)
            #expect(Set(records).count == records.count, "a chunk was journaled twice: \(records)")
            for k in records {
                #expect(FileManager.default.fileExists(atPath: h.dir.file("cluster.npy.journal/chunk-\(k).part")), "chunk \(k) has no part")
            }
            #expect(records.count >= 40 && records.count < 293, "\(records.count) chunks journaled")

            // Without --resume the journal is not overwritten; with another chunk size it is refused.
            let fresh = try CLI.run(Self.score + ["--output", "cluster.npy", "--workers", "1"], in: h.dir.path)
            #expect(fresh.status != 0 && fresh.stderr.contains("--resume"), "\(fresh)")
            var otherChunk = Self.score
            otherChunk[otherChunk.count - 1] = "2048"
            let mismatch = try CLI.run(otherChunk + ["--output", "cluster.npy", "--workers", "1", "--resume"], in: h.dir.path)
            #expect(mismatch.status != 0 && mismatch.stderr.contains("chunkRows is 1024, this job's is 2048"), "\(mismatch)")

            let resumed = try CLI.succeed(Self.score + ["--output", "cluster.npy", "--workers", "2", "--resume"], in: h.dir.path, timeout: 120)
            let journaled = records.count
            #expect(resumed.stdout.contains("\(293 - journaled) chunks computed, \(journaled) taken from the journal"), "\(resumed)")
            Self.expectSame(h.dir, "cluster.npy", as: "one.npy", "\(resumed)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("cluster.npy.journal")))
        }

        /// Malformed and non-finite rows: NaN in place, listed with their row and line numbers,
        /// counted in the summary — the same files in one process and on the cluster.
        @Test func malformedRowsAreReportedWithTheirRowNumbers() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir, ["model.safetensors"])
            var lines = ["a,b,c,d,e,f,g,h"]
            var bad: [Int: String] = [:]
            for r in 0..<50 {
                var row = (0..<8).map { String(format: "%.3f", sin(Double(r * 8 + $0))) }
                switch r {
                case 3: row[2] = "x"; bad[r] = "malformed"
                case 17: row.removeLast(); bad[r] = "malformed"
                case 18: row = []; bad[r] = "malformed"
                case 29: row[0] = "nan"; bad[r] = "non_finite_input"
                case 41: row[7] = "-inf"; bad[r] = "non_finite_input"
                default: break
                }
                lines.append(row.joined(separator: ","))
            }
            try h.dir.write(lines.joined(separator: "\n") + "\n\n", to: "holes.csv")
            let base = ["score", "--model", "model.safetensors", "--input", "holes.csv", "--chunk", "7"]
            let one = try CLI.succeed(base + ["--output", "one.csv"], in: h.dir.path)
            let two = try CLI.succeed(base + ["--output", "two.csv", "--workers", "2"], in: h.dir.path, timeout: 60)
            for run in [one, two] {
                #expect(run.stdout.contains("5 rows not scored (NaN in the output: 3 malformed, 2 non_finite_input)"), "\(run)")
            }
            Self.expectSame(h.dir, "two.csv", as: "one.csv", "\(two)")
            Self.expectSame(h.dir, "two.csv.unscored.csv", as: "one.csv.unscored.csv", "\(two)")
            let report = try String(contentsOfFile: h.dir.file("two.csv.unscored.csv"), encoding: .utf8)
            let rows = report.split(separator: "\n").dropFirst().map { $0.split(separator: ",", maxSplits: 3).map(String.init) }
            #expect(rows.map { Int($0[0]) } == bad.keys.sorted(), "\(report)")
            for row in rows where row.count == 4 {
                let r = Int(row[0])!
                #expect(row[1] == String(r + 2), "row \(r) is on line \(r + 2) (after the header): \(row)")
                #expect(row[2] == bad[r], "row \(r): \(row)")
            }
            #expect(report.contains("holes.csv line 5, column 3: \"\"x\"\" is not a number"), "\(report)")
            let lp = try DataFormat.readAll(path: h.dir.file("two.csv"), nonFinite: .allow)
            #expect(lp.rows == 50)
            for r in 0..<50 { #expect(lp.values[r].isNaN == (bad[r] != nil), "row \(r)") }
        }

        /// Ctrl-C on `score --workers`: every worker process goes with the coordinator (the
        /// harness fails the test on any stray), no output appears, and the journal stays for --resume.
        @Test func anInterruptedLocalClusterLeavesNoProcessAndNoOutput() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let run = try h.start("score", Self.score + ["--output", "cluster.npy", "--workers", "2"])
            let journal = h.dir.file("cluster.npy.journal/journal")
            let going = h.waitUntil(timeout: 60) { ScoringFixture.journalRecords(journal).count >= 5 || !run.isRunning }
            #expect(going && run.isRunning, "\(h.report())")
            h.signal(run, SIGINT)
            #expect(run.wait(timeout: 10), "\(h.report())")
            #expect(run.exitCode != 0 || run.terminatingSignal != nil)
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("cluster.npy")))
            #expect(ScoringFixture.journalRecords(journal).count >= 5)
        }

        @Test func plainTCPOffLoopbackIsRefusedWithoutInsecure() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let run = try CLI.run(Self.score + ["--output", "lp.npy", "--bind", "tcp://0.0.0.0:5999"], in: h.dir.path)
            #expect(run.status != 0 && run.stderr.contains("--insecure"), "\(run)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("lp.npy.journal")))
        }

        /// `--verify-fraction 1`: every chunk computed by two workers; a worker that corrupts
        /// every second result (the hidden `--corrupt-results-every` hook) is caught, outvoted by a
        /// third computation and quarantined, and the output is still the single-process bytes.
        @Test func verificationQuarantinesAWorkerWhoseResultsDisagree() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let base = Self.score.map { $0 == "1024" ? "4096" : $0 }
            try CLI.succeed(base + ["--output", "one.npy"], in: h.dir.path, timeout: 60)
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", base + ["--output", "cluster.npy", "--bind", endpoint, "--verify-fraction", "1"])
            let honest = try ["w1", "w2"].map { try h.start($0, ["worker", "--connect", endpoint, "--name", $0]) }
            let faulty = try h.start("bad", ["worker", "--connect", endpoint, "--name", "bad", "--corrupt-results-every", "2"])
            h.expectSuccess(coordinator, timeout: 120)
            for worker in honest { h.expectSuccess(worker, timeout: 10) }
            h.expectSuccess(faulty, timeout: 10)
            Self.expectSame(h.dir, "cluster.npy", as: "one.npy", h.report())
            #expect(!lines(of: coordinator.stderr, containing: "(bad) quarantined").isEmpty, "\(h.report())")
            #expect(lines(of: coordinator.stderr, containing: "(w1) quarantined").isEmpty && lines(of: coordinator.stderr, containing: "(w2) quarantined").isEmpty)
            #expect(coordinator.stdout.contains("74 chunks verified by two workers") && coordinator.stdout.contains("1 workers quarantined"), "\(h.report())")
            #expect(faulty.stderr.contains("quarantined"), "the faulty worker was told why it was sent away: \(faulty)")
        }

        @Test func verificationNeedsThreeLocalWorkers() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let run = try CLI.run(Self.score + ["--output", "lp.npy", "--workers", "2", "--verify-fraction", "0.1"], in: h.dir.path)
            #expect(run.status != 0 && run.stderr.contains("--workers 3"), "\(run)")
        }

        @Test func aModelAndInputOfDifferentDimensionAreRefusedBeforeAnyWork() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir, ["model.safetensors"])
            try CLI.succeed(["dataset", "mixture:4", "--rows", "100", "--output", "x4.npy"], in: h.dir.path)
            for extra in [[], ["--workers", "2"]] {
                let run = try CLI.run(["score", "--model", "model.safetensors", "--input", "x4.npy", "--output", "lp.npy"] + extra, in: h.dir.path)
                #expect(run.status != 0 && run.stderr.contains("x4.npy has 4 columns but the model model.safetensors expects 8"), "\(run)")
                #expect(!FileManager.default.fileExists(atPath: h.dir.file("lp.npy")))
                #expect(!FileManager.default.fileExists(atPath: h.dir.file("lp.npy.journal")))
            }
        }

        /// The coordinator's peak RSS does not grow with the input: 8 and 32 times the chunk
        /// buffer's rows (1024 rows × 8 values) × 37 score within the same few MiB.
        @Test func theCoordinatorsMemoryDoesNotGrowWithTheInput() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            // A smaller, faster model for the long inputs.
            try CLI.succeed(["train", "--data", "mixture:8", "--rows", "2000", "--steps", "5", "--batch", "256", "--couplings", "2",
                             "--hidden", "16", "--out", "small.safetensors"], in: h.dir.path)
            try CLI.succeed(["dataset", "mixture:8", "--rows", "300000", "--output", "x1.npy", "--dtype", "float32"], in: h.dir.path)
            try CLI.succeed(["dataset", "mixture:8", "--rows", "1200000", "--output", "x4.npy", "--dtype", "float32"], in: h.dir.path)
            func peak(_ input: String) throws -> Int? {
                let run = try CLI.succeed(["score", "--model", "small.safetensors", "--input", input, "--output", "lp-\(input)", "--chunk", "8192", "--workers", "1"],
                                          in: h.dir.path, timeout: 120)
                guard let range = run.stdout.range(of: "peak RSS ") else { return nil }
                return Int(run.stdout[range.upperBound...].prefix { $0.isNumber })
            }
            let small = try peak("x1.npy"), large = try peak("x4.npy")
            h.note("peak RSS: \(small ?? -1) MiB for 9.6 MB of input, \(large ?? -1) MiB for 38.4 MB")
            guard let small, let large else {
                Issue.record("no peak RSS in the summaries")
                return
            }
            // The 4× input (38 MB) would add ~29 MiB if the coordinator kept rows or results.
            #expect(large <= small + 6, "peak RSS \(small) MiB for 300 000 rows but \(large) MiB for 1 200 000 rows")
            #expect(large < 80, "peak RSS \(large) MiB")
        }
    }
}
