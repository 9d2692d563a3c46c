import Foundation
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The key files `tributary keygen` writes and `--key`, `--server-key` read (docs/security.md).
///
/// - `NAME.pub`, the public key: one line, `<40 Z85 characters> NAME`. The same line format as
///   an authorized-keys file, so `cat NAME.pub >> authorized_keys` authorises it.
/// - `NAME.key`, the secret key, created with mode 0600: comment lines starting with `#`, then
///   one line with the 40 Z85 characters of the secret key. The public key is derived from it.
///   A secret key file that group or others may read is refused, as ssh refuses one.
public enum CurveKeyFile {
    /// The public key file of `name` in `directory`.
    public static func publicPath(directory: String, name: String) -> String { "\(directory)/\(name).pub" }
    /// The secret key file of `name` in `directory`.
    public static func secretPath(directory: String, name: String) -> String { "\(directory)/\(name).key" }

    /// Writes `pair` as `NAME.pub` (mode 0644) and `NAME.key` (mode 0600, created with that
    /// mode so the secret is never readable by others, not even for a moment). Refuses to
    /// overwrite either file.
    public static func write(_ pair: CurveKeyPair, directory: String, name: String) throws {
        guard !name.isEmpty, !name.contains("/"), !name.contains(where: \.isWhitespace) else {
            throw SecurityError.misconfigured("key name \"\(name)\": use letters, digits, dots and dashes (no slash, no space)")
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let secret = secretPath(directory: directory, name: name)
        let publicFile = publicPath(directory: directory, name: name)
        for path in [secret, publicFile] where FileManager.default.fileExists(atPath: path) {
            throw SecurityError.keyFile(path: path, line: nil, reason: "exists already; remove it or choose another --name")
        }
        try create(secret, mode: 0o600, contents: """
            # tributary CURVE secret key "\(name)" (public key in \(name).pub). Keep it private:
            # whoever holds this file can act as this coordinator or worker.
            \(pair.secretKey.z85)

            """)
        try create(publicFile, mode: 0o644, contents: "\(pair.publicKey.z85) \(name)\n")
    }

    /// Reads the key pair of a secret key file (`NAME.key`; `NAME` alone, as given to
    /// `keygen --name`, finds it too).
    ///
    /// - Throws: ``SecurityError/keyFile(path:line:reason:)`` when the file is missing (naming
    ///   the files looked for), is a public key file, may be read by group or others, or does
    ///   not hold exactly one valid key.
    public static func readPair(path given: String) throws -> CurveKeyPair {
        if given.hasSuffix(".pub") {
            throw SecurityError.keyFile(path: given, line: nil, reason: "is a public key file; --key takes the secret key file (NAME.key)")
        }
        let path = try resolve(given, suffix: ".key", expected: "a secret key file")
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw SecurityError.keyFile(path: path, line: nil, reason: String(cString: strerror(errno)))
        }
        if info.st_mode & 0o077 != 0 {
            throw SecurityError.keyFile(path: path, line: nil, reason: String(
                format: "permissions %03o are too open for a secret key; run chmod 600 on it", Int(info.st_mode & 0o777)))
        }
        let keys = try keyLines(path: path)
        guard keys.count == 1 else {
            throw SecurityError.keyFile(path: path, line: keys.dropFirst().first?.line, reason: keys.isEmpty ? "holds no key" : "holds more than one key")
        }
        do {
            return try CurveKeyPair(secretKey: keys[0].key)
        } catch {
            throw SecurityError.keyFile(path: path, line: keys[0].line, reason: "cannot derive the public key: \(error)")
        }
    }

    /// Reads a public key file (`NAME.pub`, or any file whose first key line starts with a Z85
    /// key, such as one line of an authorized-keys file); `NAME` alone finds `NAME.pub`.
    ///
    /// - Throws: ``SecurityError/keyFile(path:line:reason:)`` when the file is missing (naming
    ///   the files looked for), holds no key, or is a secret key file (pinning a secret key's
    ///   bytes would never match the coordinator, and would spread the secret).
    public static func readPublicKey(path given: String) throws -> CurveKey {
        let path = try resolve(given, suffix: ".pub", expected: "a public key file")
        try refuseSecret(path, expected: "a public key file (NAME.pub)")
        guard let first = try keyLines(path: path).first else {
            throw SecurityError.keyFile(path: path, line: nil, reason: "holds no key")
        }
        return first.key
    }

    /// The first line of every secret key file `write` creates.
    static let secretHeader = "# tributary CURVE secret key"

    /// Throws when `path` is a secret key file (named `*.key`, or starting with the comment
    /// `write` puts there) where `expected` is wanted.
    public static func refuseSecret(_ path: String, expected: String) throws {
        let head = (try? FileHandle(forReadingFrom: URL(fileURLWithPath: path)).read(upToCount: secretHeader.utf8.count)) ?? nil
        let secretHead = head.map { Array($0) == Array(secretHeader.utf8) } ?? false
        if path.hasSuffix(".key") || secretHead {
            let base = path.hasSuffix(".key") ? String(path.dropLast(4)) : path
            throw SecurityError.keyFile(path: path, line: nil, reason: "is a secret key file, but \(expected) is expected here: give the matching public key (\(base).pub) and keep the secret key private")
        }
    }

    /// `given` when it exists, else `given + suffix` when that exists (`--key keys/w1` for
    /// `keys/w1.key`); otherwise an error naming both files looked for.
    static func resolve(_ given: String, suffix: String, expected: String) throws -> String {
        if access(given, F_OK) == 0 || given.hasSuffix(suffix) {
            return given
        }
        let withSuffix = given + suffix
        if access(withSuffix, F_OK) == 0 { return withSuffix }
        throw SecurityError.keyFile(path: given, line: nil, reason: "no such file: looked for \(given) and \(withSuffix) (\(expected))")
    }

    /// The keys of a file with their labels and 1-based line numbers: every line that is not
    /// blank and not a comment must start with a 40-character Z85 key, optionally followed by
    /// white space and a label. A comment starts with `#`. (`#` is a Z85 digit, but worth 84:
    /// a group starting with it would exceed 2³²−1, so no key starts with `#`.)
    public static func keyLines(path: String) throws -> [(key: CurveKey, label: String, line: Int)] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            var info = stat()
            let reason = stat(path, &info) == 0 ? "is not readable UTF-8 text" : String(cString: strerror(errno))
            throw SecurityError.keyFile(path: path, line: nil, reason: reason)
        }
        return try parseKeyLines(text, path: path)
    }

    /// ``keyLines(path:)`` on text already read.
    public static func parseKeyLines(_ text: String, path: String) throws -> [(key: CurveKey, label: String, line: Int)] {
        var result: [(key: CurveKey, label: String, line: Int)] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let token = line.prefix { !$0.isWhitespace }
            let label = line.dropFirst(token.count).trimmingCharacters(in: .whitespaces)
            guard token.utf8.count == 40 else {
                throw SecurityError.keyFile(path: path, line: index + 1, reason: "expected a 40-character Z85 key, found \(token.utf8.count) characters")
            }
            do {
                result.append((try CurveKey(z85: String(token)), label, index + 1))
            } catch {
                throw SecurityError.keyFile(path: path, line: index + 1, reason: "not a Z85 key: \(error)")
            }
        }
        return result
    }

    private static func create(_ path: String, mode: mode_t, contents: String) throws {
        let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { throw SecurityError.keyFile(path: path, line: nil, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw SecurityError.keyFile(path: path, line: nil, reason: "cannot write: \(String(cString: strerror(errno)))")
        }
        fchmod(fd, mode)  // the umask may have removed bits of a public file's 0644
    }
}
