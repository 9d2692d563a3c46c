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
    nonisolated(unsafe) private static let registry = UnsafeMutablePointer<pid_t>.allocate(capacity: 4096)
    nonisolated(unsafe) private static var registered = 0

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
        if Self.registered < 4096 {
            Self.registry[Self.registered] = pid
            Self.registered += 1
        }
        return pid
    }

    /// Reaps the processes that have exited and returns how many are still running.
    public func running() -> Int {
        pids.removeAll { pid in
            var status: Int32 = 0
            return waitpid(pid, &status, WNOHANG) == pid
        }
        return pids.count
    }

    /// Sends SIGTERM to every process, waits up to `grace` seconds, then SIGKILLs the rest and
    /// reaps them all.
    public func terminateAll(grace: Double = 2) {
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(grace)
        var remaining = pids
        while !remaining.isEmpty && Date() < deadline {
            remaining.removeAll { pid in
                var status: Int32 = 0
                return waitpid(pid, &status, WNOHANG) == pid
            }
            if !remaining.isEmpty { usleep(20_000) }
        }
        for pid in remaining {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        pids.removeAll()
    }

    /// For SIGINT/SIGTERM handlers: SIGKILLs every process this program started (async-signal-safe).
    public static func terminateAllFromSignalHandler() {
        for i in 0..<registered { kill(registry[i], SIGKILL) }
    }
}
