#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A thin, checked face of a POSIX file descriptor. Every call that fails turns into
/// ``DataError/ioError(file:operation:errno:)`` naming the file and the system call, and
/// interrupted calls (`EINTR`) are retried. The descriptor is closed explicitly by the owner.
struct PosixFile {
    let descriptor: Int32
    let path: String

    /// Opens `path` read-only.
    static func openForReading(_ path: String) throws(DataError) -> PosixFile {
        let fd = try retrying(path, "open") { open(path, O_RDONLY | O_CLOEXEC) }
        return PosixFile(descriptor: fd, path: path)
    }

    /// Creates `path`, failing if it exists (`O_EXCL`), mode 0666 less the umask.
    /// Returns nil when the file already exists.
    static func createExclusive(_ path: String) throws(DataError) -> PosixFile? {
        while true {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
            if fd >= 0 { return PosixFile(descriptor: fd, path: path) }
            if errno == EINTR { continue }
            if errno == EEXIST { return nil }
            throw DataError.ioError(file: path, operation: "open", errno: errno)
        }
    }

    /// The file's size in bytes.
    func size() throws(DataError) -> Int {
        var info = stat()
        _ = try Self.retrying(path, "fstat") { fstat(descriptor, &info) }
        return Int(info.st_size)
    }

    /// Reads up to `count` bytes at the current position; 0 means end of file.
    func read(into buffer: UnsafeMutableRawPointer, count: Int) throws(DataError) -> Int {
        try Self.retrying(path, "read") { systemRead(descriptor, buffer, count) }
    }

    /// Reads up to `count` bytes at `offset` without moving the position; 0 means end of file.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: Int) throws(DataError) -> Int {
        try Self.retrying(path, "pread") { pread(descriptor, buffer, count, off_t(offset)) }
    }

    /// Moves the position to `offset`.
    func seek(to offset: Int) throws(DataError) {
        _ = try Self.retrying(path, "lseek") { lseek(descriptor, off_t(offset), SEEK_SET) }
    }

    /// Writes all of `bytes` at the current position.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws(DataError) {
        var done = 0
        while done < bytes.count {
            let n = try Self.retrying(path, "write") {
                write(descriptor, bytes.baseAddress! + done, bytes.count - done)
            }
            done += n
        }
    }

    /// Writes all of `bytes` at `offset` without moving the position.
    func writeAll(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(DataError) {
        var done = 0
        while done < bytes.count {
            let n = try Self.retrying(path, "pwrite") {
                pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            }
            done += n
        }
    }

    /// Flushes the file's data and metadata to stable storage.
    func synchronize() throws(DataError) {
        _ = try Self.retrying(path, "fsync") { fsync(descriptor) }
    }

    /// Closes the descriptor (errors from close are not actionable and are ignored).
    func close() {
        _ = systemClose(descriptor)
    }

    /// Runs `call` until it does not fail with `EINTR`; a result of -1 becomes an `ioError`.
    static func retrying<T: BinaryInteger>(
        _ path: String, _ operation: String, _ call: () -> T
    ) throws(DataError) -> T {
        while true {
            let result = call()
            if result != -1 { return result }
            if errno == EINTR { continue }
            throw DataError.ioError(file: path, operation: operation, errno: errno)
        }
    }
}

extension PosixFile {
    /// The directory part of `path` ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let dir = path[..<slash]
        return dir.isEmpty ? "/" : String(dir)
    }

    /// The last component of `path`.
    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

// File-scope wrappers, so that the methods named `read` and `close` can reach the C functions
// on both Glibc and Darwin without naming the module.
private func systemRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

private func systemClose(_ fd: Int32) -> Int32 {
    close(fd)
}

extension PosixFile {
    /// Writes all of `bytes` at the current position.
    func writeAll(_ bytes: [UInt8]) throws(DataError) {
        let failure: DataError? = bytes.withUnsafeBytes { raw in
            do throws(DataError) {
                try writeAll(raw)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Writes all of `bytes` at `offset` without moving the position.
    func writeAll(_ bytes: [UInt8], at offset: Int) throws(DataError) {
        let failure: DataError? = bytes.withUnsafeBytes { raw in
            do throws(DataError) {
                try writeAll(raw, at: offset)
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }
}
