import CZeroMQ

/// Facts about the libzmq library this process is linked against.
///
/// Note: this enum shares its name with the module, so write the wrapper's types unqualified
/// (`ZMQSocket`, not `ZeroMQ.ZMQSocket`).
public enum ZeroMQ {
    /// A libzmq version number, e.g. 4.3.4.
    public struct Version: Comparable, CustomStringConvertible, Hashable, Sendable {
        /// Incremented for incompatible changes.
        public var major: Int
        /// Incremented for compatible additions.
        public var minor: Int
        /// Incremented for fixes.
        public var patch: Int

        /// A version from its three numbers.
        public init(major: Int, minor: Int, patch: Int) {
            self.major = major
            self.minor = minor
            self.patch = patch
        }

        /// Orders versions by major, then minor, then patch.
        public static func < (lhs: Version, rhs: Version) -> Bool {
            (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
        }

        /// `major.minor.patch`.
        public var description: String { "\(major).\(minor).\(patch)" }
    }

    /// The version of the linked libzmq (`zmq_version`), not of the headers compiled against.
    public static var version: Version {
        var major: Int32 = 0
        var minor: Int32 = 0
        var patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return Version(major: Int(major), minor: Int(minor), patch: Int(patch))
    }

    /// Whether libzmq was built with a capability (`zmq_has`): a transport (`"ipc"`, `"pgm"`,
    /// `"tipc"`, `"norm"`), a security mechanism (`"curve"`, `"gssapi"`) or `"draft"`.
    public static func has(_ capability: String) -> Bool {
        zmq_has(capability) != 0
    }
}
