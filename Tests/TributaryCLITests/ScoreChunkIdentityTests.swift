import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `score` writes the bytes of a plain one-process run whatever `--chunk` (aligned to the
    /// 1024-row blocks or not, 1 row, larger than the file), `--threads`, number of workers, and
    /// after `--resume`: rows are evaluated in blocks at absolute row positions.
    @Suite struct ScoreChunkIdentityTests {
        /// A small D = 5 model (fast to train and to score) and `x.npy` of `rows` float32 rows.
        static func smallFiles(in dir: TemporaryDirectory, rows: Int) throws {
            try CLI.succeed([
                "train", "--data", "mixture:5", "--rows", "2000", "--steps", "20", "--batch", "256", "--couplings", "4",
                "--hidden", "32", "--eval-every", "20", "--seed", "3", "--out", "model.safetensors",
            ], in: dir.path, timeout: 60)
            try CLI.succeed(
                ["dataset", "mixture:5", "--rows", String(rows), "--seed", "5", "--output", "x.npy", "--dtype", "float32"], in: dir.path)
        }

        static let score = ["score", "--model", "model.safetensors", "--input", "x.npy"]

        static func expectSame(_ dir: TemporaryDirectory, _ name: String, as reference: String, _ run: CLI.Result,
                               sourceLocation: SourceLocation = #_sourceLocation) {
            let a = try? dir.bytes(name), b = try? dir.bytes(reference)
            let first = a.flatMap { a in b.flatMap { b in zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset } }
            #expect(a != nil && a == b, "\(name) differs from \(reference) (\(a?.count ?? -1) vs \(b?.count ?? -1) bytes, first difference at byte \(first.map(String.init) ?? "-"))\n\(run)",
                    sourceLocation: sourceLocation)
        }

        @Test func anyChunkThreadAndWorkerCountGivesTheOneProcessBytes() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try Self.smallFiles(in: h.dir, rows: 100_003)
            let reference = try CLI.succeed(Self.score + ["--output", "ref.npy", "--latent", "ref-z.npy"], in: h.dir.path, timeout: 60)
            #expect(reference.stdout.contains("scored 100003 rows"), "\(reference)")
            let runs: [[String]] = [
                ["--chunk", "1000"], ["--chunk", "4097"], ["--chunk", "50000"], ["--chunk", "200000"],
                ["--chunk", "4097", "--threads", "2"], ["--chunk", "1000", "--threads", "3"],
                ["--chunk", "1000", "--workers", "1"], ["--chunk", "4097", "--workers", "2", "--threads", "2"],
                ["--chunk", "50000", "--workers", "3", "--threads", "3"],
            ]
            for (i, options) in runs.enumerated() {
                let run = try CLI.succeed(Self.score + ["--output", "o\(i).npy", "--latent", "z\(i).npy"] + options, in: h.dir.path, timeout: 120)
                Self.expectSame(h.dir, "o\(i).npy", as: "ref.npy", run)
                Self.expectSame(h.dir, "z\(i).npy", as: "ref-z.npy", run)
            }
        }

        /// Chunks of 1 and 7 rows (each pads its block) on a small odd file.
        @Test func tinyChunksGiveTheOneProcessBytes() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try Self.smallFiles(in: h.dir, rows: 2053)
            try CLI.succeed(Self.score + ["--output", "ref.npy"], in: h.dir.path, timeout: 60)
            for (i, options) in [["--chunk", "1"], ["--chunk", "7", "--threads", "2"], ["--chunk", "7", "--workers", "2"]].enumerated() {
                let run = try CLI.succeed(Self.score + ["--output", "o\(i).npy"] + options, in: h.dir.path, timeout: 120)
                Self.expectSame(h.dir, "o\(i).npy", as: "ref.npy", run)
            }
        }

        /// `sample --log-prob` evaluates its last, partial block padded to a full one: the first
        /// N samples of a larger count are the samples of `--count N`, on any thread count.
        @Test func theSamplesOfASmallerCountAreAPrefixOfALargerOne() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try Self.smallFiles(in: h.dir, rows: 10)
            let sample = ["sample", "--model", "model.safetensors", "--seed", "4"]
            try CLI.succeed(sample + ["--count", "9001", "--threads", "2", "--output", "b.csv", "--log-prob", "b-lp.csv"], in: h.dir.path)
            // Small counts are where the old code differed (a block of 1, 13 rows vs. 1,024).
            for count in [1, 13, 1000] {
                try CLI.succeed(sample + ["--count", String(count), "--output", "a.csv", "--log-prob", "a-lp.csv"], in: h.dir.path)
                for (small, large) in [("a.csv", "b.csv"), ("a-lp.csv", "b-lp.csv")] {
                    let a = try String(contentsOfFile: h.dir.file(small), encoding: .utf8).split(separator: "\n")
                    let b = try String(contentsOfFile: h.dir.file(large), encoding: .utf8).split(separator: "\n")
                    #expect(a.count == count + 1 && b.count == 9002)
                    let differing = zip(a, b).enumerated().filter { $0.element.0 != $0.element.1 }.map(\.offset)
                    #expect(differing.isEmpty, "--count \(count): \(small) vs \(large): lines \(differing.prefix(5)) differ")
                }
            }
        }

        /// A coordinator with unaligned chunks SIGKILLed mid-job and resumed: the one-process
        /// bytes, and no temporary file of either run is left.
        @Test func aResumedRunWithUnalignedChunksGivesTheOneProcessBytes() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try ScoringFixture.copy(into: h.dir)
            let score = ["score", "--model", "model.safetensors", "--input", "x.npy"]
            try CLI.succeed(score + ["--output", "one.npy"], in: h.dir.path, timeout: 60)
            let chunked = score + ["--chunk", "4097", "--output", "cluster.npy"]
            let first = try h.start("first", chunked + ["--workers", "2"])
            let journal = h.dir.file("cluster.npy.journal/journal")
            let going = h.waitUntil(timeout: 60) { ScoringFixture.journalRecords(journal).count >= 8 || !first.isRunning }
            #expect(going && first.isRunning, "\(h.report())")
            h.signal(first, SIGKILL)
            first.wait(timeout: 5)
            let journaled = ScoringFixture.journalRecords(journal).count
            #expect(journaled >= 8 && journaled < 74, "\(journaled) of 74 chunks journaled")
            let resumed = try CLI.succeed(chunked + ["--workers", "3", "--threads", "2", "--resume"], in: h.dir.path, timeout: 120)
            #expect(resumed.stdout.contains("taken from the journal") && !resumed.stdout.contains(" 0 taken from the journal"), "\(resumed)")
            Self.expectSame(h.dir, "cluster.npy", as: "one.npy", resumed)
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: h.dir.path).filter { $0.contains(".tmp-") || $0.contains(".partial-") }
            #expect(leftovers.isEmpty, "temporary files left: \(leftovers)\n\(resumed)")
        }
    }
}
