/// Errors of the cluster's security set-up: key files, allow-lists, the ZAP handler.
public enum SecurityError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A key file or allow-list that cannot be used; `line` is 1-based when the problem is on
    /// one line.
    case keyFile(path: String, line: Int?, reason: String)
    /// The ZAP handler is missing or did not answer: the coordinator must not bind, since
    /// libzmq would then admit any client that knows the server key.
    case zapHandlerNotReady(reason: String)
    /// Options that do not fit together (e.g. a key without an allow-list).
    case misconfigured(String)

    public var description: String {
        switch self {
        case .keyFile(let path, let line, let reason):
            return line.map { "\(path):\($0): \(reason)" } ?? "\(path): \(reason)"
        case .zapHandlerNotReady(let reason):
            return "cannot authenticate workers: the ZAP handler is not running (\(reason)); refusing to bind"
        case .misconfigured(let reason):
            return reason
        }
    }
}
