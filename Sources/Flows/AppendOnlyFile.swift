#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A durable log: a file that only grows by whole records, each `fsync`ed before ``append(_:)``
/// returns — the companion of ``AtomicFile`` for journals.
///
/// After a crash the file holds every appended record and at most one torn record at its end;
/// the reader of the log detects and drops that one (e.g. with a checksum per record) and
/// reopens the log with ``init(path:keepingFirst:)`` to cut it off before appending again.
public final class AppendOnlyFile {
    /// The file's path, as given.
    public let path: String
    private let descriptor: Int32

    /// Opens `path` for appending, creating it if needed (and making its creation durable by
    /// syncing the directory), and cuts it to its first `keepingFirst` bytes (nil keeps all).
    ///
    /// - Throws: ``AtomicFileError`` naming `path` and the failing step.
    public init(path: String, keepingFirst: Int? = nil) throws(AtomicFileError) {
        self.path = path
        var existing = stat()
        let existed = stat(path, &existing) == 0
        let descriptor = AtomicFileSystemCall.retryingEINTR {
            open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        }
        guard descriptor >= 0 else { throw AtomicFileError(path: path, operation: "open", errno: errno) }
        let end: off_t
        if let keepingFirst {
            guard ftruncate(descriptor, off_t(keepingFirst)) == 0 else {
                let failure = AtomicFileError(path: path, operation: "truncate", errno: errno)
                close(descriptor)
                throw failure
            }
            end = off_t(keepingFirst)
        } else {
            end = lseek(descriptor, 0, SEEK_END)
        }
        guard end >= 0, lseek(descriptor, end, SEEK_SET) >= 0 else {
            let failure = AtomicFileError(path: path, operation: "seek", errno: errno)
            close(descriptor)
            throw failure
        }
        self.descriptor = descriptor
        if !existed {
            try AtomicFileSystemCall.synchronizeDirectory(AtomicFile.directory(of: path), for: path)
        }
    }

    deinit { close(descriptor) }

    /// Appends `bytes` and flushes them to stable storage before returning.
    ///
    /// - Throws: ``AtomicFileError`` (`write` or `fsync`) naming the file and `errno`.
    public func append(_ bytes: [UInt8]) throws(AtomicFileError) {
        let failed = bytes.withUnsafeBytes { AtomicFileSystemCall.writeAll(descriptor, $0) }
        if let failed { throw AtomicFileError(path: path, operation: "write", errno: failed) }
        guard AtomicFileSystemCall.fullSync(descriptor) else {
            throw AtomicFileError(path: path, operation: "fsync", errno: errno)
        }
    }
}
