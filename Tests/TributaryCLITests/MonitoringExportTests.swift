import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads what `--tensorboard` and `--prometheus-textfile` wrote with the readers the users' tools
/// use: TensorBoard's `EventAccumulator` and `prometheus_client`'s parser (installed by
/// scripts/test.sh; the tests are skipped with one line where they are missing).
enum ExporterReaders {
    static let available: Bool = {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import tensorboard.backend.event_processing.event_accumulator, prometheus_client.parser"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }()

    static let script = """
        import json, sys
        kind, path = sys.argv[1], sys.argv[2]
        if kind == "tensorboard":
            from tensorboard.backend.event_processing import event_accumulator
            ea = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.SCALARS: 0})
            ea.Reload()
            print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
        else:
            from prometheus_client.parser import text_string_to_metric_families
            out = {}
            for family in text_string_to_metric_families(open(path).read()):
                for s in family.samples:
                    out.setdefault(s.name, []).append([s.labels, s.value])
            print(json.dumps(out))
        """

    /// The JSON the reader prints for `kind` ("tensorboard" or "prometheus") at `path`.
    static func read(_ kind: String, _ path: String, in dir: TemporaryDirectory) throws -> [String: [[Any]]] {
        try dir.write(script, to: "read_exports.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", dir.file("read_exports.py"), kind, path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "the \(kind) reader failed on \(path)")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: [[Any]]])
    }

    /// A TensorBoard scalar series as (step, value).
    static func series(_ all: [String: [[Any]]], _ tag: String) -> [(step: Int, value: Double)] {
        (all[tag] ?? []).map { (($0[0] as? NSNumber)?.intValue ?? -1, ($0[1] as? NSNumber)?.doubleValue ?? .nan) }
    }

    /// The one value of a Prometheus sample without labels.
    static func value(_ all: [String: [[Any]]], _ name: String) -> Double? {
        (all[name]?.first?[1] as? NSNumber)?.doubleValue
    }

    /// (step, loss) and (step, val_nll) of a metrics file, each number parsed by `Double(_:)`
    /// (exactly the value written; Foundation's JSON parser may miss the last bit).
    static func metrics(_ path: String) -> (loss: [(Int, Double)], validation: [(Int, Double)]) {
        func field(_ name: String, in line: Substring) -> Double? {
            guard let range = line.range(of: "\"\(name)\":") else { return nil }
            return Double(line[range.upperBound...].prefix { $0 != "," && $0 != "}" })
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        var loss: [(Int, Double)] = [], validation: [(Int, Double)] = []
        for line in text.split(separator: "\n") {
            guard let step = field("step", in: line).map({ Int($0) }) else { continue }
            if let l = field("loss", in: line) { loss.append((step, l)) }
            if let v = field("val_nll", in: line) { validation.append((step, v)) }
        }
        return (loss, validation)
    }

    /// Where a TensorBoard series differs from `expected` (each step once, its value as a
    /// float), or nil when it does not.
    static func difference(_ series: [(step: Int, value: Double)], _ expected: [(Int, Double)]) -> String? {
        if let i = zip(series, expected).enumerated().first(where: { $0.element.0.step != $0.element.1.0 || Float($0.element.0.value) != Float($0.element.1.1) })?.offset {
            return "point \(i): step \(series[i].step) value \(series[i].value), expected step \(expected[i].0) value \(expected[i].1)"
        }
        return series.count == expected.count ? nil : "\(series.count) points, expected \(expected.count)"
    }
}

extension ClusterTests {
    @Suite struct MonitoringExportTests {
        @Test(.enabled(if: ExporterReaders.available, "needs python3 with tensorboard and prometheus_client (scripts/test.sh installs them); skipped"))
        func aLocalClusterRunIsReadableByTensorBoardAndPrometheus() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let run = try h.start("train", ["train"] + ClusterFixture.options(steps: 300) + [
                "--workers", "2", "--out", "model.safetensors", "--metrics", "metrics.jsonl", "--tensorboard", "runs/tb",
                "--prometheus-textfile", "run.prom",
            ])
            h.expectSuccess(run, timeout: 120)
            // The directory and its missing parent are created, as TensorBoard's own writers do.
            let board = try ExporterReaders.read("tensorboard", h.dir.file("runs/tb"), in: h.dir)
            for tag in ["loss", "validation_nll", "grad_norm", "learning_rate", "samples_per_s", "workers"] {
                #expect(board[tag] != nil, "no \(tag) in \(board.keys.sorted())")
            }
            let metrics = ExporterReaders.metrics(h.dir.file("metrics.jsonl"))
            #expect(metrics.loss.count == 300)
            let lossDifference = ExporterReaders.difference(ExporterReaders.series(board, "loss"), metrics.loss)
            #expect(lossDifference == nil, "loss: \(lossDifference ?? "")")
            let validationDifference = ExporterReaders.difference(ExporterReaders.series(board, "validation_nll"), metrics.validation)
            #expect(validationDifference == nil, "validation_nll: \(validationDifference ?? "")")
            #expect(ExporterReaders.series(board, "workers").allSatisfy { $0.value == 2 })

            let prometheus = try ExporterReaders.read("prometheus", h.dir.file("run.prom"), in: h.dir)
            #expect(ExporterReaders.value(prometheus, "tributary_step") == 300)
            #expect(ExporterReaders.value(prometheus, "tributary_finished") == 1)
            #expect(ExporterReaders.value(prometheus, "tributary_live_workers") == 2)
            #expect((ExporterReaders.value(prometheus, "tributary_sent_bytes_total") ?? 0) > 0)
            #expect((ExporterReaders.value(prometheus, "tributary_received_bytes_total") ?? 0) > 0)
            #expect(ExporterReaders.value(prometheus, "tributary_reassigned_total") == 0)
            #expect(ExporterReaders.value(prometheus, "tributary_validation_nll").map { Float($0) } == metrics.validation.last.map { Float($0.1) })
            // Written atomically: no temporary file is left beside it.
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: h.dir.path).filter { $0.contains("run.prom") && $0 != "run.prom" }
            #expect(leftovers.isEmpty, "\(leftovers)")
        }

        /// A run interrupted after its checkpoint wrote events for steps it will compute again;
        /// the resumed run's file makes TensorBoard drop them, so each step is shown once, with
        /// the values of the metrics file (which `--resume` also rewrites).
        @Test(.enabled(if: ExporterReaders.available, "needs python3 with tensorboard and prometheus_client (scripts/test.sh installs them); skipped"))
        func aResumedRunShowsEachStepOnce() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let command = ["train"] + ClusterFixture.options(steps: 3000) + [
                "--out", "model.safetensors", "--metrics", "metrics.jsonl", "--tensorboard", "tb",
                "--checkpoint-dir", "checkpoints", "--checkpoint-every", "200",
            ]
            let first = try h.start("first", command)
            guard h.waitForStep(500, metrics: "metrics.jsonl", while: first) else { return }
            h.signal(first, SIGINT)
            #expect(first.wait(timeout: 20) && first.exitCode == 128 + SIGINT, "\(first)")
            let second = try h.start("second", command + ["--resume"])
            h.expectSuccess(second, timeout: 120)
            let board = try ExporterReaders.read("tensorboard", h.dir.file("tb"), in: h.dir)
            let loss = ExporterReaders.series(board, "loss")
            #expect(Set(loss.map(\.step)).count == loss.count, "a step appears twice")
            let difference = ExporterReaders.difference(loss, ExporterReaders.metrics(h.dir.file("metrics.jsonl")).loss)
            #expect(difference == nil, "loss after the resume: \(difference ?? "")")
            let files = try FileManager.default.contentsOfDirectory(atPath: h.dir.file("tb"))
            #expect(files.count == 2, "one event file per run: \(files)")
        }

        @Test(.enabled(if: ExporterReaders.available, "needs python3 with tensorboard and prometheus_client (scripts/test.sh installs them); skipped"))
        func clusterScoringWritesItsFiguresForPrometheus() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            try CLI.succeed(["train", "--data", "moons", "--rows", "2000", "--steps", "20", "--out", "m.safetensors"], in: dir.path, timeout: 60)
            try CLI.succeed(["dataset", "moons", "--rows", "5003", "--output", "rows.csv"], in: dir.path, timeout: 60)
            try CLI.succeed([
                "score", "--model", "m.safetensors", "--input", "rows.csv", "--output", "scores.csv", "--workers", "2",
                "--chunk", "1000", "--prometheus-textfile", "score.prom",
            ], in: dir.path, timeout: 120)
            let prometheus = try ExporterReaders.read("prometheus", dir.file("score.prom"), in: dir)
            #expect(ExporterReaders.value(prometheus, "tributary_rows_done") == 5003, "\(prometheus)")
            #expect(ExporterReaders.value(prometheus, "tributary_finished") == 1)
            #expect((ExporterReaders.value(prometheus, "tributary_received_bytes_total") ?? 0) > 0)
        }

        /// The rate in the first progress line does not count the time spent waiting for a worker
        /// (which, after a resume, can be long).
        @Test func theRateDoesNotCountTheWaitForWorkers() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = "ipc://\(h.dir.path)/coordinator.ipc"
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, steps: 60))
            Thread.sleep(forTimeInterval: 2)  // the wait that must not count (nothing to wait on: no worker yet)
            let worker = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            h.expectSuccess(coordinator, timeout: 60)
            h.expectSuccess(worker, timeout: 10)
            let text = (try? String(contentsOfFile: h.dir.file("metrics.jsonl"), encoding: .utf8)) ?? ""
            let rates = text.split(separator: "\n").compactMap { line -> Double? in
                guard let range = line.range(of: "\"samples_per_s\":") else { return nil }
                return Double(line[range.upperBound...].prefix { $0 != "," && $0 != "}" })
            }
            try #require(rates.count == 60)
            let median = rates.sorted()[30]
            // Counting 2 s of waiting would put the first step's rate below a tenth of the rest.
            #expect(rates[0] > median / 10, "first \(rates[0]) samples/s, median \(median)")
        }

        @Test func theOutputsAreCheckedBeforeTheRunStarts() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            try dir.write("not a directory", to: "taken")
            let board = try CLI.run(["train", "--data", "moons", "--steps", "5", "--out", "m.safetensors", "--tensorboard", "taken"], in: dir.path)
            #expect(board.status != 0 && board.stderr.contains("--tensorboard"), "\(board)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("m.safetensors")))
            let single = try CLI.run(["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "s.csv", "--prometheus-textfile", "s.prom"], in: dir.path)
            #expect(single.status == 64 && single.stderr.contains("--prometheus-textfile applies to cluster runs"), "\(single)")
        }
    }
}
