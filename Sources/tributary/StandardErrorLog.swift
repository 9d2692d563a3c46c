import Foundation

/// Log lines on standard error, each starting with its UTC time in ISO 8601 with milliseconds
/// (`2026-12-05T11:52:03.123Z`). On a terminal each line first clears the progress line that
/// may be drawn there (`\r` and `ESC [2K`); to a file or a pipe the lines are plain text, with
/// no terminal codes (the same test as ``ProgressDisplay``'s). `Error:` lines that end a command
/// are not log lines and carry no time.
enum StandardErrorLog {
    /// Whether standard error is a terminal that understands the codes.
    static let isTerminal = isatty(STDERR_FILENO) == 1 && ProcessInfo.processInfo.environment["TERM"] != "dumb"

    /// Writes the time, `line` (one trailing newline of it dropped) and a newline.
    static func write(_ line: String) {
        let text = line.hasSuffix("\n") ? String(line.dropLast()) : line
        FileHandle.standardError.write(Data(((isTerminal ? "\r\u{1B}[2K" : "") + timestamp() + " " + text + "\n").utf8))
    }

    /// `date` in UTC as ISO 8601 with milliseconds, e.g. `2026-12-05T11:52:03.123Z`.
    static func timestamp(_ date: Date = Date()) -> String {
        let since1970 = date.timeIntervalSince1970
        var seconds = time_t(since1970.rounded(.down))
        let milliseconds = min(999, Int(((since1970 - Double(seconds)) * 1000).rounded(.down)))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
            Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), milliseconds)
    }
}
