import FlowData
import Foundation

/// Resolves `--data`: a built-in dataset name (`moons`, `mixture:16`, …) or a CSV/NPY file.
enum DataSource {
    /// Loads the whole table. Built-in datasets are generated with `rows` rows from `seed`.
    static func load(_ spec: String, rows: Int, seed: UInt64) throws -> Table {
        if FileManager.default.fileExists(atPath: spec) {
            return try DataFormat.readAll(path: spec)
        }
        do {
            let dataset = try BuiltinDataset(name: spec)
            guard rows >= 2 else { throw CLIError("--rows must be at least 2, found \(rows)") }
            return dataset.generate(rows: rows, seed: seed)
        } catch let error as DataError {
            if spec.contains("/") || spec.contains(".") && !spec.hasPrefix("mixture") {
                throw CLIError("\(spec): no such file, and not a built-in dataset (moons, 8gaussians, checkerboard, rings, mixture:D)")
            }
            throw error
        }
    }
}

/// A command-line usage error with a message for the user.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}
