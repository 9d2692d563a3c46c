/// Why a worker gave up or stopped before the coordinator ended the job.
public enum WorkerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No coordinator welcomed the worker within `seconds` of starting (nobody listens at
    /// `endpoint`, or it is another kind of peer).
    case noCoordinator(endpoint: String, seconds: Double)
    /// The coordinator refused the connection at the handshake `count` times in a row (a key
    /// it does not authorise, a wrong `--server-key`, CURVE on one side only); `reason` is the
    /// explanation of the last refusal.
    case refused(endpoint: String, count: Int, reason: String)
    /// The coordinator answered the hello with a refusal that saying hello again cannot change
    /// (protocol version, dtype, no peer endpoint for the sharded exchange).
    case refusedHello(endpoint: String, reason: String)
    /// The worker was stopped by `signal` (SIGINT, SIGTERM) and said goodbye first.
    case stopped(signal: Int32)
    /// `--peer-endpoint` cannot serve as the worker's peer socket (a wildcard address, or it
    /// cannot be bound).
    case badPeerEndpoint(endpoint: String, reason: String)

    public var description: String {
        switch self {
        case .noCoordinator(let endpoint, let seconds):
            return "no coordinator answered at \(endpoint) within \(Self.format(seconds)) s (is it running, and is this its --bind endpoint?); --connect-timeout 0 waits forever"
        case .refused(let endpoint, let count, let reason):
            return "the coordinator at \(endpoint) refused this worker at the handshake \(count) time\(count == 1 ? "" : "s") in a row; giving up: \(reason)"
        case .refusedHello(let endpoint, let reason):
            return "the coordinator at \(endpoint) refused this worker: \(reason)"
        case .stopped(let signal):
            return "stopped by \(Self.signalName(signal)); said goodbye to the coordinator"
        case .badPeerEndpoint(let endpoint, let reason):
            return "--peer-endpoint \(endpoint): \(reason)"
        }
    }

    /// `SIGTERM`, `SIGINT`, else `signal N`.
    public static func signalName(_ signal: Int32) -> String {
        switch signal {
        case 2: return "SIGINT"
        case 15: return "SIGTERM"
        default: return "signal \(signal)"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }
}
