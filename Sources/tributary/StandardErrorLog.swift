import Foundation

/// Log lines on standard error. On a terminal each line first clears the progress line that
/// may be drawn there (`\r` and `ESC [2K`); to a file or a pipe the lines are plain text, with
/// no terminal codes (the same test as ``ProgressDisplay``'s).
enum StandardErrorLog {
    /// Whether standard error is a terminal that understands the codes.
    static let isTerminal = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"

    /// Writes `line` and a newline.
    static func write(_ line: String) {
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[2K" : "") + line + "\n").utf8))
    }
}
