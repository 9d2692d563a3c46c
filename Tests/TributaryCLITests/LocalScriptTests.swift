import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `cluster/local.sh` reads relative paths from the directory it is run from, not from the
    /// repository (issue 11, item 14).
    @Suite struct LocalScriptTests {
        static func script(sourceFile: String = #filePath) -> String {
            var directory = URL(fileURLWithPath: sourceFile).deletingLastPathComponent()
            while directory.path != "/" && !FileManager.default.fileExists(atPath: directory.appendingPathComponent("Package.swift").path) {
                directory.deleteLastPathComponent()
            }
            return directory.appendingPathComponent("cluster/local.sh").path
        }

        @Test func relativePathsAreReadFromTheCallersDirectory() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = [
                Self.script(), "1", "--data", "moons", "--rows", "1000", "--steps", "20", "--batch", "128", "--couplings", "2",
                "--hidden", "8", "--out", "rel.safetensors", "--metrics", "rel.jsonl",
            ]
            process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
            var environment = ProcessInfo.processInfo.environment
            environment["TRIBUTARY"] = try CLI.binary()
            environment["LOGDIR"] = "logs"
            process.environment = environment
            let output = dir.file("script.out")
            _ = FileManager.default.createFile(atPath: output, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            process.standardOutput = handle
            process.standardError = handle
            process.standardInput = FileHandle.nullDevice
            let finished = DispatchSemaphore(value: 0)
            process.terminationHandler = { _ in finished.signal() }
            try process.run()
            if finished.wait(timeout: .now() + 120) == .timedOut {
                kill(process.processIdentifier, SIGTERM)  // its trap stops the cluster
                finished.wait()
                Issue.record("cluster/local.sh did not finish within 120 s")
            }
            try handle.close()
            let log = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            #expect(process.terminationStatus == 0, "\(log)")
            for file in ["rel.safetensors", "rel.jsonl", "logs/coordinator.log", "logs/worker-1.log"] {
                #expect(FileManager.default.fileExists(atPath: dir.file(file)), "\(file) is missing from the caller's directory:\n\(log)")
            }
        }
    }
}
