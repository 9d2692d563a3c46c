import Foundation
import Testing

/// Log lines written to a pipe or a file are plain text: the terminal codes that clear a
/// progress line (`\r`, `ESC [2K`) go only to a terminal (issue 11, item 11).
struct LogOutputTests {
    @Test func logLinesToAPipeCarryNoEscapeCodes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try CLI.binary())
        // A TEST-NET address: the --insecure warning is logged, then the bind fails at once.
        process.arguments = [
            "coordinator", "--data", "moons", "--rows", "200", "--steps", "1", "--out", "m.safetensors",
            "--bind", "tcp://192.0.2.1:5570", "--insecure",
        ]
        process.currentDirectoryURL = URL(fileURLWithPath: dir.path)
        let pipe = Pipe()
        process.standardError = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let bytes = pipe.fileHandleForReading.readDataToEndOfFile()  // ends when the process exits
        process.waitUntilExit()
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("warning: --insecure: tcp://192.0.2.1:5570"), "\(text)")
        #expect(!bytes.contains(0x1B), "escape codes in a pipe:\n\(text.debugDescription)")
        #expect(!bytes.contains(UInt8(ascii: "\r")), "carriage returns in a pipe:\n\(text.debugDescription)")
    }
}
