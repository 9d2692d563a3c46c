import Flows
import Foundation
import Testing

/// Every user mistake ends the process with a non-zero status and a message on standard error
/// that names the problem (and the file, where there is one) — and writes no output file.
struct CommandErrorTests {
    struct Mistake: Sendable, CustomTestStringConvertible {
        var name: String
        var arguments: [String]
        /// Fragments the standard error must contain.
        var mentions: [String]
        /// 1 for a failure at run time, 64 (EX_USAGE) for a command line that does not parse.
        var status: Int32 = 1
        var testDescription: String { name }
    }

    static let mistakes: [Mistake] = [
        Mistake(name: "unknown dataset", arguments: ["train", "--data", "spirals", "--out", "m.safetensors"],
                mentions: ["unknown dataset \"spirals\"", "moons"]),
        Mistake(name: "missing data file", arguments: ["train", "--data", "nowhere/data.csv", "--out", "m.safetensors"],
                mentions: ["nowhere/data.csv", "no such file"]),
        Mistake(name: "malformed CSV for train", arguments: ["train", "--data", "bad.csv", "--out", "m.safetensors"],
                mentions: ["bad.csv line 3, column 2", "\"oops\" is not a number"]),
        Mistake(name: "ragged CSV for train", arguments: ["train", "--data", "ragged.csv", "--out", "m.safetensors"],
                mentions: ["ragged.csv line 4", "expected 2 fields, found 3"]),
        // A malformed row does not stop `score`: it is scored NaN and reported (ClusterScoringTests).
        Mistake(name: "missing model file", arguments: ["score", "--model", "absent.safetensors", "--input", "three.csv", "--output", "o.npy"],
                mentions: ["absent.safetensors", "No such file"]),
        Mistake(name: "missing model file for sample", arguments: ["sample", "--model", "absent.safetensors", "--count", "3", "--output", "o.npy"],
                mentions: ["absent.safetensors", "No such file"]),
        Mistake(name: "a CSV file given as the model", arguments: ["score", "--model", "three.csv", "--input", "three.csv", "--output", "o.npy"],
                mentions: ["three.csv", "header length"]),
        Mistake(name: "model/input width mismatch", arguments: ["score", "--model", "model.safetensors", "--input", "three.csv", "--output", "o.npy"],
                mentions: ["three.csv has 3 columns", "model.safetensors expects 2"]),
        Mistake(name: "output with an unknown extension", arguments: ["score", "--model", "model.safetensors", "--input", "two.csv", "--output", "o.parquet"],
                mentions: ["o.parquet"]),
        Mistake(name: "--batch not a multiple of --micro-batch",
                arguments: ["train", "--data", "moons", "--rows", "1000", "--batch", "300", "--micro-batch", "128", "--out", "m.safetensors"],
                mentions: ["--batch 300 must be a positive multiple of --micro-batch 128"], status: 64),
        Mistake(name: "zero couplings", arguments: ["train", "--data", "moons", "--rows", "1000", "--couplings", "0", "--out", "m.safetensors"],
                mentions: ["--couplings must be in 1...10000, found 0"], status: 64),
        Mistake(name: "validation fraction out of range", arguments: ["train", "--data", "moons", "--validation", "1.5", "--out", "m.safetensors"],
                mentions: ["--validation must be in [0, 1)"], status: 64),
        Mistake(name: "missing required option", arguments: ["train", "--out", "m.safetensors"],
                mentions: ["Missing expected argument '--data <data>'"], status: 64),
        Mistake(name: "unknown subcommand", arguments: ["fly"], mentions: ["Unexpected argument 'fly'"], status: 64),
        Mistake(name: "unknown bench configuration", arguments: ["bench", "--config", "huge"], mentions: ["huge", "toy2d"], status: 64),
        Mistake(name: "sample --count 0", arguments: ["sample", "--model", "model.safetensors", "--count", "0", "--output", "o.npy"],
                mentions: ["--count must be at least 1"], status: 64),
    ]

    @Test(arguments: mistakes)
    func mistakeFailsWithAMessage(_ mistake: Mistake) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write("a,b\n1,2\n3,oops\n5,6\n", to: "bad.csv")
        try dir.write("1,2\n3,4\n5,6\n7,8,9\n", to: "ragged.csv")
        try dir.write("1,2,3\n4,5,6\n", to: "three.csv")
        try dir.write("1,2\n4,5\n", to: "two.csv")
        if mistake.arguments.contains("model.safetensors") {
            try CLI.succeed(["train", "--data", "moons", "--rows", "500", "--steps", "2", "--batch", "64", "--couplings", "1",
                             "--hidden", "4", "--out", "model.safetensors"], in: dir.path)
        }
        let result = try CLI.run(mistake.arguments, in: dir.path)
        #expect(result.status == mistake.status, "\(result)")
        for fragment in mistake.mentions {
            #expect(result.stderr.contains(fragment), "standard error does not mention \"\(fragment)\":\n\(result)")
        }
        #expect(result.stdout.isEmpty || !result.stdout.contains("written"), "\(result)")
        for output in ["m.safetensors", "o.npy", "o.parquet"] {
            #expect(!FileManager.default.fileExists(atPath: dir.file(output)), "\(output) was written by a failed run")
        }
    }

    /// Sizes far out of range are input mistakes like any other: a message, not a crash.
    @Test func absurdModelSizesFailWithAMessageNotACrash() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let train = try CLI.run(
            ["train", "--data", "moons", "--rows", "100", "--couplings", "1000000000000", "--out", "m.safetensors"], in: dir.path)
        // A model file whose metadata claims an absurd dimension.
        let model = try RealNVP<Float>(configuration: FlowConfiguration(dimension: 2, couplings: 1, hidden: 2), seed: 0)
        var archive = ModelFile.archive(of: model, info: ModelFileInfo(step: 0, seed: 0))
        archive.metadata["dimension"] = "1000000000000"
        try archive.write(to: dir.file("huge.safetensors"))
        try dir.write("1,2\n", to: "two.csv")
        let score = try CLI.run(["score", "--model", "huge.safetensors", "--input", "two.csv", "--output", "o.npy"], in: dir.path)
        #expect(train.status == 64 && train.stderr.contains("--couplings must be in 1...10000"), "\(train)")
        #expect(score.status == 1 && score.stderr.contains("dimension must be at most 1048576"), "\(score)")
    }
}
