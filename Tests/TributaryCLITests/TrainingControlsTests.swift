import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options that exercise every training control at once: a cosine schedule with warm-up and a
/// floor, AdamW, keep-best and early stopping. On the cluster fixture the run stops early at
/// step 2100 of 3000 and keeps step 1700, so a resumed run must carry the schedule position,
/// the decay, the best parameters and the count of evaluations without improvement.
enum ControlsFixture {
    static let steps = 3000
    static let controls = [
        "--lr", "0.003", "--lr-schedule", "cosine", "--warmup", "100", "--min-lr", "1e-4", "--weight-decay", "0.01",
        "--keep-best", "--early-stop", "8", "--eval-every", "50",
    ]
    static var options: [String] { ClusterFixture.options(steps: steps) + controls }

    /// The uninterrupted single-process run's model and metrics (step, loss, NLL, rate, norm).
    static func reference(in dir: TemporaryDirectory) throws -> (model: Data, metrics: [String], stdout: String, stderr: String) {
        let result = try CLI.succeed(
            ["train"] + options + ["--out", "reference.safetensors", "--metrics", "reference.jsonl"], in: dir.path, timeout: 120)
        return (
            try dir.bytes("reference.safetensors"), ClusterTests.ClusterWorkerCountTests.numbers(dir.file("reference.jsonl")),
            result.stdout, result.stderr
        )
    }

    /// The `__metadata__` of a safetensors file.
    static func metadata(_ data: Data) -> [String: String] {
        guard data.count >= 8 else { return [:] }
        let length = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard data.count >= 8 + length,
            let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + length))) as? [String: Any]
        else { return [:] }
        return header["__metadata__"] as? [String: String] ?? [:]
    }
}

extension ClusterTests {
    /// `--lr-schedule`, `--warmup`, `--min-lr`, `--weight-decay`, `--keep-best` and `--early-stop`:
    /// the same bits for any worker count and across an interruption and `--resume`, for `train`,
    /// `train --workers 2` and `coordinator`; refusals that name the option.
    @Suite struct TrainingControlsTests {
        @Test func controlsGiveTheSameBytesForAnyWorkerCount() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let reference = try ControlsFixture.reference(in: dir)
            // The run stops early, says so, and writes the best step's parameters with that step.
            #expect(reference.stderr.contains("early stop at step 2100 of 3000"), "\(reference.stderr)")
            #expect(reference.stderr.contains("keep-best: writing the parameters of step 1700"), "\(reference.stderr)")
            #expect(reference.stdout.contains("at step 1700 of 2100 trained"), "\(reference.stdout)")
            #expect(reference.metrics.count == 2100)
            let metadata = ControlsFixture.metadata(reference.model)
            #expect(
                metadata["step"] == "1700" && metadata["best_step"] == "1700" && metadata["trained_steps"] == "2100"
                    && metadata["early_stop_step"] == "2100" && metadata["best_validation_nll"] != nil, "\(metadata)")
            // The metrics record each step's learning rate: warm-up, then the cosine.
            let lines = try String(contentsOfFile: dir.file("reference.jsonl"), encoding: .utf8).split(separator: "\n")
            #expect(lines.first?.contains("\"lr\":3e-05") == true, "\(lines.first ?? "")")
            #expect(lines[99].contains("\"lr\":0.003,") || lines[99].contains("\"lr\":0.003}"), "\(lines[99])")

            for workers in [1, 3] {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start(
                    "train",
                    ["train"] + ControlsFixture.options + [
                        "--workers", String(workers), "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                    ])
                h.expectSuccess(train, timeout: 120)
                let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference.model)
                #expect(same, "train --workers \(workers) vs one process: \(difference)\n\(h.report())")
                let numbers = ClusterWorkerCountTests.numbers(h.dir.file("metrics.jsonl"))
                let first = zip(numbers, reference.metrics).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                #expect(
                    numbers.count == reference.metrics.count && first == nil,
                    "metrics of --workers \(workers) differ at line \(first.map { $0 + 1 } ?? numbers.count)")
                #expect(train.stderr.contains("early stop at step 2100"), "\(train)")
            }
        }

        enum Runner: String, CaseIterable, CustomTestStringConvertible {
            case train, localCluster, coordinator
            var testDescription: String { rawValue }
        }

        /// Interrupted (SIGINT, or SIGTERM for `train --workers 2`) after a checkpoint, then
        /// rerun with `--resume`: the bytes and metrics of the uninterrupted run.
        @Test(arguments: Runner.allCases)
        func anInterruptedRunResumesToTheBytesOfAnUninterruptedOne(runner: Runner) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let reference = try ControlsFixture.reference(in: h.dir)
            let checkpointing = ["--checkpoint-dir", "checkpoints", "--checkpoint-every", "250"]
            let outputs = ["--out", "model.safetensors", "--metrics", "metrics.jsonl"]
            let endpoint = "ipc://\(h.dir.path)/coordinator.ipc"
            func command(resume: Bool) -> [String] {
                let tail = checkpointing + (resume ? ["--resume"] : [])
                switch runner {
                case .train: return ["train"] + ControlsFixture.options + outputs + tail
                case .localCluster: return ["train"] + ControlsFixture.options + outputs + ["--workers", "2"] + tail
                case .coordinator:
                    return ["coordinator"] + ControlsFixture.options + outputs + ["--bind", endpoint] + tail
                }
            }
            let signal = runner == .localCluster ? SIGTERM : SIGINT
            let first = try h.start("first", command(resume: false))
            var worker: ClusterProcess?
            if runner == .coordinator { worker = try h.start("worker-1", ClusterCommand.worker(endpoint, name: "w1")) }
            guard h.waitForStep(600, metrics: "metrics.jsonl", while: first) else { return }
            h.signal(first, signal)
            #expect(first.wait(timeout: 20), "the first run ignored the signal")
            #expect(first.exitCode == 128 + signal, "\(first)")
            let line = lines(of: first.stderr, containing: "interrupted by").first ?? ""
            let words = line.split(separator: " ").map(String.init)
            let at = words.firstIndex(of: "step").flatMap { Int(words[$0 + 1].trimmingCharacters(in: CharacterSet(charactersIn: ";"))) }
            let saved = words.firstIndex(of: "(step").flatMap {
                Int(words[$0 + 1].trimmingCharacters(in: CharacterSet(charactersIn: ");")))
            }
            #expect(line.contains("state in checkpoints") && line.contains("rerun the same command with --resume to continue"), "\(first)")
            if let at, let saved {
                #expect(saved >= 500 && saved % 250 == 0 && saved <= at && at < 2100, "interrupted at \(at), saved \(saved)")
            } else {
                Issue.record("no steps in the interruption line: \(line)")
            }
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("model.safetensors")), "an interrupted run wrote a model")
            if let worker {
                // The coordinator's worker waits for it to come back; it is still running.
                #expect(worker.isRunning, "\(worker)")
            }

            let second = try h.start("second", command(resume: true))
            h.expectSuccess(second, timeout: 120)
            if let worker { h.expectSuccess(worker, timeout: 30) }
            #expect(second.stderr.contains("resuming from"), "\(second)")
            let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference.model)
            #expect(same, "\(runner) interrupted and resumed vs uninterrupted: \(difference)\n\(h.report())")
            let numbers = ClusterWorkerCountTests.numbers(h.dir.file("metrics.jsonl"))
            let firstDifference = zip(numbers, reference.metrics).enumerated().first { $0.element.0 != $0.element.1 }?.offset
            #expect(
                numbers.count == reference.metrics.count && firstDifference == nil,
                "metrics after the resume differ at line \(firstDifference.map { $0 + 1 } ?? numbers.count) (\(numbers.count) lines)")
            // Resuming the finished (early-stopped) run again trains nothing and writes the same model.
            let again = try CLI.run(command(resume: true), in: h.dir.path, timeout: 60)
            #expect(again.status == 0 && again.stderr.contains("--early-stop ended that run at step 2100"), "\(again)")
            #expect(try h.dir.bytes("model.safetensors") == reference.model)
        }

        /// Without --checkpoint-dir an interruption says that nothing was saved and how to save.
        @Test func anInterruptedRunWithoutCheckpointsSaysNothingWasSaved() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let run = try h.start(
                "train", ["train"] + ClusterFixture.options(steps: 1_000_000) + ["--out", "m.safetensors", "--metrics", "metrics.jsonl"])
            guard h.waitForStep(50, metrics: "metrics.jsonl", while: run) else { return }
            h.signal(run, SIGTERM)
            #expect(run.wait(timeout: 20))
            #expect(run.exitCode == 128 + SIGTERM, "\(run)")
            #expect(
                run.stderr.contains("interrupted by SIGTERM at step")
                    && run.stderr.contains("nothing was saved: rerun with --checkpoint-dir"), "\(run)")
        }

        @Test(arguments: [
            (["--weight-decay", "0.02"], "--weight-decay differs: checkpoint 0.01, command line 0.02"),
            (["--warmup", "50"], "--warmup differs: checkpoint 100, command line 50"),
            (["--lr-schedule", "constant", "--min-lr", "0"], "--lr-schedule differs: checkpoint cosine, command line constant"),
            (["--early-stop", "9"], "--early-stop differs: checkpoint 8, command line 9"),
            (["--steps", "300"], "--steps (the cosine schedule spans them) differs: checkpoint 200, command line 300"),
        ])
        func aResumeWithOtherControlsIsRefusedNamingTheField(change: [String], message: String) throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let options =
                ClusterFixture.options(steps: 200) + ControlsFixture.controls + ["--out", "m.safetensors", "--checkpoint-dir", "ck"]
            try CLI.succeed(["train"] + options, in: dir.path, timeout: 60)
            let result = try CLI.run(["train"] + options + ["--resume"] + change, in: dir.path, timeout: 30)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(message) && result.stderr.contains("ck/checkpoint.safetensors"), "\(result)")
        }

        @Test(arguments: [
            (["--keep-best", "--validation", "0"], "--keep-best compares the validation NLL: it needs --validation above 0"),
            (["--early-stop", "3", "--validation", "0"], "--early-stop compares the validation NLL: it needs --validation above 0"),
            (["--early-stop", "0"], "--early-stop must be at least 1 evaluation, found 0"),
            (["--warmup", "500"], "--warmup must be in 0...--steps (200), found 500"),
            (["--min-lr", "0.1"], "--min-lr must be in 0...--lr (0.001), found 0.1"),
            (["--min-lr", "1e-5"], "--min-lr is the floor of --lr-schedule cosine"),
            (["--weight-decay", "-1"], "--weight-decay must be 0 or more, found -1.0"),
            (["--resume"], "--resume needs --checkpoint-dir"),
        ])
        func badControlsAreRefusedBeforeTraining(change: [String], message: String) throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let result = try CLI.run(
                ["train"] + ClusterFixture.options(steps: 200) + ["--out", "m.safetensors"] + change, in: dir.path, timeout: 30)
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("m.safetensors")))
        }
    }
}
