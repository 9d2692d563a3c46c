#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

extension SafeTensorsArchive {
    /// Writes ``encoded()`` to `path` atomically with ``AtomicFile/write(_:to:)``: a reader
    /// (or a crash) sees either the old file or the complete new one, and the new file is
    /// durable when this returns.
    ///
    /// - Throws: the encoding errors of ``encoded()`` (with `file == nil`), or
    ///   ``SafeTensorsError/Problem/io(operation:errno:)`` with `file == path`.
    public func write(to path: String) throws {
        let bytes = try encoded()
        do {
            try AtomicFile.write(bytes, to: path)
        } catch let error as AtomicFileError {
            throw SafeTensorsError.ioError(path, errno: error.errno, operation: error.operation)
        }
    }

    /// Reads and fully validates the safetensors file at `path` (see ``decode(_:file:)``).
    ///
    /// - Throws: ``SafeTensorsError`` with `file == path`: an
    ///   ``SafeTensorsError/Problem/io(operation:errno:)`` if the file cannot be opened or
    ///   read, otherwise the first validation failure.
    public static func read(from path: String) throws -> SafeTensorsArchive {
        try decode(readFileBytes(path), file: path)
    }

    /// The whole contents of the file at `path`, read with `read(2)` until end of file.
    private static func readFileBytes(_ path: String) throws -> [UInt8] {
        var descriptor: Int32
        repeat {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
        } while descriptor < 0 && errno == EINTR
        guard descriptor >= 0 else {
            throw SafeTensorsError.ioError(path, errno: errno, operation: "open")
        }
        defer { close(descriptor) }

        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw SafeTensorsError.ioError(path, errno: errno, operation: "fstat")
        }
        // The size is a hint: the file may grow or shrink while it is read.
        var contents = [UInt8](repeating: 0, count: max(Int(status.st_size), 0) + 1)
        var filled = 0
        while true {
            if filled == contents.count {
                contents.append(contentsOf: repeatElement(0, count: max(contents.count, 1 << 16)))
            }
            let count = contents.withUnsafeMutableBytes { buffer in
                SafeTensorsFileSystemCall.readSome(
                    descriptor, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError.ioError(path, errno: errno, operation: "read")
            }
            filled += count
        }
        contents.removeSubrange(filled..<contents.count)
        return contents
    }
}

/// `read(2)`, in a namespace where `read` does not mean ``SafeTensorsArchive/read(from:)``.
private enum SafeTensorsFileSystemCall {
    /// Reads up to `count` bytes into `buffer`; returns the number read, 0 at end of file, or -1.
    static func readSome(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int)
        -> Int
    {
        read(descriptor, buffer, count)
    }
}
