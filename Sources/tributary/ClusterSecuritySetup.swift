import ArgumentParser
import Dispatch
import FlowCluster
import Foundation
import ZeroMQ

/// Turning the security options of `coordinator` and `worker` into a `ClusterSecurity` side,
/// and the endpoint rule: plain TCP off loopback needs `--insecure` (with a warning), CURVE
/// may use any address.
/// The security options of a coordinator that binds an endpoint (`coordinator`, `score --bind`).
struct CoordinatorSecurityOptions: ParsableArguments {
    @Flag(help: "Allow binding plain TCP to a non-loopback address (unencrypted, unauthenticated).")
    var insecure = false

    @Option(help: "This coordinator's CURVE secret key file (NAME.key from `tributary keygen`); turns on CURVE (with --authorized-keys).")
    var key: String?

    @Option(name: .customLong("authorized-keys"), help: "The workers' public keys, one Z85 key per line (# comments); reread on SIGHUP.")
    var authorizedKeys: String?

    /// The coordinator's CURVE side for `endpoint`, or nil for plain sockets (see `ClusterSecuritySetup.server`).
    func server(endpoint: String) throws -> ClusterSecurity.Server? {
        try ClusterSecuritySetup.server(key: key, authorizedKeys: authorizedKeys, endpoint: endpoint, insecure: insecure)
    }
}

enum ClusterSecuritySetup {
    /// Writes one line to standard error.
    static func log(_ line: String) {
        StandardErrorLog.write(line)
    }

    /// The coordinator's side, or nil for plain sockets. Also installs the SIGHUP handler that
    /// reloads the allow-list (kept alive for the life of the process).
    static func server(key: String?, authorizedKeys: String?, endpoint: String, insecure: Bool) throws -> ClusterSecurity.Server? {
        _ = try parse(endpoint, role: .bind)
        guard let key, let authorizedKeys else {
            if key != nil || authorizedKeys != nil {
                throw CLIError("--key and --authorized-keys go together: the coordinator needs its key pair and the workers' public keys")
            }
            try checkPlain(endpoint, insecure: insecure, what: "accepts any worker and sends data and parameters unencrypted")
            return nil
        }
        let pair = try CurveKeyFile.readPair(path: key)
        let list = try AuthorizedKeyList(path: authorizedKeys)
        log("CURVE on: coordinator key \(pair.publicKey.fingerprint); \(list.count) worker key(s) authorised in \(authorizedKeys) (SIGHUP rereads it)")
        if list.count == 0 { log("warning: \(authorizedKeys) authorises no key: no worker can join until it does (edit it, then send SIGHUP)") }
        reloadOnHangUp(list)
        return ClusterSecurity.Server(keyPair: pair, authorizedKeys: list, log: { log($0) })
    }

    /// A worker's side, or nil for a plain socket.
    static func client(key: String?, serverKey: String?, endpoint: String, insecure: Bool) throws -> ClusterSecurity.Client? {
        _ = try parse(endpoint, role: .connect)
        guard let key, let serverKey else {
            if key != nil || serverKey != nil {
                throw CLIError("--key and --server-key go together: the worker needs its key pair and the coordinator's public key")
            }
            try checkPlain(endpoint, insecure: insecure, what: "traffic is neither encrypted nor authenticated")
            return nil
        }
        let pair = try CurveKeyFile.readPair(path: key)
        let server = try CurveKeyFile.readPublicKey(path: serverKey)
        log("CURVE on: worker key \(pair.publicKey.fingerprint); coordinator pinned to \(server.fingerprint)")
        return ClusterSecurity.Client(keyPair: pair, serverKey: server)
    }

    /// `endpoint` parsed for `role`; a malformed one is a usage error (exit 64) naming it.
    static func parse(_ endpoint: String, role: Endpoint.Role) throws -> Endpoint {
        do {
            return try Endpoint(parsing: endpoint, role: role)
        } catch {
            throw ValidationError(error.description)
        }
    }

    private static func checkPlain(_ endpoint: String, insecure: Bool, what: String) throws {
        try ClusterError.checkEndpoint(endpoint, insecure: insecure)
        if insecure, let parsed = try? Endpoint(parsing: endpoint, role: .bind), !parsed.isLocal {
            log("warning: --insecure: \(endpoint) \(what)")
        }
    }

    /// The signal source, kept for the life of the process.
    nonisolated(unsafe) private static var hangUpSource: DispatchSourceSignal?

    private static func reloadOnHangUp(_ list: AuthorizedKeyList) {
        signal(SIGHUP, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: DispatchQueue(label: "authorized-keys-reload"))
        source.setEventHandler {
            do {
                let change = try list.reload()
                log("SIGHUP: reloaded \(list.path): \(list.count) key(s) authorised (\(change.added) added, \(change.removed) removed); established connections are kept")
            } catch {
                log("SIGHUP: cannot reload the authorised keys, keeping the \(list.count) loaded before: \(error)")
            }
        }
        source.resume()
        hangUpSource = source
    }
}
