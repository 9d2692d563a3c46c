#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What makes two paths the same file: the device and inode numbers `stat(2)` reports, after
/// following symbolic links. `a.npy`, `./a.npy`, `dir/../a.npy`, a hard link and a symbolic
/// link to it all have one identity; names say nothing.
public struct FileIdentity: Hashable, Sendable {
    /// `st_dev`.
    public let device: UInt64
    /// `st_ino`.
    public let inode: UInt64

    /// The identity of the file at `path`, or `nil` when nothing is there (or it cannot be
    /// reached).
    public init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }

    /// Whether `path` is an existing directory (after following symbolic links).
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }
}
