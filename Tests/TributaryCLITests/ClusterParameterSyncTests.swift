import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `--sync parameters` (local SGD) with real processes: it learns, it is reproducible for a
    /// fixed set of workers, it survives a SIGKILLed worker, and one process refuses it.
    @Suite struct ClusterParameterSyncTests {
        static func options(steps: Int) -> [String] {
            ["--data", "8gaussians", "--rows", "8000", "--batch", "512", "--micro-batch", "64", "--couplings", "4",
             "--hidden", "32", "--seed", "3", "--eval-every", "50", "--steps", String(steps),
             "--sync", "parameters", "--local-steps", "5", "--lr", "0.003"]
        }

        /// The validation NLLs of a metrics file, in order.
        static func validationNLLs(_ path: String) -> [Double] {
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let range = line.range(of: "\"val_nll\":") else { return nil }
                return Double(line[range.upperBound...].prefix { $0 != "," && $0 != "}" })
            }
        }

        @Test func twoWorkersLearnAndTwoRunsWriteTheSameModel() throws {
            let steps = 400
            var models: [Data] = []
            for run in 0..<2 {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train-\(run)", ["train"] + Self.options(steps: steps) + [
                    "--workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                ])
                h.expectSuccess(train, timeout: 120)
                #expect(train.stderr.contains("sync=parameters with 5 local steps per round"), "\(train)")
                #expect(train.stdout.contains("after \(steps) steps"), "\(train)")
                let nll = Self.validationNLLs(h.dir.file("metrics.jsonl"))
                // 8 gaussians: a fresh flow starts near 5 nats; a trained one is near 3.
                #expect(nll.count == steps / 50, "\(nll)")
                if let first = nll.first, let last = nll.last {
                    #expect(last < 3.7 && last < first - 0.3, "validation NLL \(first) → \(last)")
                }
                models.append(try h.dir.bytes("model.safetensors"))
            }
            let (same, difference) = sameBytes(models[0], models[1])
            #expect(same, "two --workers 2 runs with --sync parameters differ: \(difference)")
        }

        @Test func aSIGKILLedWorkersUnitsAreRedoneAndTheJobFinishes() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let steps = 2000
            let coordinator = try h.start("coordinator", ["coordinator"] + Self.options(steps: steps) + [
                "--bind", endpoint, "--min-workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
            ])
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(200, metrics: "metrics.jsonl", while: coordinator) else { return }
            h.signal(w2, SIGKILL)
            h.expectSuccess(coordinator, timeout: 120)
            h.expectSuccess(w1, timeout: 10)
            #expect(!lines(of: coordinator.stderr, containing: "lost").isEmpty, "the coordinator did not notice\n\(coordinator)")
            #expect(h.lastStep(metrics: "metrics.jsonl") == steps)
            let nll = Self.validationNLLs(h.dir.file("metrics.jsonl"))
            #expect((nll.last ?? 99) < 3.6, "\(nll)")
        }

        /// With a fixed number of workers a round's units are the same whoever computes them, so a
        /// coordinator SIGKILLed and resumed from a checkpoint (counted in rounds) finishes with the
        /// bytes of an uninterrupted `train --workers 2` run.
        @Test func aResumedCoordinatorFinishesWithTheBytesOfAnUninterruptedRun() throws {
            let steps = 1500
            let reference: Data
            do {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train", ["train"] + Self.options(steps: steps) + ["--workers", "2", "--out", "model.safetensors"])
                h.expectSuccess(train, timeout: 120)
                reference = try h.dir.bytes("model.safetensors")
            }
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let command = ["coordinator"] + Self.options(steps: steps) + [
                "--bind", endpoint, "--min-workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                "--checkpoint-dir", "checkpoints", "--checkpoint-every", "7",
            ]
            let first = try h.start("coordinator-1", command)
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(400, metrics: "metrics.jsonl", while: first) else { return }
            h.signal(first, SIGKILL)
            first.wait(timeout: 5)
            #expect(h.lastStep(metrics: "metrics.jsonl") < steps, "the run ended before the coordinator was killed")
            let second = try h.start("coordinator-2", command + ["--resume"])
            h.expectSuccess(second, timeout: 120)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            let resumed = lines(of: second.stderr, containing: "resuming from")
            #expect(resumed.count == 1 && resumed[0].hasSuffix("step \(resumed[0].split(separator: " ").last ?? "")"), "\(second)")
            if let step = resumed.first?.split(separator: " ").last.flatMap({ Int($0) }) {
                #expect(step > 0 && step % (7 * 5) == 0, "a checkpoint every 7 rounds of 5 steps, resumed at \(step)")
            }
            let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference)
            #expect(same, "resumed --sync parameters run vs an uninterrupted one: \(difference)\n\(h.report())")
        }

        /// With `--sync parameters` the coordinator only averages: the schedule and the decay act
        /// in the workers' local steps alone, so they reach the workers exactly when changing one of
        /// them changes the model. Two runs with the same controls write the same bytes.
        @Test func theScheduleAndTheDecayReachTheWorkersLocalSteps() throws {
            let steps = 100
            let controls = ["--lr-schedule", "cosine", "--warmup", "20", "--min-lr", "1e-4", "--weight-decay", "0.05"]
            func model(_ extra: [String], tag: String) throws -> Data {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train-\(tag)", ["train"] + Self.options(steps: steps) + ["--workers", "2", "--out", "model.safetensors"] + extra)
                h.expectSuccess(train, timeout: 120)
                return try h.dir.bytes("model.safetensors")
            }
            let reference = try model(controls, tag: "controls")
            #expect(try model(controls, tag: "again") == reference, "two runs with the same controls differ")
            #expect(try model(controls + ["--weight-decay", "0"], tag: "no-decay") != reference, "the weight decay did not reach the workers")
            #expect(try model(controls + ["--lr-schedule", "constant", "--min-lr", "0"], tag: "constant") != reference,
                    "the schedule did not reach the workers")
        }

        @Test func oneProcessRefusesParameterSync() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let result = try CLI.run(["train"] + Self.options(steps: 10) + ["--out", "m.safetensors"], in: dir.path, timeout: 30)
            #expect(result.status != 0)
            #expect(result.stderr.contains("--sync parameters"), "\(result.stderr)")
            let local = try CLI.run(["train"] + ClusterFixture.options(steps: 10) + ["--local-steps", "4", "--out", "m.safetensors"],
                                    in: dir.path, timeout: 30)
            #expect(local.status != 0 && local.stderr.contains("--local-steps applies to --sync parameters only"), "\(local.stderr)")
        }
    }
}
