import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The cluster tests (DESIGN §3): real `tributary` processes over IPC and loopback TCP,
/// SIGKILLed, SIGSTOPped and restarted, and the model files compared byte for byte with a
/// single-process run.
///
/// Every suite of these tests is nested in this one, which is serialized: each test keeps two
/// or more processes busy, and the machine they run on may have only two cores. Every process
/// has a deadline (SIGKILL and a failure after it), and every test checks that no process it
/// started — nor any child of those — outlives it.
@Suite(.serialized) enum ClusterTests {}

/// Options of a small, fast training run shared by the cluster tests: 8 micro-batches of 64
/// rows per step, 4744 parameters, about a millisecond per step.
enum ClusterFixture {
    static func options(steps: Int) -> [String] {
        [
            "--data", "moons", "--rows", "4000", "--batch", "512", "--micro-batch", "64", "--couplings", "4",
            "--hidden", "32", "--seed", "7", "--eval-every", "100", "--steps", String(steps),
        ]
    }

    /// The exchanges every fault test runs with (`--exchange`).
    static let exchanges = ["star", "sharded"]

    /// Steps of the runs into which faults are injected: long enough (a few seconds) that a
    /// fault injected after step 300 and its recovery happen well before the end.
    static let faultSteps = 3000

    private static let cache = ReferenceCache()

    /// The model file of `tributary train` in one process with `options(steps:)`, computed once
    /// per step count (a CLI run, so the comparison is CLI against CLI).
    static func reference(steps: Int) throws -> Data {
        try cache.get(steps) {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            try CLI.succeed(["train"] + options(steps: steps) + ["--out", "reference.safetensors"], in: dir.path, timeout: 60)
            return try dir.bytes("reference.safetensors")
        }
    }

    /// `@unchecked Sendable`: `values` is only touched with `lock` held.
    private final class ReferenceCache: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Int: Data] = [:]

        func get(_ key: Int, compute: () throws -> Data) throws -> Data {
            lock.lock()
            defer { lock.unlock() }
            if let value = values[key] { return value }
            let value = try compute()
            values[key] = value
            return value
        }
    }
}

/// One background process of a cluster test, started in its own process group with standard
/// output and error in files.
///
/// `@unchecked Sendable`: used from the one test that started it; `status` is written only by
/// `poll()` on that test's thread.
final class ClusterProcess: @unchecked Sendable, CustomStringConvertible {
    let name: String
    let pid: pid_t
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String
    let started = Date()
    /// The raw wait status once reaped.
    private(set) var status: Int32?

    init(name: String, pid: pid_t, arguments: [String], stdoutPath: String, stderrPath: String) {
        self.name = name
        self.pid = pid
        self.arguments = arguments
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
    }

    /// Reaps the process if it has exited; true while it runs (or is stopped).
    @discardableResult
    func poll() -> Bool {
        guard status == nil else { return false }
        var raw: Int32 = 0
        let r = waitpid(pid, &raw, WNOHANG)
        if r == pid {
            status = raw
            return false
        }
        return r == 0
    }

    var isRunning: Bool { poll() }

    /// The exit code when it exited normally.
    var exitCode: Int32? {
        guard let status, status & 0x7f == 0 else { return nil }
        return (status >> 8) & 0xff
    }

    /// The signal that ended it.
    var terminatingSignal: Int32? {
        guard let status, status & 0x7f != 0, status & 0x7f != 0x7f else { return nil }
        return status & 0x7f
    }

    func send(_ signal: Int32) { kill(pid, signal) }

    /// Waits until the process exits; at `timeout` seconds it is SIGKILLed and false returned.
    @discardableResult
    func wait(timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while poll() {
            if Date() >= deadline {
                kill(pid, SIGCONT)
                kill(pid, SIGKILL)
                var raw: Int32 = 0
                if waitpid(pid, &raw, 0) == pid { status = raw }
                return false
            }
            usleep(10_000)
        }
        return true
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    var outcome: String {
        if let code = exitCode { return "exit \(code)" }
        if let signal = terminatingSignal { return "killed by signal \(signal)" }
        return "running"
    }

    var description: String {
        func clipped(_ text: String) -> String {
            let lines = text.replacingOccurrences(of: "\r", with: "\n").split(separator: "\n", omittingEmptySubsequences: true)
                .filter { !$0.contains("ETA ") }  // progress lines
            let kept = lines.count <= 60 ? lines : Array(lines.prefix(20)) + ["…"] + Array(lines.suffix(39))
            return kept.joined(separator: "\n")
        }
        return "[\(name)] pid \(pid): tributary \(arguments.joined(separator: " ")) → \(outcome)\n--- stdout:\n\(clipped(stdout))\n--- stderr:\n\(clipped(stderr))"
    }
}

/// The processes of one cluster test, their files (in a fresh temporary directory) and their
/// clean-up. Call `finish()` in a `defer`: it SIGKILLs whatever still runs (recording a failure),
/// checks that no descendant survives, and removes the directory.
final class ClusterHarness: @unchecked Sendable {
    let dir: TemporaryDirectory
    private(set) var processes: [ClusterProcess] = []

    init() throws {
        dir = try TemporaryDirectory()
    }

    /// glibc's `posix_spawn_file_actions_addchdir_np` (declared under `_GNU_SOURCE`, which the
    /// Swift Glibc module does not see), looked up at run time.
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32
    private static let addChdir: AddChdir? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(symbol, to: AddChdir.self)
    }()

    /// `ipc://` endpoint inside the test's directory.
    var ipcEndpoint: String { "ipc://" + dir.file("coordinator.ipc") }

    /// The `step` of every line of the metrics file `name`, in order (−1 for a line without one).
    func metricSteps(_ name: String) -> [Int] {
        ((try? String(contentsOfFile: dir.file(name), encoding: .utf8)) ?? "").split(separator: "\n").map { line -> Int in
            guard let range = line.range(of: "\"step\":") else { return -1 }
            return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? -1
        }
    }

    /// A loopback TCP endpoint on a port that was free a moment ago.
    func tcpEndpoint() throws -> String { "tcp://127.0.0.1:\(try freeTCPPort())" }

    /// Starts `tributary arguments…` in the test's directory (its working directory; stdout and
    /// stderr in `name.out` and `name.log`), in a new process group, with default signal
    /// dispositions.
    @discardableResult
    func start(_ name: String, _ arguments: [String]) throws -> ClusterProcess {
        try start(name, executable: try CLI.binary(), arguments)
    }

    @discardableResult
    func start(_ name: String, executable: String, _ arguments: [String]) throws -> ClusterProcess {
        let outPath = dir.file("\(name).out"), errPath = dir.file("\(name).log")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard let addChdir = Self.addChdir else {
            throw HarnessError("posix_spawn_file_actions_addchdir_np is not available (glibc ≥ 2.29 needed)")
        }
        _ = addChdir(&actions, dir.path)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else {
            throw HarnessError("cannot start \(executable): \(String(cString: strerror(status)))")
        }
        let process = ClusterProcess(name: name, pid: pid, arguments: arguments, stdoutPath: outPath, stderrPath: errPath)
        processes.append(process)
        note("started \(name) (pid \(pid))")
        return process
    }

    /// Waits until `condition` holds (true) or `timeout` seconds pass (false), polling every 10 ms.
    @discardableResult
    func waitUntil(timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(10_000)
        }
        return try condition()
    }

    /// The step of the last complete line of a `--metrics` file (0 when there is none yet).
    func lastStep(metrics name: String) -> Int {
        guard let data = FileManager.default.contents(atPath: dir.file(name)), !data.isEmpty else { return 0 }
        let text = String(decoding: data, as: UTF8.self)
        guard let end = text.lastIndex(of: "\n") else { return 0 }
        let complete = text[..<end]
        let line = complete.split(separator: "\n").last ?? ""
        guard let range = line.range(of: "\"step\":") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

    /// Waits until the metrics file reaches `step`; false (with the processes' logs recorded)
    /// at the timeout or when `watched` exits first.
    func waitForStep(_ step: Int, metrics name: String, while watched: ClusterProcess, timeout: Double = 30,
                     sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        let reached = waitUntil(timeout: timeout) { lastStep(metrics: name) >= step || !watched.isRunning }
        note("\(name) at step \(lastStep(metrics: name)) (waited for \(step))")
        if !reached || lastStep(metrics: name) < step {
            Issue.record("step \(step) not reached (at \(lastStep(metrics: name))):\n\(report())", sourceLocation: sourceLocation)
            return false
        }
        return true
    }

    /// Waits for `process` to exit and requires exit status 0.
    func expectSuccess(_ process: ClusterProcess, timeout: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        defer { note("\(process.name): \(process.outcome)") }
        if !process.wait(timeout: timeout) {
            Issue.record("\(process.name) did not finish within \(timeout) s and was killed:\n\(report())", sourceLocation: sourceLocation)
        } else if process.exitCode != 0 {
            Issue.record("\(process.name) failed:\n\(report())", sourceLocation: sourceLocation)
        }
    }

    private let created = Date()
    private var events: [String] = []

    /// Sends `signal` to `process` and notes it in the timeline.
    func signal(_ process: ClusterProcess, _ signal: Int32) {
        let names = [SIGKILL: "SIGKILL", SIGSTOP: "SIGSTOP", SIGCONT: "SIGCONT", SIGTERM: "SIGTERM", SIGINT: "SIGINT"]
        process.send(signal)
        note("\(names[signal] ?? "signal \(signal)") → \(process.name)")
    }

    /// Notes a moment of the test (shown, with its time, in `report()`).
    func note(_ event: String) {
        events.append(String(format: "%7.2f s  ", Date().timeIntervalSince(created)) + event)
    }

    /// The test's timeline, then every process's command, outcome and logs.
    func report() -> String {
        (events.isEmpty ? "" : "--- timeline:\n" + events.joined(separator: "\n") + "\n\n")
            + processes.map(\.description).joined(separator: "\n\n")
    }

    /// Kills (SIGKILL) every process still running — a failure, unless `expected` — and every
    /// process left in their process groups (always a failure: a stray child), reaps them,
    /// and removes the directory.
    func finish(sourceLocation: SourceLocation = #_sourceLocation) {
        var stillRunning: [String] = []
        for process in processes where process.isRunning {
            stillRunning.append("\(process.name) (pid \(process.pid))")
            process.send(SIGCONT)
            process.send(SIGKILL)
            process.wait(timeout: 5)
        }
        if !stillRunning.isEmpty {
            Issue.record("still running at the end of the test (killed): \(stillRunning.joined(separator: ", "))\n\(report())",
                         sourceLocation: sourceLocation)
        }
        // Children of our processes (e.g. the workers of `train --workers`) stay in their group.
        let groups = Set(processes.map(\.pid))
        var strays: [ProcessEntry] = []
        waitUntil(timeout: 3) {
            strays = ProcessEntry.all().filter { groups.contains($0.group) && $0.state != "Z" }
            return strays.isEmpty
        }
        if !strays.isEmpty {
            Issue.record("stray processes outlived the test (killed): \(strays)", sourceLocation: sourceLocation)
            for group in groups { kill(-group, SIGKILL) }
        }
        dir.remove()
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A process as `/proc/PID/stat` shows it.
struct ProcessEntry: CustomStringConvertible {
    var pid: pid_t
    var parent: pid_t
    var group: pid_t
    var state: Character
    var commandLine: String

    /// The process `pid`, if it exists.
    init?(pid: pid_t) {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count >= 3, let state = fields[0].first, let parent = pid_t(fields[1]), let group = pid_t(fields[2]) else { return nil }
        self.pid = pid
        self.parent = parent
        self.group = group
        self.state = state
        let raw = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") ?? Data()
        commandLine = String(decoding: raw.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self).trimmingCharacters(in: .whitespaces)
    }

    /// Every process on the machine.
    static func all() -> [ProcessEntry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { pid_t($0) }.compactMap { ProcessEntry(pid: $0) }
    }

    /// The live (not zombie) children of `parent`.
    static func children(of parent: pid_t) -> [ProcessEntry] {
        all().filter { $0.parent == parent && $0.state != "Z" }
    }

    var description: String { "pid \(pid) (parent \(parent), group \(group), state \(state)): \(commandLine)" }
}

/// A loopback TCP port that nothing listened on a moment ago.
func freeTCPPort() throws -> Int {
    let socket = try TCPListener(listening: false)
    defer { socket.close() }
    return socket.port
}

/// A loopback TCP socket bound to a free port (and listening, unless told not to), holding the
/// port for a test.
final class TCPListener {
    let fd: Int32
    let port: Int

    init(listening: Bool = true) throws {
        #if canImport(Glibc)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
            let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, !listening || listen(fd, 1) == 0 else { throw HarnessError("bind/listen: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw HarnessError("getsockname: \(String(cString: strerror(errno)))") }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        #if canImport(Glibc)
            Glibc.close(fd)
        #else
            Darwin.close(fd)
        #endif
    }
}

/// Lines of a log that contain `text`.
func lines(of log: String, containing text: String) -> [String] {
    log.replacingOccurrences(of: "\r", with: "\n").split(separator: "\n").map(String.init).filter { $0.contains(text) }
}

/// Whether two model files are the same bytes, with a readable difference when not.
func sameBytes(_ a: Data, _ b: Data) -> (Bool, String) {
    if a == b { return (true, "") }
    let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    return (false, "model files differ: \(a.count) vs \(b.count) bytes, first difference at byte \(first.map(String.init) ?? "end")")
}
