#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A file being written (streamed) under a temporary name in the destination's directory and renamed onto the
/// destination only when complete, so that readers of `path` see either the old file or the
/// whole new one — never a partial one. (Flows has `AtomicFile` for bytes already in memory;
/// FlowData does not depend on Flows, and this one streams.)
///
/// `commit()` fsyncs the file, renames it onto `path` and fsyncs the directory. `abandon()`
/// (called by the writers' `deinit` when they were never finished) closes and removes the
/// temporary file. The temporary file is registered with ``TemporaryFiles`` while it exists, so
/// that a handled signal removes it; a process killed otherwise leaves only a hidden
/// `.<name>.tmp-…` file, which the next writer of the same output removes
/// (``TemporaryFiles/removeStale(for:)``).
///
/// A class so that the descriptor is closed exactly once: after `commit()` or `abandon()`
/// the file is settled and further `abandon()` calls do nothing.
final class StagedFile {
    let destination: String
    let temporaryPath: String
    let file: PosixFile
    private var settled = false

    private init(destination: String, temporaryPath: String, file: PosixFile) {
        self.destination = destination
        self.temporaryPath = temporaryPath
        self.file = file
    }

    deinit {
        abandon()
    }

    /// Creates a fresh temporary file next to `destination`, named
    /// `.<name>.tmp-<pid>-<n>`: the process id separates processes, and `O_EXCL` with an
    /// increasing `n` separates writers within a process and skips stale leftovers.
    static func create(destination: String) throws(DataError) -> StagedFile {
        var attempt = 0
        while true {
            let name = TemporaryFiles.temporaryPath(for: destination, attempt: attempt)
            if let file = try PosixFile.createExclusive(name) {
                TemporaryFiles.register(name)
                return StagedFile(destination: destination, temporaryPath: name, file: file)
            }
            attempt += 1
            if attempt > 100_000 {
                throw DataError.ioError(file: destination, operation: "create temporary file", errno: EEXIST)
            }
        }
    }

    /// Makes the temporary file durable and atomically replaces `destination` with it.
    /// On failure the temporary file is removed and `destination` is left as it was.
    func commit() throws(DataError) {
        precondition(!settled, "StagedFile.commit after commit or abandon")
        do throws(DataError) {
            try file.synchronize()
        } catch {
            abandon()
            throw error
        }
        settled = true
        file.close()
        if rename(temporaryPath, destination) != 0 {
            let code = errno
            unlink(temporaryPath)
            TemporaryFiles.unregister(temporaryPath)
            throw DataError.ioError(file: destination, operation: "rename", errno: code)
        }
        TemporaryFiles.unregister(temporaryPath)
        // Make the rename itself durable. Some file systems refuse fsync on a directory
        // (EINVAL); the data is then as durable as that file system allows.
        let directory = PosixFile.directory(of: destination)
        let fd = open(directory, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            let result = fsync(fd)
            let code = errno
            close(fd)
            if result != 0 && code != EINVAL && code != EROFS {
                throw DataError.ioError(file: directory, operation: "fsync", errno: code)
            }
        }
    }

    /// Closes and removes the temporary file; `destination` is left untouched. Does nothing
    /// once the file is committed or abandoned.
    func abandon() {
        guard !settled else { return }
        settled = true
        file.close()
        unlink(temporaryPath)
        TemporaryFiles.unregister(temporaryPath)
    }
}
