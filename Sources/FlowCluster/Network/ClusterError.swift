import Foundation

/// Errors of the cluster runtimes.
public enum ClusterError: Error, CustomStringConvertible, Sendable {
    /// An endpoint that plain (unencrypted) TCP must not use without `--insecure`.
    case insecureEndpoint(String)
    /// A checkpoint that does not belong to this run.
    case checkpointMismatch(path: String, reason: String)
    /// A socket-level failure, with the operation.
    case socket(operation: String, error: String)
    /// The job cannot go on.
    case jobFailed(String)

    public var description: String {
        switch self {
        case .insecureEndpoint(let endpoint):
            return "\(endpoint): plain TCP is only allowed on loopback or IPC; secure it with CURVE (--key with --authorized-keys or --server-key, see docs/security.md), or pass --insecure to bind or connect it anyway (anyone who can reach it can join or read the job)"
        case .checkpointMismatch(let path, let reason):
            return "\(path): \(reason)"
        case .socket(let operation, let error):
            return "\(operation): \(error)"
        case .jobFailed(let reason):
            return reason
        }
    }

    /// Checks that `endpoint` is IPC, in-process or loopback TCP (``Endpoint/isLocal``) unless
    /// `insecure`. Parse it first (``Endpoint/init(parsing:role:)``) for a precise message about
    /// a malformed endpoint.
    public static func checkEndpoint(_ endpoint: String, insecure: Bool) throws {
        guard !insecure else { return }
        if let parsed = try? Endpoint(parsing: endpoint, role: .bind), parsed.isLocal { return }
        throw ClusterError.insecureEndpoint(endpoint)
    }
}
