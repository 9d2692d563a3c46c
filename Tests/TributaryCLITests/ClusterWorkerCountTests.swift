import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `train --workers N`: the same model bytes as one process, and no worker outlives it —
    /// whether it finishes, is interrupted, or is SIGKILLed.
    @Suite struct ClusterWorkerCountTests {
        /// Watches `train` until it exits and returns every `tributary worker` child it had.
        static func watchWorkers(of train: ClusterProcess, timeout: Double) -> [pid_t: ProcessEntry] {
            var seen: [pid_t: ProcessEntry] = [:]
            let deadline = Date().addingTimeInterval(timeout)
            while train.isRunning && Date() < deadline {
                for child in ProcessEntry.children(of: train.pid) where child.commandLine.contains(" worker ") {
                    seen[child.pid] = child
                }
                usleep(5_000)
            }
            return seen
        }

        /// Workers of `seen` still alive after waiting up to `timeout` (a zombie has exited; its
        /// command line is empty, so a reused pid is not mistaken for a worker either).
        static func survivors(_ seen: [pid_t: ProcessEntry], timeout: Double) -> [ProcessEntry] {
            var left: [ProcessEntry] = []
            let deadline = Date().addingTimeInterval(timeout)
            repeat {
                left = seen.keys.compactMap { ProcessEntry(pid: $0) }.filter { $0.state != "Z" && $0.commandLine.contains(" worker ") }
                if left.isEmpty { break }
                usleep(10_000)
            } while Date() < deadline
            return left
        }

        /// The metrics lines without the timing fields (and the worker count).
        /// The fields of a metrics file that the model's bits determine: without the timing ones
        /// (rates, elapsed time, workers, and the per-worker `wN_…` figures).
        static func numbers(_ path: String) -> [String] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").map { line in
                line.dropFirst().dropLast().split(separator: ",")
                    .filter { field in
                        !["\"samples_per_s\"", "\"elapsed_s\"", "\"workers\""].contains { field.hasPrefix($0) }
                            && !(field.hasPrefix("\"w") && field.dropFirst(2).first?.isNumber == true)
                    }
                    .joined(separator: ",")
            }
        }

        @Test func oneProcessOneWorkerAndThreeWorkersWriteTheSameModelFile() throws {
            let steps = 300
            let single = try TemporaryDirectory()
            defer { single.remove() }
            try CLI.succeed(["train"] + ClusterFixture.options(steps: steps) + ["--out", "model.safetensors", "--metrics", "metrics.jsonl"],
                            in: single.path, timeout: 60)
            let reference = try single.bytes("model.safetensors")
            let referenceNumbers = Self.numbers(single.file("metrics.jsonl"))
            #expect(referenceNumbers.count == steps)
            for workers in [1, 3] {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train", ["train"] + ClusterFixture.options(steps: steps) + [
                    "--workers", String(workers), "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                ])
                let seen = Self.watchWorkers(of: train, timeout: 60)
                h.expectSuccess(train, timeout: 5)
                #expect(seen.count == workers, "train --workers \(workers) had these worker children: \(Array(seen.values))\n\(h.report())")
                // No worker outlives train.
                let left = Self.survivors(seen, timeout: 2)
                #expect(left.isEmpty, "workers outlived train --workers \(workers): \(left)")

                let model = try h.dir.bytes("model.safetensors")
                let (same, difference) = sameBytes(model, reference)
                #expect(same, "train --workers \(workers) vs one process: \(difference)\n\(h.report())")
                // The same losses, validation NLLs and gradient norms, step by step.
                let numbers = Self.numbers(h.dir.file("metrics.jsonl"))
                let firstDifference = zip(numbers, referenceNumbers).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                #expect(numbers.count == steps && firstDifference == nil,
                        "metrics of --workers \(workers) differ from one process's at line \(firstDifference.map { $0 + 1 } ?? numbers.count): \(firstDifference.map { numbers[$0] + " vs " + referenceNumbers[$0] } ?? "")")
                #expect(train.stdout.contains("after \(steps) steps"), "\(train)")
            }
        }

        /// Plans that do not line up with the workers: more micro-batches per step than shards
        /// (several per leaf), a prime shard count with few micro-batches (nodes of odd shapes and
        /// empty leaves), float64, two threads per worker — 2 and 5 workers against one process,
        /// model bytes and metrics.
        @Test(arguments: [
            ["--shards", "7", "--batch", "240", "--micro-batch", "16"],
            ["--shards", "13", "--batch", "40", "--micro-batch", "8", "--threads", "2"],
            ["--shards", "5", "--batch", "96", "--micro-batch", "32", "--dtype", "float64"],
        ])
        func unalignedPlansGiveTheBytesOfOneProcessForTwoAndFiveWorkers(plan: [String]) throws {
            let options = ["--data", "moons", "--rows", "3001", "--couplings", "2", "--hidden", "16", "--seed", "11",
                           "--eval-every", "7", "--steps", "40"] + plan
            let single = try TemporaryDirectory()
            defer { single.remove() }
            try CLI.succeed(["train"] + options + ["--out", "model.safetensors", "--metrics", "metrics.jsonl"], in: single.path, timeout: 60)
            let reference = try single.bytes("model.safetensors")
            let referenceNumbers = Self.numbers(single.file("metrics.jsonl"))
            for workers in [2, 5] {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train", ["train"] + options + [
                    "--workers", String(workers), "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                ])
                h.expectSuccess(train, timeout: 90)
                #expect(train.stdout.contains("after 40 steps") && referenceNumbers.count == 40, "\(train)")
                #expect(train.stderr.components(separatedBy: ") joined").count - 1 == workers, "\(train)")
                let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference)
                #expect(same, "\(plan) with \(workers) workers vs one process: \(difference)\n\(h.report())")
                #expect(Self.numbers(h.dir.file("metrics.jsonl")) == referenceNumbers, "\(plan) with \(workers) workers: metrics differ")
            }
        }

        /// One of the workers of `train --workers 2` is SIGKILLed mid-run: the other carries on
        /// alone (`train` starts no replacement) and the model is still the same bytes.
        @Test func trainFinishesWhenOneOfItsWorkersDies() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let train = try h.start("train", ["train"] + ClusterFixture.options(steps: ClusterFixture.faultSteps) + [
                "--workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
            ])
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: train) else { return }
            let children = ProcessEntry.children(of: train.pid).filter { $0.commandLine.contains(" worker ") }
            let victim = try #require(children.first, "no worker children: \(h.report())")
            kill(victim.pid, SIGKILL)
            h.note("SIGKILL → worker \(victim.pid) of train")
            h.expectSuccess(train, timeout: 60)
            #expect(lines(of: train.stderr, containing: "lost").count == 1, "\(train)")
            #expect(h.lastStep(metrics: "metrics.jsonl") == ClusterFixture.faultSteps)
            try ClusterFaultTests.expectReferenceModel(h)
        }

        /// When every worker it started has died, `train --workers` fails with a message instead
        /// of waiting forever for workers that will never come.
        @Test func trainFailsWhenAllOfItsWorkersDie() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let train = try h.start("train", ["train"] + ClusterFixture.options(steps: 100_000) + [
                "--workers", "1", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
            ])
            guard h.waitForStep(50, metrics: "metrics.jsonl", while: train) else { return }
            let children = ProcessEntry.children(of: train.pid).filter { $0.commandLine.contains(" worker ") }
            let victim = try #require(children.first, "no worker children: \(h.report())")
            kill(victim.pid, SIGKILL)
            h.note("SIGKILL → the only worker \(victim.pid) of train")
            #expect(train.wait(timeout: 20), "train kept waiting after its last worker died")
            #expect(train.exitCode == 1, "\(train)")
            #expect(train.stderr.contains("all 1 worker processes exited"), "\(train)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("model.safetensors")))
        }

        /// The directories `train --workers` (process `pid`) made for its IPC endpoint.
        static func endpointDirectories(of pid: pid_t) -> [String] {
            let temporary = FileManager.default.temporaryDirectory.path
            let names = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
            return names.filter { $0.hasPrefix("tributary-\(pid)-") }.map { temporary + "/" + $0 }
        }

        /// SIGTERM (Ctrl-C alike) ends `train --workers` and its workers at once, and removes
        /// its IPC endpoint's directory.
        @Test func aTerminatedTrainTakesItsWorkersWithIt() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let train = try h.start("train", ["train"] + ClusterFixture.options(steps: 100_000) + [
                "--workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
            ])
            guard h.waitForStep(100, metrics: "metrics.jsonl", while: train) else { return }
            let seen = Dictionary(uniqueKeysWithValues: ProcessEntry.children(of: train.pid)
                .filter { $0.commandLine.contains(" worker ") }.map { ($0.pid, $0) })
            #expect(seen.count == 2, "\(Array(seen.values))")
            h.signal(train, SIGTERM)
            #expect(train.wait(timeout: 10), "train ignored SIGTERM")
            #expect(train.exitCode == 128 + SIGTERM, "\(train)")
            let left = Self.survivors(seen, timeout: 2)
            #expect(left.isEmpty, "workers outlived a SIGTERMed train: \(left)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("model.safetensors")))
            let leftDirectories = Self.endpointDirectories(of: train.pid)
            #expect(leftDirectories.isEmpty, "a SIGTERMed train left \(leftDirectories)")
            for path in leftDirectories { try? FileManager.default.removeItem(atPath: path) }
        }

        /// A SIGKILLed `train --workers` cannot clean up: its workers notice that their parent is
        /// gone and exit by themselves.
        @Test func workersOfAKilledTrainExitByThemselves() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let train = try h.start("train", ["train"] + ClusterFixture.options(steps: 100_000) + [
                "--workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
            ])
            guard h.waitForStep(100, metrics: "metrics.jsonl", while: train) else { return }
            let seen = Dictionary(uniqueKeysWithValues: ProcessEntry.children(of: train.pid)
                .filter { $0.commandLine.contains(" worker ") }.map { ($0.pid, $0) })
            #expect(seen.count == 2, "\(Array(seen.values))")
            h.signal(train, SIGKILL)
            train.wait(timeout: 5)
            let left = Self.survivors(seen, timeout: 5)
            #expect(left.isEmpty, "workers outlived a SIGKILLed train by 5 s: \(left)")
            // A SIGKILLed process cannot remove its IPC endpoint's directory: the test does.
            for path in Self.endpointDirectories(of: train.pid) { try? FileManager.default.removeItem(atPath: path) }
        }
    }
}
