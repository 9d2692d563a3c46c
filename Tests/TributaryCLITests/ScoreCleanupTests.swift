import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// What `score` and `sample` leave behind: no temporary file after a handled signal, none of
    /// a dead earlier run after the next run for the same output, no journal after a failed
    /// start, and no exit 0 when not one row could be scored.
    @Suite struct ScoreCleanupTests {
        static func temporaryFiles(_ dir: TemporaryDirectory) -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [])
                .filter { $0.contains(".tmp-") || $0.contains(".partial-") }.sorted()
        }

        /// SIGTERM to a one-process `score` and SIGINT to `sample` while they write: the
        /// temporary files go with the process.
        @Test(arguments: [SIGTERM, SIGINT])
        func aHandledSignalRemovesTheTemporaryFiles(signal: Int32) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let jobs: [(String, [String])] = [
                ("score", ["score", "--model", "model.safetensors", "--input", "x.npy", "--output", "lp.npy", "--latent", "z.csv"]),
                ("sample", ["sample", "--model", "model.safetensors", "--count", "5000000", "--output", "s.csv", "--log-prob", "slp.npy"]),
            ]
            for (name, arguments) in jobs {
                let run = try h.start(name, arguments)
                let writing = h.waitUntil(timeout: 60) { Self.temporaryFiles(h.dir).count >= 2 || !run.isRunning }
                #expect(writing && run.isRunning, "\(name) did not start writing\n\(h.report())")
                h.signal(run, signal)
                #expect(run.wait(timeout: 10), "\(h.report())")
                #expect(run.exitCode != 0 || run.terminatingSignal != nil, "\(h.report())")
                #expect(Self.temporaryFiles(h.dir).isEmpty, "\(name) left \(Self.temporaryFiles(h.dir))\n\(h.report())")
            }
        }

        /// Temporary files of a dead process for the same output are removed by the next run;
        /// those of a live process and every other file are kept.
        @Test func theNextRunRemovesTheTemporaryFilesOfADeadRun() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            try CLI.succeed(["dataset", "mixture:8", "--rows", "300", "--seed", "5", "--output", "small.npy", "--dtype", "float32"], in: h.dir.path)
            let dead = "2147483000"  // above any pid_max: no such process
            let live = String(getpid())
            let stale = [".lp.npy.tmp-\(dead)-0", ".lp.npy.tmp-\(dead)-17", ".z.npy.tmp-\(dead)-0", ".lp.npy.unscored.csv.tmp-\(dead)-0",
                         ".s.npy.tmp-\(dead)-0"]
            let kept = [".lp.npy.tmp-\(live)-0", ".lp.npy.tmpx", "lp.npy.tmp-\(dead)-0", ".other.npy.tmp-\(dead)-0", ".lp.npy.tmp-\(dead)-",
                        ".lp.npy.tmp-x\(dead)-0", "lp.npy.partial-\(dead)"]
            for name in stale + kept { try h.dir.write("x", to: name) }
            let run = try CLI.succeed(
                ["score", "--model", "model.safetensors", "--input", "small.npy", "--output", "lp.npy", "--latent", "z.npy"], in: h.dir.path)
            let sample = try CLI.succeed(["sample", "--model", "model.safetensors", "--count", "10", "--output", "s.npy"], in: h.dir.path)
            for name in stale {
                #expect(!FileManager.default.fileExists(atPath: h.dir.file(name)), "\(name) was not removed\n\(run)\n\(sample)")
            }
            for name in kept {
                #expect(FileManager.default.fileExists(atPath: h.dir.file(name)), "\(name) was removed\n\(run)")
            }
            #expect(run.stderr.contains("removed") && run.stderr.contains(".lp.npy.tmp-\(dead)-0"), "\(run)")
            #expect(sample.stderr.contains(".s.npy.tmp-\(dead)-0"), "\(sample)")
        }

        /// `score --bind` on an address in use fails before the job starts and leaves no
        /// journal, so a fresh run of the same job is not blocked.
        @Test func aFailedBindLeavesNoJournal() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            try CLI.succeed(["dataset", "mixture:8", "--rows", "3000", "--seed", "5", "--output", "small.npy", "--dtype", "float32"], in: h.dir.path)
            let listener = try TCPListener()
            defer { listener.close() }
            let score = ["score", "--model", "model.safetensors", "--input", "small.npy", "--output", "lp.npy", "--chunk", "1000"]
            let failed = try CLI.run(score + ["--bind", "tcp://127.0.0.1:\(listener.port)"], in: h.dir.path)
            #expect(failed.status != 0 && failed.stderr.contains("in use"), "\(failed)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("lp.npy.journal")), "\(failed)")
            // An explicit journal directory that existed before is kept, without a journal in it.
            try FileManager.default.createDirectory(atPath: h.dir.file("j"), withIntermediateDirectories: false)
            let again = try CLI.run(score + ["--bind", "tcp://127.0.0.1:\(listener.port)", "--journal", "j"], in: h.dir.path)
            #expect(again.status != 0, "\(again)")
            #expect(FileManager.default.fileExists(atPath: h.dir.file("j")) && !FileManager.default.fileExists(atPath: h.dir.file("j/journal")))
            try CLI.succeed(score + ["--workers", "1"], in: h.dir.path, timeout: 60)
            try CLI.succeed(score + ["--workers", "1", "--journal", "j", "--output", "lp2.npy"], in: h.dir.path, timeout: 60)
        }

        /// Not one row scorable: the outputs and the report are written, and the exit code is
        /// 65, in one process and on a cluster.
        @Test func aRunWithNoScorableRowExits65() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir, ["model.safetensors"])
            try h.dir.write("a,b,c,d,e,f,g,h\nnan,0,0,0,0,0,0,0\n1,2,3\ninf,1,1,1,1,1,1,1\n", to: "bad.csv")
            for extra in [[], ["--workers", "1"]] {
                let run = try CLI.run(["score", "--model", "model.safetensors", "--input", "bad.csv", "--output", "lp.csv"] + extra, in: h.dir.path)
                #expect(run.status == 65, "\(run)")
                #expect(run.stderr.contains("Error: all 3 rows of bad.csv could not be scored"), "\(run)")
                #expect(run.stderr.contains("lp.csv.unscored.csv"), "\(run)")
                #expect(FileManager.default.fileExists(atPath: h.dir.file("lp.csv")))
                #expect(FileManager.default.fileExists(atPath: h.dir.file("lp.csv.unscored.csv")))
                try? FileManager.default.removeItem(atPath: h.dir.file("lp.csv"))
            }
            // One scorable row is enough for success.
            try h.dir.write("a,b,c,d,e,f,g,h\nnan,0,0,0,0,0,0,0\n0,0,0,0,0,0,0,0\n", to: "half.csv")
            try CLI.succeed(["score", "--model", "model.safetensors", "--input", "half.csv", "--output", "half.csv.lp.csv"], in: h.dir.path)
        }
    }
}
