#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A ZeroMQ endpoint as the commands take it (`coordinator --bind`, `worker --connect`,
/// `score --bind`), parsed and checked before any socket exists (docs/operations.md).
///
/// Accepted forms:
/// - `tcp://HOST:PORT` where HOST is an IPv4 address, `localhost`, an IPv6 address in brackets
///   (`[::1]`), a host name (connect) or an interface name (bind), or `*` (bind only: every
///   interface); PORT is 1…65535, or `*` (bind only: any free port).
/// - `ipc://PATH` (a Unix socket path of at most 107 bytes), `inproc://NAME`.
///
/// `localhost` is given to libzmq as `127.0.0.1` on both sides: libzmq reads a bind's host as an
/// interface name (so `localhost` would fail with "No such device") and a connect's through DNS
/// (which may answer `::1` while the other side listens on IPv4). IPv6 addresses need
/// `ZMQ_IPV6` on the socket: ``isIPv6`` says when (see ``ZMQSocket/bind(endpoint:)``).
public struct Endpoint: Sendable, Equatable, CustomStringConvertible {
    /// Whether the endpoint is bound (a coordinator) or connected to (a worker).
    public enum Role: Sendable, Equatable {
        case bind, connect
    }

    /// The endpoint as written.
    public let text: String
    /// The transport: `tcp`, `ipc` or `inproc`.
    public let scheme: String
    /// The host of a TCP endpoint, without brackets (`127.0.0.1`, `::1`, `*`, a name); nil otherwise.
    public let host: String?
    /// The port of a TCP endpoint; nil for `*` (any free port) and for other transports.
    public let port: Int?
    /// Whether the host is an IPv6 address (the socket needs `ZMQ_IPV6`).
    public let isIPv6: Bool
    /// Whether the endpoint is reachable from this machine only: IPC, in-process, or TCP on
    /// `localhost`, `127.0.0.0/8` or `::1` (the rule for plain, unencrypted sockets).
    public let isLocal: Bool
    /// The address handed to libzmq (`localhost` becomes `127.0.0.1`).
    public let zmqAddress: String

    public var description: String { text }

    /// Parses `text` for `role`.
    ///
    /// - Throws: ``EndpointError`` naming what is wrong and, where it can, what to write.
    public init(parsing text: String, role: Role) throws(EndpointError) {
        self.text = text
        guard let separator = text.range(of: "://") else {
            throw .missingScheme(endpoint: text)
        }
        scheme = String(text[..<separator.lowerBound])
        let rest = String(text[separator.upperBound...])
        switch scheme {
        case "ipc":
            guard !rest.isEmpty else { throw .emptyPath(endpoint: text) }
            guard rest.utf8.count <= Self.maximumIPCPathBytes else {
                throw .pathTooLong(endpoint: text, bytes: rest.utf8.count)
            }
            (host, port, isIPv6, isLocal, zmqAddress) = (nil, nil, false, true, text)
        case "inproc":
            guard !rest.isEmpty else { throw .emptyPath(endpoint: text) }
            (host, port, isIPv6, isLocal, zmqAddress) = (nil, nil, false, true, text)
        case "tcp":
            let (host, portText) = try Self.splitHostPort(rest, endpoint: text)
            guard !host.isEmpty else { throw .emptyHost(endpoint: text) }
            if portText == "*" {
                guard role == .bind else { throw .wildcardOnConnect(endpoint: text, part: "port") }
                port = nil
            } else {
                guard !portText.isEmpty else { throw .missingPort(endpoint: text) }
                guard portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber), let number = Int(portText), (1...65535).contains(number) else {
                    throw .badPort(endpoint: text, port: portText)
                }
                port = number
            }
            let bracketed = rest.hasPrefix("[")
            if bracketed {
                guard Self.ipv6Bytes(host) != nil else { throw .badHost(endpoint: text, host: host, reason: "is not an IPv6 address") }
            } else if host.contains(":") {
                throw .badHost(endpoint: text, host: host, reason: "looks like an IPv6 address: write it in brackets, e.g. tcp://[::1]:5570")
            }
            if host == "*" && role == .connect { throw .wildcardOnConnect(endpoint: text, part: "host") }
            let resolvedHost = host.lowercased() == "localhost" ? "127.0.0.1" : host
            self.host = host
            isIPv6 = bracketed
            isLocal = Self.isLoopback(host: host, bracketed: bracketed)
            zmqAddress = "tcp://" + (bracketed ? "[\(host)]" : resolvedHost) + ":" + portText
        default:
            throw .unknownScheme(endpoint: text, scheme: scheme)
        }
    }

    /// The longest IPC path libzmq accepts (the size of `sun_path` less its terminating zero).
    public static let maximumIPCPathBytes = 107

    /// `HOST:PORT` or `[HOST]:PORT` → (HOST, PORT); the port is the text after the last colon.
    private static func splitHostPort(_ rest: String, endpoint: String) throws(EndpointError) -> (String, String) {
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else {
                throw .badHost(endpoint: endpoint, host: rest, reason: "has no closing bracket")
            }
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { throw .missingPort(endpoint: endpoint) }
            return (host, String(after.dropFirst()))
        }
        guard let colon = rest.lastIndex(of: ":") else { throw .missingPort(endpoint: endpoint) }
        return (String(rest[..<colon]), String(rest[rest.index(after: colon)...]))
    }

    private static func isLoopback(host: String, bracketed: Bool) -> Bool {
        if bracketed {
            guard let bytes = ipv6Bytes(host) else { return false }
            if bytes == Array(repeating: 0, count: 15) + [1] { return true }  // ::1
            // ::ffff:127.x.y.z, an IPv4 loopback address written as IPv6
            return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF && bytes[12] == 127
        }
        if host.lowercased() == "localhost" { return true }
        var address = in_addr()
        guard inet_pton(AF_INET, host, &address) == 1 else { return false }
        return UInt32(bigEndian: address.s_addr) >> 24 == 127
    }

    private static func ipv6Bytes(_ host: String) -> [UInt8]? {
        var address = in6_addr()
        guard inet_pton(AF_INET6, host, &address) == 1 else { return nil }
        return withUnsafeBytes(of: &address) { Array($0) }
    }
}

/// Why an endpoint was refused; each message names the endpoint and what to write instead.
public enum EndpointError: Error, CustomStringConvertible, Equatable, Sendable {
    /// No `scheme://` (e.g. `127.0.0.1:5570`).
    case missingScheme(endpoint: String)
    /// A scheme ZeroMQ does not speak here (e.g. `http`).
    case unknownScheme(endpoint: String, scheme: String)
    /// A TCP endpoint without `:PORT`.
    case missingPort(endpoint: String)
    /// A port that is not a number in 1…65535.
    case badPort(endpoint: String, port: String)
    /// `tcp://:5570`.
    case emptyHost(endpoint: String)
    /// A host that cannot be used as written.
    case badHost(endpoint: String, host: String, reason: String)
    /// `*` as the host or port of an endpoint to connect to.
    case wildcardOnConnect(endpoint: String, part: String)
    /// `ipc://` or `inproc://` with nothing after it.
    case emptyPath(endpoint: String)
    /// An IPC path longer than a Unix socket address holds.
    case pathTooLong(endpoint: String, bytes: Int)

    public var description: String {
        switch self {
        case .missingScheme(let endpoint):
            let suggestion = endpoint.hasPrefix("/") ? "ipc://\(endpoint)" : "tcp://\(endpoint)"
            return "endpoint \"\(endpoint)\" has no scheme: write \(suggestion) (tcp://HOST:PORT or ipc://PATH)"
        case .unknownScheme(let endpoint, let scheme):
            return "endpoint \"\(endpoint)\": unknown scheme \"\(scheme)://\"; use tcp://HOST:PORT or ipc://PATH"
        case .missingPort(let endpoint):
            return "endpoint \"\(endpoint)\" has no port: write tcp://HOST:PORT with PORT in 1…65535"
        case .badPort(let endpoint, let port):
            return "endpoint \"\(endpoint)\": port \"\(port)\" is not a number in 1…65535"
        case .emptyHost(let endpoint):
            return "endpoint \"\(endpoint)\" has an empty host: write tcp://127.0.0.1:PORT, tcp://HOST:PORT, or tcp://*:PORT to bind every interface"
        case .badHost(let endpoint, let host, let reason):
            return "endpoint \"\(endpoint)\": host \"\(host)\" \(reason)"
        case .wildcardOnConnect(let endpoint, let part):
            return "endpoint \"\(endpoint)\": \"*\" as the \(part) only makes sense when binding; connect to the coordinator's address and port"
        case .emptyPath(let endpoint):
            return "endpoint \"\(endpoint)\" has an empty path"
        case .pathTooLong(let endpoint, let bytes):
            return "endpoint \"\(endpoint)\": the IPC path is \(bytes) bytes, more than the \(Endpoint.maximumIPCPathBytes) a Unix socket address holds; use a shorter path"
        }
    }
}
