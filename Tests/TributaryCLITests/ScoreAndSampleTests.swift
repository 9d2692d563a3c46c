import FlowData
import Flows
import Foundation
import Testing

/// `score` and `sample` end to end, checked against each other (CLI against CLI).
struct ScoreAndSampleTests {
    /// Trains a small moons model into `dir` and returns its file name.
    static func trainModel(in dir: TemporaryDirectory, extra: [String] = []) throws -> String {
        try CLI.succeed(["train", "--data", "moons", "--seed", "7", "--out", "model.safetensors"] + quickTraining + extra, in: dir.path)
        return "model.safetensors"
    }

    /// Reads a one-column output (NPY or CSV) as `Double`s.
    static func column(_ path: String) throws -> [Double] {
        let table = try DataFormat.readAll(path: path, nonFinite: .allow)
        #expect(table.columns == 1, "\(path) has \(table.columns) columns")
        return table.values
    }

    @Test func scoreWritesOneRowPerInputRowToNPYAndCSV() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try Self.trainModel(in: dir)

        // 777 rows of input, in CSV (with a header) and in NPY, holding the same numbers.
        let rows = 777
        var values: [Double] = []
        for r in 0..<rows { values += [1.5 * cos(Double(r) * 0.37), 0.8 * sin(Double(r) * 0.91) - 0.2] }
        try DataFormat.write(Table(rows: rows, columns: 2, values: values, columnNames: ["x", "y"]), to: dir.file("x.csv"))
        try DataFormat.write(Table(rows: rows, columns: 2, values: values), to: dir.file("x.npy"), dtype: .float32)

        let npy = try CLI.succeed(["score", "--model", model, "--input", "x.csv", "--output", "lp.npy"], in: dir.path)
        #expect(npy.stdout.contains("scored 777 rows"), "\(npy)")
        #expect(npy.stdout.contains("lp.npy"), "\(npy)")
        try CLI.succeed(["score", "--model", model, "--input", "x.npy", "--output", "lp.csv"], in: dir.path)
        // Small chunks: same rows, same order.
        try CLI.succeed(["score", "--model", model, "--input", "x.npy", "--output", "lp-chunked.npy", "--chunk", "100"], in: dir.path)

        let reader = try NPYReader(path: dir.file("lp.npy"))
        #expect(reader.rows == rows && reader.columns == 1)
        #expect(reader.dtype == .float32, "a float32 model writes float32 scores")
        let fromNPY = try Self.column(dir.file("lp.npy"))
        let fromCSV = try Self.column(dir.file("lp.csv"))
        let chunked = try Self.column(dir.file("lp-chunked.npy"))
        #expect(fromCSV.count == rows && chunked.count == rows)
        let header = try String(contentsOfFile: dir.file("lp.csv"), encoding: .utf8).prefix { $0 != "\n" }
        #expect(header == "log_prob")
        for r in 0..<min(rows, fromCSV.count, chunked.count) {
            #expect(fromNPY[r].isFinite, "row \(r)")
            // CSV prints float32 values; the inputs are float32 in both files.
            #expect(close(fromCSV[r], fromNPY[r], relative: 1e-6), "row \(r): csv \(fromCSV[r]) vs npy \(fromNPY[r])")
            #expect(close(chunked[r], fromNPY[r], relative: 1e-5), "row \(r): --chunk 100 gives \(chunked[r]) vs \(fromNPY[r])")
        }
    }

    /// `sample --log-prob` computes log p along the inverse path; `score` along the forward path.
    @Test func scoreOfSamplesMatchesTheLogProbabilityWrittenBySample() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try Self.trainModel(in: dir, extra: ["--standardize"])
        let sample = try CLI.succeed(
            ["sample", "--model", model, "--count", "3000", "--seed", "5", "--output", "s.npy", "--log-prob", "s-lp.npy"],
            in: dir.path)
        #expect(sample.stdout.contains("wrote 3000 samples to s.npy and their log p to s-lp.npy"), "\(sample)")
        try CLI.succeed(["score", "--model", model, "--input", "s.npy", "--output", "scored.npy"], in: dir.path)

        let samples = try NPYReader(path: dir.file("s.npy"))
        #expect(samples.rows == 3000 && samples.columns == 2 && samples.dtype == .float32)
        let inverse = try Self.column(dir.file("s-lp.npy"))
        let forward = try Self.column(dir.file("scored.npy"))
        #expect(inverse.count == 3000 && forward.count == 3000)
        var worst = 0.0
        for r in 0..<min(inverse.count, forward.count) {
            #expect(inverse[r].isFinite)
            worst = max(worst, abs(inverse[r] - forward[r]) / max(1, abs(forward[r])))
            #expect(close(inverse[r], forward[r], relative: 1e-4), "sample \(r): sample --log-prob \(inverse[r]), score \(forward[r])")
        }
        // The samples look like the data: mean log p of a trained moons model beats N(0, I).
        let mean = forward.reduce(0, +) / Double(forward.count)
        #expect(mean > -2.84, "mean log p of samples \(mean) (worst relative gap \(worst))")
    }

    @Test func samplingIsSeededAndWritesCSV() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try Self.trainModel(in: dir)
        try CLI.succeed(["sample", "--model", model, "--count", "100", "--seed", "1", "--output", "a.npy"], in: dir.path)
        try CLI.succeed(["sample", "--model", model, "--count", "100", "--seed", "1", "--output", "b.npy"], in: dir.path)
        try CLI.succeed(["sample", "--model", model, "--count", "100", "--seed", "2", "--output", "c.npy"], in: dir.path)
        try CLI.succeed(["sample", "--model", model, "--count", "100", "--seed", "1", "--output", "a.csv"], in: dir.path)
        #expect(try dir.bytes("a.npy") == dir.bytes("b.npy"))
        #expect(try dir.bytes("a.npy") != dir.bytes("c.npy"))
        let csv = try CSVReader.readAll(path: dir.file("a.csv"))
        #expect(csv.rows == 100 && csv.columns == 2)
        #expect(csv.columnNames == ["x0", "x1"])
        let npy = try NPYReader.readAll(path: dir.file("a.npy"))
        for i in 0..<min(csv.values.count, npy.values.count) {
            #expect(close(csv.values[i], npy.values[i], relative: 1e-6), "value \(i)")
        }
    }

    /// Rows holding NaN are scored as NaN, in place; the summary says how many.
    @Test func nonFiniteRowsGetNaNInPlace() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try Self.trainModel(in: dir)
        try dir.write("x,y\n0.5,0.25\nnan,1\n-1,0.5\n1,inf\n0,0\n", to: "holes.csv")
        let result = try CLI.succeed(["score", "--model", model, "--input", "holes.csv", "--output", "holes-lp.csv"], in: dir.path)
        #expect(result.stdout.contains("scored 5 rows"), "\(result)")
        #expect(result.stdout.contains("2 rows not scored"), "\(result)")
        let report = try String(contentsOfFile: dir.file("holes-lp.csv.unscored.csv"), encoding: .utf8)
        #expect(report == "row,line,status,reason\n1,3,non_finite_input,non-finite input\n3,5,non_finite_input,non-finite input\n")
        let lp = try Self.column(dir.file("holes-lp.csv"))
        #expect(lp.count == 5)
        #expect(lp.map(\.isNaN) == [false, true, false, true, false], "\(lp)")
    }
}
