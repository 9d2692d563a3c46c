import ArgumentParser
import FlowData

/// `tributary dataset`: write a built-in dataset to a file (for scoring, plotting, other tools).
struct DatasetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Write rows of a built-in dataset (moons, 8gaussians, checkerboard, rings, mixture:D) to a file.")

    @Argument(help: "The dataset: moons, 8gaussians, checkerboard, rings or mixture:D.")
    var name: String

    @Option(help: "Number of rows.")
    var rows: Int = 10000

    @Option(help: "Seed of the generator (the same seed gives the rows `train --data NAME --data-seed S` uses).")
    var seed: UInt64 = 0

    @Option(help: "Where to write (.npy, .csv or .tsv).")
    var output: String

    @Option(help: "Element type of NPY output (float32 or float64).")
    var dtype: Precision = .float64

    func validate() throws {
        guard rows >= 1 else { throw ValidationError("--rows must be at least 1") }
    }

    func run() throws {
        var table = try BuiltinDataset(name: name).generate(rows: rows, seed: seed)
        table.columnNames = (0..<table.columns).map { "x\($0)" }
        try DataFormat.write(table, to: output, dtype: dtype == .float32 ? .float32 : .float64)
        print("wrote \(rows) rows of \(name) to \(output)")
    }
}
