#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Crash-safe whole-file replacement: after ``write(_:to:)`` returns, `path` holds the new
/// bytes durably; if the process, machine or disk fails at any point, `path` holds either the
/// complete old contents or the complete new contents, never a mixture or a truncated file.
///
/// Used for model files, checkpoints and anything else that must not be torn.
public enum AtomicFile {
    /// Atomically replaces (or creates) the file at `path` with `bytes`.
    ///
    /// Steps: create a uniquely named temporary file `.<name>.tmp-<pid>-<random>` in the same
    /// directory (so the rename cannot cross file systems) with `O_EXCL`; give it the
    /// permission bits of the file it replaces, or `0666 & ~umask` for a new file; write all
    /// bytes (retrying short writes and `EINTR`); `fsync` it (`F_FULLFSYNC` where available);
    /// `rename` it over `path`; `fsync` the directory so the rename itself is durable.
    ///
    /// If any step before the rename fails, the temporary file is closed and removed and the
    /// old file is untouched. If only the final directory `fsync` fails (other than with
    /// `EINVAL`, which file systems that cannot sync directories return), `path` already holds
    /// the new contents but the error is still thrown, because durability is not guaranteed.
    ///
    /// `path` names the file itself: if it is a symbolic link, the link is replaced, not its
    /// target. Ownership and extended attributes of a replaced file are not copied.
    ///
    /// - Throws: ``AtomicFileError`` naming `path`, the failing step and `errno`.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let slash = path.lastIndex(of: "/")
        let baseName = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !baseName.isEmpty, baseName != ".", baseName != ".." else {
            throw AtomicFileError(path: path, operation: "write", errno: EISDIR)
        }
        let directoryPrefix = slash.map { String(path[...$0]) } ?? ""
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."

        var existing = stat()
        let replacedMode: mode_t? =
            stat(path, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFREG
            ? existing.st_mode & 0o7777 : nil

        // Create the temporary file.
        var temporaryPath = ""
        var descriptor: Int32 = -1
        for _ in 0..<100 {
            temporaryPath =
                directoryPrefix + "." + shortened(baseName) + ".tmp-\(getpid())-"
                + String(UInt64.random(in: .min ... .max), radix: 16)
            descriptor = AtomicFileSystemCall.retryingEINTR {
                open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            }
            if descriptor >= 0 || errno != EEXIST { break }
        }
        guard descriptor >= 0 else {
            throw AtomicFileError(path: path, operation: "create temporary file", errno: errno)
        }

        // Fill, sync and close it; on failure remove it.
        do {
            if let replacedMode, fchmod(descriptor, replacedMode) != 0 {
                throw AtomicFileError(path: path, operation: "fchmod temporary file", errno: errno)
            }
            let writeError: Int32? = bytes.withUnsafeBytes { buffer in
                AtomicFileSystemCall.writeAll(descriptor, buffer)
            }
            if let writeError {
                throw AtomicFileError(
                    path: path, operation: "write temporary file", errno: writeError)
            }
            if !AtomicFileSystemCall.fullSync(descriptor) {
                throw AtomicFileError(path: path, operation: "fsync temporary file", errno: errno)
            }
            let closed = close(descriptor)
            descriptor = -1
            if closed != 0 && errno != EINTR {  // Linux releases the descriptor even on EINTR
                throw AtomicFileError(path: path, operation: "close temporary file", errno: errno)
            }
            if rename(temporaryPath, path) != 0 {
                throw AtomicFileError(path: path, operation: "rename temporary file", errno: errno)
            }
        } catch {
            let savedErrno = errno
            if descriptor >= 0 { close(descriptor) }
            unlink(temporaryPath)
            errno = savedErrno
            throw error
        }

        // Make the rename durable.
        try AtomicFileSystemCall.synchronizeDirectory(directory, for: path)
    }

    /// The directory part of `path` (`"."` for a bare name, `"/"` for a file in the root).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `name` cut to at most 200 UTF-8 bytes at a character boundary, so that the temporary
    /// name stays within `NAME_MAX` (255).
    private static func shortened(_ name: String) -> String {
        var result = ""
        var byteCount = 0
        for character in name {
            byteCount += character.utf8.count
            if byteCount > 200 { break }
            result.append(character)
        }
        return result
    }
}

/// A failed step of ``AtomicFile/write(_:to:)``.
public struct AtomicFileError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The destination path given to ``AtomicFile/write(_:to:)``.
    public var path: String
    /// The step that failed, e.g. `"create temporary file"`, `"fsync temporary file"`,
    /// `"rename temporary file"`.
    public var operation: String
    /// The `errno` the system call set.
    public var errno: Int32

    /// Creates an error for `path` whose step `operation` failed with `errno`.
    public init(path: String, operation: String, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    /// `path: operation failed: strerror (errno N)`.
    public var description: String {
        "\(path): \(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// The system calls ``AtomicFile`` and ``AppendOnlyFile`` make, in a namespace where `write`
/// means `write(2)` rather than ``AtomicFile/write(_:to:)``.
enum AtomicFileSystemCall {
    /// Calls `body` until it does not fail with `EINTR`.
    static func retryingEINTR(_ body: () -> Int32) -> Int32 {
        while true {
            let result = body()
            if result != -1 || errno != EINTR { return result }
        }
    }

    /// `write(2)`: writes up to `count` bytes; returns the number written or -1.
    static func writeSome(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
        write(descriptor, bytes, count)
    }

    /// Flushes the file's data to stable storage; `false` with `errno` set on failure.
    static func fullSync(_ descriptor: Int32) -> Bool {
        #if canImport(Darwin)
            // fsync on Darwin only reaches the drive's cache; F_FULLFSYNC reaches the medium.
            if fcntl(descriptor, F_FULLFSYNC) == 0 { return true }
        #endif
        return retryingEINTR { fsync(descriptor) } == 0
    }

    /// Writes all of `bytes` (retrying short writes and `EINTR`); nil, or the failing `errno`.
    static func writeAll(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let chunk = min(bytes.count - offset, 1 << 30)
            let written = writeSome(descriptor, bytes.baseAddress! + offset, chunk)
            if written < 0 {
                if errno == EINTR { continue }
                return errno
            }
            offset += written
        }
        return nil
    }

    /// `fsync`s the directory `directory` so that a rename or creation in it is durable;
    /// `EINVAL` (file systems that cannot sync directories) counts as success.
    static func synchronizeDirectory(_ directory: String, for path: String) throws(AtomicFileError) {
        let descriptor = retryingEINTR { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard descriptor >= 0 else {
            throw AtomicFileError(path: path, operation: "open directory \(directory)", errno: errno)
        }
        defer { close(descriptor) }
        if retryingEINTR({ fsync(descriptor) }) != 0 && errno != EINVAL {
            throw AtomicFileError(path: path, operation: "fsync directory \(directory)", errno: errno)
        }
    }
}
