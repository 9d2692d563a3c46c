import Foundation
import Testing

/// What `train`, `score` and `sample` check before any work: output paths that can be
/// written, no output that is an input or another output, options in range (exit 64), a model
/// that fits in memory — and the messages that name the problem.
struct StartupCheckTests {
    static let train = ["train", "--data", "moons"] + quickTraining

    /// Trains a small model `m.safetensors` and writes `x.csv` rows to score.
    static func model(in dir: TemporaryDirectory) throws {
        try CLI.succeed(train + ["--out", "m.safetensors"], in: dir.path)
        try dir.write("x0,x1\n0.5,0.25\n-1,2\n", to: "x.csv")
    }

    @Test func unwritableOutputsAreRefusedBeforeTheFirstStep() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("adir"), withIntermediateDirectories: false)
        let long = Self.train.map { $0 == "30" ? "100000" : $0 }  // would take minutes if it started
        for (arguments, message) in [
            (["--out", "nodir/x.safetensors"], "--out nodir/x.safetensors: the directory nodir does not exist"),
            (["--out", "adir"], "--out adir is a directory"),
            (["--out", "m.safetensors", "--metrics", "nodir/m.jsonl"], "--metrics nodir/m.jsonl: the directory nodir does not exist"),
            (["--out", "m.safetensors", "--workers", "2", "--metrics", "adir/"], "--metrics adir/ is a directory"),
        ] {
            let result = try CLI.run(long + arguments, in: dir.path, timeout: 30)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(!result.stderr.contains("step 1/"), "training started: \(result)")
        }
        try dir.write("not a directory", to: "file")
        let refused = try CLI.run(
            ["coordinator", "--bind", "ipc://\(dir.path)/c.ipc", "--out", "m.safetensors", "--checkpoint-dir", "file"] + long.dropFirst(),
            in: dir.path, timeout: 30)
        #expect(refused.status == 1 && refused.stderr.contains("--checkpoint-dir file is a file, not a directory"), "\(refused)")
    }

    @Test func anOutputThatIsAnInputOrAnotherOutputIsRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try Self.model(in: dir)
        try FileManager.default.linkItem(atPath: dir.file("x.csv"), toPath: dir.file("hard.csv"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("soft.csv"), withDestinationPath: "x.csv")
        try FileManager.default.createSymbolicLink(atPath: dir.file("soft.safetensors"), withDestinationPath: "x.csv")
        let original = try dir.bytes("x.csv")
        let cases: [([String], String)] = [
            (["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "x.csv"], "--output x.csv is the same file as the input --input"),
            (["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "hard.csv"], "--output hard.csv is the same file as the input --input (x.csv)"),
            (["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "soft.csv"], "--output soft.csv is the same file as the input --input (x.csv)"),
            (["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "o.csv", "--latent", "./o.csv"], "--latent ./o.csv is the same file as the output --output (o.csv)"),
            (["score", "--model", "m.safetensors", "--input", "x.csv", "--output", "m.safetensors"], "--output m.safetensors is the same file as the input --model"),
            (["sample", "--model", "m.safetensors", "--count", "10", "--output", "f.csv", "--log-prob", "f.csv"], "--log-prob f.csv is the same file as the output --output"),
            (["train", "--data", "x.csv", "--out", "./soft.safetensors"], "--out ./soft.safetensors is the same file as the input --data (x.csv)"),
            (["train", "--data", "x.csv", "--out", "o.safetensors", "--metrics", "hard.csv"], "--metrics hard.csv is the same file as the input --data (x.csv)"),
        ]
        for (arguments, message) in cases {
            let result = try CLI.run(arguments, in: dir.path, timeout: 30)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
        }
        #expect(try dir.bytes("x.csv") == original, "the input was changed")
        #expect(!FileManager.default.fileExists(atPath: dir.file("o.csv")))
    }

    @Test(arguments: [
        (["--couplings", "0"], "--couplings must be in 1...10000, found 0"),
        (["--hidden", "0"], "--hidden must be in 1...65536, found 0"),
        (["--depth", "0"], "--depth must be in 1...64, found 0"),
        (["--shards", "0"], "--shards must be at least 1, found 0"),
        (["--eval-every", "0"], "--eval-every must be at least 1, found 0"),
        (["--clip-norm", "0"], "--clip-norm must be positive, found 0.0"),
        (["--lr", "nan"], "--lr must be positive, found nan"),
        (["--rows", "0"], "--rows must be at least 2, found 0"),
        (["--steps", "-5"], "--steps must be at least 0, found -5"),
        (["--steps=-5"], "--steps must be at least 0, found -5"),
        (["--hidden", "65536"], "hidden 65536 is too large for 8 couplings of depth 2 on D = 2"),
        (["--out", "model.npy"], "--out model.npy: the model is written as safetensors, not .npy"),
    ])
    func outOfRangeValuesAreUsageErrors(change: [String], message: String) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let arguments = ["train", "--data", "moons", "--out", "m.safetensors"] + change
        let result = try CLI.run(arguments, in: dir.path, timeout: 30)
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("m.safetensors")))
    }

    @Test func aModelTooLargeForTheMachineIsRefusedWithTheFigures() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // About 1.5 billion parameters in float64: tens of GB before the first step.
        let result = try CLI.run(
            ["train", "--data", "mixture:8", "--rows", "100", "--hidden", "8000", "--depth", "4", "--dtype", "float64",
             "--out", "m.safetensors"], in: dir.path, timeout: 60)
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("this run needs at least") && result.stderr.contains("GB is available"), "\(result)")
        #expect(!result.stderr.contains("Fatal error"), "\(result)")
    }

    @Test func aDivergenceNamesTheStepWhoseUpdateFailed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.run(
            Self.train.map { $0 == "30" ? "200" : $0 } + ["--lr", "1e6", "--eval-every", "1", "--out", "m.safetensors", "--metrics", "m.jsonl"],
            in: dir.path, timeout: 60)
        #expect(result.status == 1, "\(result)")
        // The metrics file has a line for every step that was applied; the next one diverged.
        let text = (try? String(contentsOfFile: dir.file("m.jsonl"), encoding: .utf8)) ?? ""
        let applied = text.split(separator: "\n").count
        #expect(result.stderr.contains("step \(applied + 1): "), "\(applied) steps applied: \(result)")
    }

    @Test func aModelNamedWithAnotherExtensionGetsAWarning() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(Self.train + ["--out", "m.model"], in: dir.path)
        #expect(result.stderr.contains("warning: --out m.model: the model is written in safetensors format"), "\(result)")
    }

    @Test func plotDrawsTheLossAloneBeforeAnyValidationLine() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("{\"step\":1,\"loss\":2.5}\n{\"step\":2,\"loss\":2.25}\n", to: "m.jsonl")
        let result = try CLI.succeed(["plot", "--metrics", "m.jsonl", "--out", "c.svg"], in: dir.path)
        #expect(result.stdout.contains("wrote 1 curve(s)"), "\(result)")
        #expect(result.stderr.contains("no \"val_nll\" values yet"), "\(result)")
        let none = try CLI.run(["plot", "--metrics", "m.jsonl", "--fields", "val_nll", "--out", "d.svg"], in: dir.path)
        #expect(none.status == 1 && none.stderr.contains("no field \"val_nll\""), "\(none)")
    }
}
