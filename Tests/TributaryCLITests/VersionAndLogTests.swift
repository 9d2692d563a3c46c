import Flows
import Foundation
import Testing

/// `--version`, the version in model files, ISO 8601 times on log lines, and the warning about a
/// constant column under `--standardize` (issue 13, item 6).
struct VersionAndLogTests {
    @Test func versionIsPrintedAndRecordedInModelFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let version = try CLI.succeed(["--version"], in: dir.path)
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == TributaryVersion.current, "\(version)")

        try CLI.succeed(["train", "--data", "moons", "--rows", "400", "--steps", "2", "--out", "m.safetensors"], in: dir.path)
        let (_, info) = try ModelFile.read(from: dir.file("m.safetensors"))
        #expect(info.metadata[ModelFile.Key.tributaryVersion] == TributaryVersion.current, "\(info.metadata)")
    }

    @Test func logLinesStartWithAnISO8601Time() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(
            ["train", "--data", "moons", "--rows", "400", "--steps", "2", "--out", "m.safetensors"], in: dir.path)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        let banner = try #require(lines.first { $0.contains("training ") }, "\(result)")
        let stamp = #/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z training /#
        let match = try #require(banner.firstMatch(of: stamp), "no ISO 8601 time at the start of \(banner.debugDescription)")
        // The time is now (UTC), give or take the run.
        var parts = DateComponents()
        parts.timeZone = TimeZone(identifier: "UTC")
        (parts.year, parts.month, parts.day) = (Int(match.1), Int(match.2), Int(match.3))
        (parts.hour, parts.minute, parts.second) = (Int(match.4), Int(match.5), Int(match.6))
        let logged = try #require(Calendar(identifier: .gregorian).date(from: parts))
        #expect(abs(logged.timeIntervalSinceNow) < 600, "logged at \(logged), now \(Date())")
        // Every line to a pipe is a timestamped log line (no error ended this run).
        for line in lines where !line.isEmpty {
            #expect(line.firstMatch(of: #/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /#) != nil, "untimed line: \(line)")
        }
    }

    @Test func aConstantColumnUnderStandardizeIsNamed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var text = "x,flat,y\n"
        for i in 0..<300 { text += "\(Double(i % 17) * 0.1),2.5,\(Double(i % 11) * -0.3)\n" }
        try dir.write(text, to: "data.csv")
        let result = try CLI.succeed(
            ["train", "--data", "data.csv", "--standardize", "--steps", "2", "--batch", "64", "--out", "m.safetensors"],
            in: dir.path)
        let warnings = result.stderr.split(separator: "\n").filter { $0.contains("is constant") }
        #expect(warnings.count == 1, "\(result)")
        #expect(warnings.first?.contains("column 2 (\"flat\") of data.csv") == true, "\(result)")
        let plain = try CLI.succeed(
            ["train", "--data", "data.csv", "--steps", "2", "--batch", "64", "--out", "n.safetensors"], in: dir.path)
        #expect(!plain.stderr.contains("is constant"), "warned without --standardize\n\(plain)")
    }
}
