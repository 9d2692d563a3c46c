import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs the built `tributary` binary as a real process.
///
/// Each run is bounded in time: a process still running at its deadline is killed with
/// SIGKILL and the test fails. Standard output and error go to files (never pipes, so a chatty
/// process cannot block on a full pipe). Comparisons of numbers are made CLI against CLI: the
/// binary may re-execute itself with other OpenBLAS kernels than this test process uses.
enum CLI {
    /// The outcome of one run.
    struct Result: CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var stdout: String
        var stderr: String
        var timedOut: Bool
        var seconds: Double

        var description: String {
            func clipped(_ text: String) -> String {
                text.count <= 3000 ? text : String(text.prefix(3000)) + "\n… (\(text.count - 3000) more characters)\n"
            }
            return "tributary \(arguments.joined(separator: " ")) → exit \(status)\(timedOut ? " (killed at the timeout)" : "") "
                + "after \(String(format: "%.2f", seconds)) s\n--- stdout:\n\(clipped(stdout))--- stderr:\n\(clipped(stderr))"
        }
    }

    struct BinaryNotFound: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "the tributary binary was not found; build it first (swift build [-c release]) or set TRIBUTARY_BINARY. Looked at:\n  "
                + searched.joined(separator: "\n  ")
        }
    }

    /// Where the binary is looked for, best first:
    ///
    /// 1. `$TRIBUTARY_BINARY`, when set;
    /// 2. next to the test bundle's executable (`swift test` builds `tributary` there, as the
    ///    test target depends on it) — `CommandLine.arguments[0]` on Linux, the `.xctest`
    ///    bundle's directory on macOS;
    /// 3. the package's `.build/release/tributary`, then `.build/debug/tributary`, found by
    ///    walking up from this source file to `Package.swift`.
    static func candidates(sourceFile: String = #filePath) -> [String] {
        var paths: [String] = []
        if let explicit = ProcessInfo.processInfo.environment["TRIBUTARY_BINARY"], !explicit.isEmpty {
            paths.append(explicit)
        }
        if let first = CommandLine.arguments.first {
            let executable = URL(fileURLWithPath: first).resolvingSymlinksInPath()
            paths.append(executable.deletingLastPathComponent().appendingPathComponent("tributary").path)
        }
        if let executable = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            paths.append(executable.deletingLastPathComponent().appendingPathComponent("tributary").path)
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            paths.append(URL(fileURLWithPath: bundle.bundlePath).deletingLastPathComponent().appendingPathComponent("tributary").path)
        }
        var directory = URL(fileURLWithPath: sourceFile).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                for configuration in ["release", "debug"] {
                    paths.append(directory.appendingPathComponent(".build/\(configuration)/tributary").path)
                }
                break
            }
            directory.deleteLastPathComponent()
        }
        var seen = Set<String>()
        return paths.filter { seen.insert($0).inserted }
    }

    /// The binary to test (located once).
    static let located: Swift.Result<String, BinaryNotFound> = {
        let all = candidates()
        if let found = all.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) {
            return .success(found)
        }
        return .failure(BinaryNotFound(searched: all))
    }()

    /// The binary's path, or an error listing where it was looked for.
    static func binary() throws -> String {
        try located.get()
    }

    /// Runs `tributary arguments…` in `directory` and waits at most `timeout` seconds.
    ///
    /// - Parameter environment: variables added to (or, with `nil` values, removed from) this
    ///   process's environment.
    @discardableResult
    static func run(
        _ arguments: [String], in directory: String, timeout: Double = 30, environment: [String: String?] = [:]
    ) throws -> Result {
        let binary = try binary()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        let tag = UUID().uuidString
        let outPath = directory + "/.stdout-\(tag)"
        let errPath = directory + "/.stderr-\(tag)"
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        let start = Date()
        try process.run()
        var timedOut = false
        if finished.wait(timeout: .now() + timeout) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            finished.wait()
        }
        process.waitUntilExit()
        try out.close()
        try err.close()
        let result = Result(
            arguments: arguments, status: process.terminationStatus,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "",
            timedOut: timedOut, seconds: Date().timeIntervalSince(start))
        if timedOut {
            Issue.record("timed out after \(timeout) s and was killed: \(result)")
        }
        return result
    }

    /// Runs and requires exit status 0 (the failure message shows the whole run).
    @discardableResult
    static func succeed(
        _ arguments: [String], in directory: String, timeout: Double = 30, sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Result {
        let result = try run(arguments, in: directory, timeout: timeout)
        try #require(result.status == 0 && !result.timedOut, "\(result)", sourceLocation: sourceLocation)
        return result
    }
}

/// A fresh directory for one test's files. Call `remove()` in a `defer` (not a deinit: Swift
/// may end an object's lifetime right after its last use, while a child process still writes).
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("tributary-cli-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file(name))) }

    func write(_ text: String, to name: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: file(name)))
    }
}

/// Small, fast training options shared by the tests (a few hundred milliseconds per run).
let quickTraining = ["--rows", "2000", "--steps", "30", "--batch", "128", "--couplings", "3", "--hidden", "16", "--eval-every", "10"]

/// `|a − b| ≤ tolerance · max(1, |b|)`.
func close(_ a: Double, _ b: Double, relative tolerance: Double) -> Bool {
    abs(a - b) <= tolerance * max(1, abs(b))
}
