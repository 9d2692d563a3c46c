import Foundation
import Testing

/// `--help` on the tool and on every subcommand exits 0 and documents the options.
struct HelpTests {
    @Test func theToolListsItsSubcommands() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for arguments in [["--help"], ["-h"], ["help"]] {
            let result = try CLI.succeed(arguments, in: dir.path)
            for word in ["USAGE: tributary <subcommand>", "train", "score", "sample", "bench", "docs/model.md"] {
                #expect(result.stdout.contains(word), "`tributary \(arguments.joined(separator: " "))` does not mention \(word):\n\(result)")
            }
        }
    }

    static let subcommands: [(name: String, options: [String])] = [
        ("train", [
            "--data", "--rows", "--steps", "--batch", "--micro-batch", "--couplings", "--hidden", "--depth", "--standardize",
            "--dtype", "--lr", "--clip-norm", "--seed", "--data-seed", "--validation", "--shards", "--eval-every", "--threads",
            "--out", "--metrics", "--sync", "--local-steps", "moons", "8gaussians", "checkerboard", "rings", "mixture:D",
        ]),
        ("score", ["--model", "--input", "--output", "--chunk", "--threads", ".npy", ".csv"]),
        ("sample", ["--model", "--count", "--output", "--log-prob", "--seed", "--threads"]),
        ("bench", ["--config", "--threads", "--micro-batch", "--window-seconds", "--windows", "--json", "toy2d", "tab16", "wide64"]),
        ("plot", ["--metrics", "--fields", "--x", "--log-y", "--title", "--out"]),
        ("simulate", [
            "--config", "--batch", "--micro-batch", "--workers", "--bandwidth-gbit", "--latency-us", "--micro-batch-ms", "--add-ms",
            "--apply-ms", "--sync", "--local-steps", "--json",
        ]),
    ]

    @Test(arguments: subcommands)
    func everySubcommandDocumentsItsOptions(name: String, options: [String]) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for arguments in [[name, "--help"], ["help", name]] {
            let result = try CLI.succeed(arguments, in: dir.path)
            #expect(result.stdout.contains("USAGE: tributary \(name)"), "\(result)")
            #expect(result.stdout.contains("OVERVIEW:"), "\(result)")
            for option in options {
                #expect(result.stdout.contains(option), "`tributary \(arguments.joined(separator: " "))` does not mention \(option)")
            }
        }
    }
}
