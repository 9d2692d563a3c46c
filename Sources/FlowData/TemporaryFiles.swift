#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The temporary files this process is writing (the writers' staged outputs), so that a signal
/// handler can remove them before the process exits, and the removal of temporary files that an
/// earlier, now dead, process left next to an output.
///
/// Our temporary name for a destination `dir/name` is `dir/.name.tmp-<pid>-<suffix>` (staged data
/// files, a scoring side report; `AtomicFile` names model files the same way). Nothing else is
/// ever removed.
public enum TemporaryFiles {
    /// Slots for the registered paths, read by the signal handler without a lock. A slot holds
    /// a `strdup`'d C string or nil; strings are never freed (a handler running on another thread
    /// may be reading one), so a slot costs one short string per registration.
    nonisolated(unsafe) private static let slots: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let p = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: slotCount)
        p.initialize(repeating: nil, count: slotCount)
        return p
    }()
    private static let slotCount = 256
    private static let lock = Mutex(())

    /// Records `path` as a temporary file of this process (best effort: beyond 256 live files
    /// the rest are not registered).
    public static func register(_ path: String) {
        lock.withLock { _ in
            for i in 0..<slotCount where slots[i] == nil {
                slots[i] = strdup(path)
                return
            }
        }
    }

    /// Forgets `path` (it was renamed into place or removed).
    public static func unregister(_ path: String) {
        lock.withLock { _ in
            for i in 0..<slotCount {
                if let s = slots[i], String(cString: s) == path {
                    slots[i] = nil
                    return
                }
            }
        }
    }

    /// Removes every registered file. Only `unlink` is called: safe in a signal handler.
    public static func unlinkAllFromSignalHandler() {
        for i in 0..<slotCount {
            if let s = slots[i] { unlink(s) }
        }
    }

    /// The temporary name `dir/.name.tmp-<pid>-<attempt>` for `destination` (`dir/name`).
    public static func temporaryPath(for destination: String, attempt: Int) -> String {
        let (prefix, base) = split(destination)
        return "\(prefix).\(base).tmp-\(getpid())-\(attempt)"
    }

    /// The directory prefix (empty, or ending in `/`) and the base name of `path`.
    private static func split(_ path: String) -> (prefix: String, base: String) {
        let directory = PosixFile.directory(of: path)
        let prefix = (directory == "." && !path.hasPrefix("./")) ? "" : directory + (directory == "/" ? "" : "/")
        return (prefix, PosixFile.baseName(of: path))
    }

    /// Removes the temporary files that processes no longer running left for `destination`
    /// (names as above, with a process id that is not alive), and returns their paths. The
    /// temporary files of a live process — another run writing the same output — are kept.
    @discardableResult
    public static func removeStale(for destination: String) -> [String] {
        let (prefix, base) = split(destination)
        guard let dir = opendir(PosixFile.directory(of: destination)) else { return [] }
        defer { closedir(dir) }
        var removed: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.baseAddress!.assumingMemoryBound(to: CChar.self))
            }
            guard let pid = ownerProcess(of: name, base: base), pid != getpid(), !isAlive(pid) else { continue }
            let path = prefix + name
            if unlink(path) == 0 { removed.append(path) }
        }
        return removed.sorted()
    }

    /// The process id in `name` when it is our temporary name for `base`, else nil.
    static func ownerProcess(of name: String, base: String) -> pid_t? {
        let staged = "." + base + ".tmp-"
        guard name.hasPrefix(staged) else { return nil }
        let rest = name.dropFirst(staged.count)
        guard let dash = rest.firstIndex(of: "-"), rest.index(after: dash) < rest.endIndex else { return nil }
        return digits(rest[..<dash])
    }

    private static func digits(_ text: Substring) -> pid_t? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return pid_t(text)
    }

    private static func isAlive(_ pid: pid_t) -> Bool {
        kill(pid, 0) == 0 || errno != ESRCH
    }
}
