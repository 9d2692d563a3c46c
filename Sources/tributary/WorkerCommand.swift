import ArgumentParser
import FlowCluster
import Foundation

/// `tributary worker`: compute micro-batch gradients for a coordinator.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join a coordinator and compute micro-batch gradients or score chunks until the job ends.",
        discussion: """
            The worker needs no data files: the coordinator sends the rows of the shards it owns. \
            It reconnects and rejoins when the coordinator goes silent or restarts. It gives up \
            when no coordinator answers within --connect-timeout (exit 69) or the coordinator \
            refuses it at the handshake --max-refusals times in a row, or refuses its hello for good (exit 77). On SIGINT or \
            SIGTERM it says goodbye to the coordinator and exits 130 or 143.
            """)

    @Option(help: "The coordinator's endpoint: tcp://HOST:PORT (IPv4, localhost, [IPv6] or a host name) or ipc://PATH.")
    var connect: String

    @Option(name: .customLong("connect-timeout"), help: "Give up (exit 69) when no coordinator has welcomed this worker within this many seconds; 0 waits forever.")
    var connectTimeout: Double = 60

    @Option(name: .customLong("max-refusals"), help: "Give up (exit 77) after the coordinator refused this many handshakes in a row (unauthorised key, CURVE on one side only; about one every 5 s); 0 retries forever.")
    var maxRefusals: Int = 5

    @Option(help: "Micro-batches computed at once (one thread and one BLAS thread each).")
    var threads: Int = 1

    @Option(name: .customLong("peer-endpoint"), help: ArgumentHelp(
        "Where this worker listens for other workers (--exchange sharded): tcp://ADDRESS:PORT with an address of this host they can reach (port 0: any free port), ipc://PATH, or none. Default: tcp://127.0.0.1:0 when the coordinator is on this host (loopback or ipc), else none.",
        valueName: "endpoint"))
    var peerEndpoint: String?

    @Option(help: "A name for logs (default: host-pid).")
    var name: String?

    @Flag(help: "Allow plain TCP to a non-loopback address (unencrypted, unauthenticated).")
    var insecure = false

    @Option(help: "This worker's CURVE secret key file (NAME.key from `tributary keygen`); turns on CURVE.")
    var key: String?

    @Option(name: .customLong("server-key"), help: "The coordinator's public key file (its NAME.pub): the only coordinator this worker talks to.")
    var serverKey: String?

    @Option(name: .customLong("parent-pid"), help: ArgumentHelp("Exit when this process is gone (set by train --workers).", visibility: .hidden))
    var parentPID: Int32?

    @Option(name: .customLong("test-crash-after-results"), help: ArgumentHelp("Test only: exit abruptly after sending N results.", visibility: .hidden))
    var crashAfterResults: Int?

    @Option(name: .customLong("corrupt-results-every"), help: ArgumentHelp("Test only: perturb one value of every K-th result sent.", visibility: .hidden))
    var corruptResultsEvery: Int?

    func validate() throws {
        if let k = corruptResultsEvery, k < 1 { throw ValidationError("--corrupt-results-every must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard connectTimeout >= 0, connectTimeout.isFinite else { throw ValidationError("--connect-timeout must be a number of seconds ≥ 0, found \(connectTimeout)") }
        guard maxRefusals >= 0 else { throw ValidationError("--max-refusals must be ≥ 0, found \(maxRefusals)") }
    }

    func run() throws {
        let security = try ClusterSecuritySetup.client(key: key, serverKey: serverKey, endpoint: connect, insecure: insecure)
        let name = self.name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
        let worker = Worker(
            endpoint: connect, name: name, threads: threads, parentPID: parentPID, crashAfterResults: crashAfterResults,
            security: security, corruptResultsEvery: corruptResultsEvery, connectTimeout: connectTimeout > 0 ? connectTimeout : nil,
            maxRefusals: maxRefusals > 0 ? maxRefusals : nil, stopSignals: StopSignals(),
            peerEndpoint: peerEndpoint.map { $0 == "none" ? nil : $0 } ?? Self.defaultPeerEndpoint(coordinator: connect),
            log: { StandardErrorLog.write("[\(name)] \($0)") })
        do {
            try worker.run()
        } catch let error as WorkerError {
            StandardErrorLog.write("[\(name)] \(error)")
            switch error {
            case .noCoordinator: throw ExitCode(69)
            case .refused, .refusedHello: throw ExitCode(77)
            case .stopped(let signal): throw ExitCode(128 + signal)
            case .badPeerEndpoint: throw ExitCode(64)
            }
        }
    }

    /// The peer endpoint when none is given: loopback when the coordinator is on this host
    /// (a loopback or ipc endpoint), else none (a worker on another host must say where it
    /// listens).
    static func defaultPeerEndpoint(coordinator: String) -> String? {
        let local = coordinator.hasPrefix("ipc://") || coordinator.hasPrefix("tcp://127.") || coordinator.hasPrefix("tcp://localhost:")
            || coordinator.hasPrefix("tcp://[::1]:")
        return local ? "tcp://127.0.0.1:0" : nil
    }
}
