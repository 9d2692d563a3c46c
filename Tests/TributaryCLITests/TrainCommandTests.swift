import FlowData
import Flows
import Foundation
import Testing

/// `tributary train` end to end: the model file, the report, the metrics, determinism, and
/// user data files.
struct TrainCommandTests {
    /// More micro-batches per step than a plan supports (2^20) is refused before any data is
    /// generated or read, in one process and on the cluster, and no model file is written.
    @Test(arguments: [[], ["--workers", "2"]])
    func tooManyMicroBatchesPerStepAreRefusedUpFront(extra: [String]) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let start = Date()
        let result = try CLI.run(
            ["train", "--data", "moons", "--rows", "1000", "--batch", "2097152", "--micro-batch", "1", "--out", "m.safetensors"] + extra,
            in: dir.path, timeout: 30)
        #expect(result.status != 0 && result.stderr.contains("2097152 micro-batches per step; at most 1048576 (2^20) are supported"), "\(result)")
        #expect(Date().timeIntervalSince(start) < 10, "the refusal took \(Date().timeIntervalSince(start)) s")
        #expect(!FileManager.default.fileExists(atPath: dir.file("m.safetensors")))
    }

    @Test func trainWritesAModelAndReportsTheValidationNLL() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(
            ["train", "--data", "moons", "--seed", "4", "--out", "moons.safetensors", "--metrics", "metrics.jsonl"] + quickTraining,
            in: dir.path)

        // "validation NLL 1.8123 nats after 30 steps; model written to moons.safetensors"
        #expect(result.stdout.contains("validation NLL "), "\(result)")
        #expect(result.stdout.contains("after 30 steps"), "\(result)")
        #expect(result.stdout.contains("moons.safetensors"), "\(result)")
        let words = result.stdout.split(separator: " ")
        let nll = words.firstIndex(of: "NLL").flatMap { Double(words[$0 + 1]) }
        let value = try #require(nll, "no number after \"validation NLL\": \(result)")
        #expect(value.isFinite && value > 0 && value < 3, "validation NLL \(value)")
        // The banner and progress go to standard error, not into the output.
        #expect(result.stderr.contains("training 3 couplings"), "\(result)")
        #expect(result.stderr.contains("step 30/30"), "\(result)")

        // The model file is a valid model with the run's facts.
        let (model, info) = try ModelFile.read(from: dir.file("moons.safetensors"))
        #expect(model.configuration == FlowConfiguration(dimension: 2, couplings: 3, hidden: 16, depth: 2))
        #expect(info.step == 30)
        #expect(info.seed == 4)
        #expect(info.metadata["dtype"] == "float32")
        guard case .float32(let flow) = model else {
            Issue.record("expected a float32 model")
            return
        }
        // Training moved the zero-initialised last layers.
        let last = flow.layout.layers[0][2]
        #expect(flow.parameters[last.weightOffset..<(last.biasOffset + last.output)].contains { $0 != 0 })

        // Metrics: one JSON object per step.
        let lines = try String(contentsOfFile: dir.file("metrics.jsonl"), encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 30)
        var steps: [Int] = []
        for (i, line) in lines.enumerated() {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let record = try #require(object, "line \(i + 1) is not a JSON object: \(line)")
            let step = try #require((record["step"] as? NSNumber)?.intValue, "line \(i + 1) lacks step: \(line)")
            steps.append(step)
            let loss = try #require((record["loss"] as? NSNumber)?.doubleValue, "line \(i + 1) lacks loss: \(line)")
            #expect(loss.isFinite)
            for key in ["samples_per_s", "elapsed_s", "grad_norm", "workers"] {
                #expect(record[key] is NSNumber, "line \(i + 1) lacks \(key): \(line)")
            }
            // The validation NLL is evaluated every --eval-every steps and after the last.
            #expect((record["val_nll"] != nil) == (step % 10 == 0), "line \(i + 1): \(line)")
        }
        #expect(steps == Array(1...30))
        let lastNLL = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
        let logged = try #require((lastNLL?["val_nll"] as? NSNumber)?.doubleValue)
        #expect(abs(logged - value) < 1e-4, "printed \(value), logged \(logged)")
    }

    @Test func sameOptionsGiveTheSameBytesAndAnotherSeedDoesNot() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let base = ["train", "--data", "moons"] + quickTraining
        try CLI.succeed(base + ["--seed", "1", "--out", "a.safetensors"], in: dir.path)
        try CLI.succeed(base + ["--seed", "1", "--out", "b.safetensors"], in: dir.path)
        try CLI.succeed(base + ["--seed", "2", "--out", "c.safetensors"], in: dir.path)
        // The data seed alone changes the data, hence the parameters, but not the recorded seed.
        try CLI.succeed(base + ["--seed", "1", "--data-seed", "9", "--out", "d.safetensors"], in: dir.path)
        let a = try dir.bytes("a.safetensors"), b = try dir.bytes("b.safetensors")
        let c = try dir.bytes("c.safetensors"), d = try dir.bytes("d.safetensors")
        #expect(a == b, "two runs with the same options wrote different model files")
        #expect(a != c, "--seed 1 and --seed 2 wrote the same model file")
        #expect(a != d, "--data-seed 9 wrote the same model file as the default data seed")
        #expect(try ModelFile.read(from: dir.file("c.safetensors")).info.seed == 2)
        #expect(try ModelFile.read(from: dir.file("d.safetensors")).info.seed == 1)
    }

    /// A CSV file with a header, three columns, and the standardisation layer.
    @Test func trainsOnAUserCSVFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text = "height,weight,age\n"
        var state: UInt64 = 12345
        func uniform() -> Double {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Double(state >> 11) * 0x1p-53
        }
        for _ in 0..<400 {
            let u = uniform(), v = uniform(), w = uniform()
            text += "\(170 + 20 * (u - 0.5)),\(70 + 30 * (u - 0.5) + 10 * v),\(20 + 50 * w)\n"
        }
        try dir.write(text, to: "people.csv")
        let result = try CLI.succeed(
            ["train", "--data", "people.csv", "--steps", "20", "--batch", "64", "--couplings", "2", "--hidden", "8",
             "--standardize", "--out", "people.safetensors"],
            in: dir.path)
        #expect(result.stdout.contains("validation NLL"), "\(result)")
        #expect(result.stderr.contains("360 train / 40 validation rows, D=3"), "\(result)")
        let (model, _) = try ModelFile.read(from: dir.file("people.safetensors"))
        #expect(model.configuration.dimension == 3)
        #expect(model.configuration.standardize)
        guard case .float32(let flow) = model, let s = flow.standardization else {
            Issue.record("expected a float32 model with a standardisation")
            return
        }
        // μ and σ are fitted on the data: the height column is centred near 170 with σ ≈ 20/√12.
        #expect(abs(s.mean[0] - 170) < 2, "mean \(s.mean)")
        #expect(abs(s.std[0] - 5.77) < 0.6, "std \(s.std)")
    }

    /// A float32 NPY file, trained in float64.
    @Test func trainsOnAUserNPYFile() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let rows = 300, columns = 4
        var values: [Double] = []
        for r in 0..<rows {
            for c in 0..<columns { values.append(sin(Double(r * (c + 1))) + Double(c)) }
        }
        let writer = try NPYWriter(path: dir.file("points.npy"), columns: columns, dtype: .float32)
        try writer.append(values: values, rows: rows)
        try writer.finish()
        let result = try CLI.succeed(
            ["train", "--data", "points.npy", "--steps", "10", "--batch", "32", "--couplings", "2", "--hidden", "8",
             "--dtype", "float64", "--validation", "0.2", "--out", "points.safetensors"],
            in: dir.path)
        #expect(result.stderr.contains("240 train / 60 validation rows, D=4"), "\(result)")
        #expect(result.stderr.contains("float64"), "\(result)")
        let (model, info) = try ModelFile.read(from: dir.file("points.safetensors"))
        #expect(model.configuration.dimension == 4)
        #expect(info.metadata["dtype"] == "float64")
        guard case .float64 = model else {
            Issue.record("--dtype float64 wrote \(model)")
            return
        }
    }
}
