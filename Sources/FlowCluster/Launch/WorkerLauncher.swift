import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Starts local worker processes and makes sure none outlives the run: `terminateAll()` on
/// every exit path, `terminateAllFromSignalHandler()` from SIGINT/SIGTERM handlers, and each
/// worker is given the launcher's pid so it exits if its parent disappears (even by SIGKILL).
public final class WorkerLauncher {
    /// The executable the workers run (normally this very program).
    public let executable: String
    /// The pids started and not yet reaped.
    public private(set) var pids: [pid_t] = []

    /// Pids for the signal handler: a fixed C array, readable without allocation or locks.
    /// A slot holds the pid of a started process until that process is reaped, then 0: the
    /// slot is cleared while the exited process is still a zombie (so its pid cannot have been
    /// reused yet), and only then reaped — the handler never signals a pid the system may have
    /// given to another process. `registered` is the high-water mark of used slots.
    nonisolated(unsafe) private static let registry = UnsafeMutablePointer<pid_t>.allocate(capacity: registryCapacity)
    nonisolated(unsafe) private static var registered = 0
    private static let registryCapacity = 4096

    public init(executable: String) {
        self.executable = executable
    }

    /// The path of the running executable (`/proc/self/exe` resolved).
    public static var currentExecutable: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts one process with `arguments` (after the executable name); its standard output
    /// goes to `/dev/null`, standard error is inherited unless `logFile` is given.
    @discardableResult
    public func start(arguments: [String], logFile: String? = nil) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        if let logFile {
            posix_spawn_file_actions_addopen(&actions, 2, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard status == 0 else {
            throw TrainingError.invalidOption("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        pids.append(pid)
        Self.register(pid)
        return pid
    }

    /// Reaps the processes that have exited and returns how many are still running.
    public func running() -> Int {
        pids.removeAll { pid in Self.reapIfExited(pid) }
        return pids.count
    }

    /// Sends SIGTERM to every process, waits up to `grace` seconds, then SIGKILLs the rest and
    /// reaps them all.
    public func terminateAll(grace: Double = 2) {
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        var remaining = pids
        while !remaining.isEmpty && Date() < deadline {
            remaining.removeAll { pid in Self.reapIfExited(pid) }
            if !remaining.isEmpty { usleep(20_000) }
        }
        for pid in remaining {
            kill(pid, SIGKILL)
            // Killed but not reaped: the pid is still ours while we clear its slot.
            Self.unregister(pid)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids.removeAll()
    }

    /// For SIGINT/SIGTERM handlers: SIGKILLs every process this program started and has not
    /// reaped (async-signal-safe: reads a fixed C array, no allocation, no lock).
    public static func terminateAllFromSignalHandler() {
        for i in 0..<registered where registry[i] > 0 { kill(registry[i], SIGKILL) }
    }

    /// The pids the signal handler would kill now (for tests).
    static var registeredPids: [pid_t] {
        (0..<registered).map { registry[$0] }.filter { $0 > 0 }
    }

    /// Reaps `pid` if it has exited, clearing its registry slot first; true if it was reaped.
    private static func reapIfExited(_ pid: pid_t) -> Bool {
        // Look without reaping (WNOWAIT): an exited child stays a zombie, its pid reserved.
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0,
            info._sifields._sigchld.si_pid == pid
        else { return false }
        unregister(pid)
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == pid
    }

    private static func register(_ pid: pid_t) {
        for i in 0..<registered where registry[i] == 0 {
            registry[i] = pid
            return
        }
        guard registered < registryCapacity else { return }
        registry[registered] = pid
        registered += 1
    }

    private static func unregister(_ pid: pid_t) {
        for i in 0..<registered where registry[i] == pid { registry[i] = 0 }
    }
}
