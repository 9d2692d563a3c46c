import Foundation
import ZeroMQ

/// The workers a coordinator admits: the public keys of an authorized-keys file, reloadable
/// while the coordinator runs (SIGHUP in the CLI).
///
/// File format: one key per line — 40 Z85 characters, optionally followed by white space and a
/// label shown in the logs (the format of a `.pub` file, so `cat worker.pub >> authorized_keys`
/// works); blank lines and lines starting with `#` are ignored. A malformed line is an error
/// naming the file and the line; a reload that fails keeps the keys loaded before.
///
/// `@unchecked Sendable` invariant: `keys` is read and replaced only under `lock` (the ZAP
/// handler's thread reads it, a signal handler's queue reloads it).
public final class AuthorizedKeyList: @unchecked Sendable {
    /// The allow-list file.
    public let path: String
    private let lock = NSLock()
    private var keys: [CurveKey: String]
    private var revoked: Set<CurveKey> = []

    /// Loads `path`.
    public init(path: String) throws {
        self.path = path
        keys = try Self.load(path)
    }

    /// A list of fixed keys (for tests and embedding); ``reload()`` rereads `path`.
    public init(keys: [CurveKey: String], path: String = "(in memory)") {
        self.path = path
        self.keys = keys
    }

    /// The number of keys admitted.
    public var count: Int { lock.withLock { keys.count } }

    /// The label of `key` when it is admitted (empty when its line has none), nil when not —
    /// also when it was revoked.
    public func label(of key: CurveKey) -> String? {
        lock.withLock { revoked.contains(key) ? nil : keys[key] }
    }

    /// Refuses `key` for the rest of this process, whatever the file says (a reload does not
    /// undo it): the coordinator revokes the key of a quarantined worker.
    public func revoke(_ key: CurveKey) {
        lock.withLock { _ = revoked.insert(key) }
    }

    /// Whether `key` was revoked.
    public func isRevoked(_ key: CurveKey) -> Bool {
        lock.withLock { revoked.contains(key) }
    }

    /// Rereads the file. On success the new keys replace the old ones at once (connections
    /// made from now on are checked against them; established ones are not closed); on
    /// failure the old keys stay and the error is thrown.
    ///
    /// - Returns: how many keys were added and removed.
    @discardableResult
    public func reload() throws -> (added: Int, removed: Int) {
        let fresh = try Self.load(path)
        return lock.withLock {
            let added = fresh.keys.filter { keys[$0] == nil }.count
            let removed = keys.keys.filter { fresh[$0] == nil }.count
            keys = fresh
            return (added, removed)
        }
    }

    private static func load(_ path: String) throws -> [CurveKey: String] {
        try CurveKeyFile.refuseSecret(path, expected: "a list of public keys (the workers' NAME.pub lines)")
        var keys: [CurveKey: String] = [:]
        for entry in try CurveKeyFile.keyLines(path: path) where keys[entry.key] == nil {
            keys[entry.key] = entry.label
        }
        return keys
    }
}
