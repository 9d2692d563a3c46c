#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The files a command reads and writes, checked together before any expensive work starts:
/// every output can be written (its directory exists, it is not itself a directory, it is
/// writable), no output is one of the inputs, and no two outputs are the same file.
///
/// Files are compared by ``FileIdentity`` (device and inode), never by name. An output that
/// does not exist yet is identified by its directory's identity and its last path component,
/// so `o.npy` and `./o.npy` collide too.
///
///     try OutputPlan()
///         .reading("--input", input)
///         .writing("--output", output)
///         .writing("--latent", latent)
///         .check()
public struct OutputPlan: Sendable {
    /// What an output is.
    public enum Kind: Sendable {
        /// A file, created or replaced.
        case file
        /// A directory, created (with its missing parents) when absent.
        case directory
    }

    private var inputs: [(option: String, path: String)] = []
    private var outputs: [(option: String, path: String, kind: Kind)] = []

    /// An empty plan.
    public init() {}

    /// Adds an input (`option` names it in messages, e.g. `--data`); `nil` is skipped.
    public func reading(_ option: String, _ path: String?) -> OutputPlan {
        var plan = self
        if let path { plan.inputs.append((option, path)) }
        return plan
    }

    /// Adds an output; `nil` is skipped.
    public func writing(_ option: String, _ path: String?, kind: Kind = .file) -> OutputPlan {
        var plan = self
        if let path { plan.outputs.append((option, path, kind)) }
        return plan
    }

    /// Checks every output, then every pair; throws the first problem found.
    public func check() throws(OutputPathError) {
        var seen: [(option: String, path: String, key: Key)] = []
        for output in outputs {
            let key = try Self.checkWritable(output.option, output.path, output.kind)
            for input in inputs {
                if let id = FileIdentity(path: input.path), case .existing(id) = key {
                    throw .sameFile(output: output.option, outputPath: output.path, other: input.option, otherPath: input.path, otherIsInput: true)
                }
            }
            if let earlier = seen.first(where: { $0.key == key }) {
                throw .sameFile(output: output.option, outputPath: output.path, other: earlier.option, otherPath: earlier.path, otherIsInput: false)
            }
            seen.append((output.option, output.path, key))
        }
    }

    /// How an output is recognised: by its own identity when it exists, else by its directory's
    /// identity and its name.
    private enum Key: Equatable {
        case existing(FileIdentity)
        case new(directory: FileIdentity, name: String)
    }

    private static func checkWritable(_ option: String, _ path: String, _ kind: Kind) throws(OutputPathError) -> Key {
        guard !path.isEmpty else { throw .empty(option: option) }
        if let id = FileIdentity(path: path) {
            let isDirectory = FileIdentity.isDirectory(path)
            switch kind {
            case .file where isDirectory: throw .isDirectory(option: option, path: path)
            case .directory where !isDirectory: throw .notDirectory(option: option, path: path)
            default: break
            }
            guard access(path, isDirectory ? W_OK | X_OK : W_OK) == 0 else {
                throw .notWritable(option: option, path: path, errno: errno)
            }
            return .existing(id)
        }
        let trimmed = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
        let parent: String
        let name: String
        if let slash = trimmed.lastIndex(of: "/") {
            parent = slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
            name = String(trimmed[trimmed.index(after: slash)...])
        } else {
            parent = "."
            name = trimmed
        }
        if kind == .file && path.hasSuffix("/") { throw .isDirectory(option: option, path: path) }
        guard let parentID = FileIdentity(path: parent) else {
            if kind == .directory {
                // Missing parents are created: the nearest existing ancestor must be writable.
                _ = try checkWritable(option, parent, .directory)
                return .new(directory: FileIdentity(path: "/")!, name: trimmed)
            }
            throw .missingDirectory(option: option, path: path, directory: parent)
        }
        guard FileIdentity.isDirectory(parent) else { throw .missingDirectory(option: option, path: path, directory: parent) }
        guard access(parent, W_OK | X_OK) == 0 else { throw .notWritable(option: option, path: parent, errno: errno) }
        return .new(directory: parentID, name: name)
    }
}

/// Why an output path cannot be used; every case names the option and the path.
public enum OutputPathError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path is empty.
    case empty(option: String)
    /// The directory that should hold the output does not exist (or is not a directory).
    case missingDirectory(option: String, path: String, directory: String)
    /// A file output names an existing directory.
    case isDirectory(option: String, path: String)
    /// A directory output names an existing file.
    case notDirectory(option: String, path: String)
    /// The output (or its directory) exists but this process may not write it.
    case notWritable(option: String, path: String, errno: Int32)
    /// An output is the same file as an input or as another output.
    case sameFile(output: String, outputPath: String, other: String, otherPath: String, otherIsInput: Bool)

    public var description: String {
        switch self {
        case .empty(let option):
            return "\(option): the path is empty"
        case .missingDirectory(let option, let path, let directory):
            return "\(option) \(path): the directory \(directory) does not exist; create it first"
        case .isDirectory(let option, let path):
            return "\(option) \(path) is a directory; give a file name"
        case .notDirectory(let option, let path):
            return "\(option) \(path) is a file, not a directory"
        case .notWritable(let option, let path, let code):
            return "\(option): cannot write \(path): \(String(cString: strerror(code))) (errno \(code))"
        case .sameFile(let output, let outputPath, let other, let otherPath, let otherIsInput):
            let what = otherIsInput ? "the input" : "the output"
            let alias = outputPath == otherPath ? "" : " (\(otherPath))"
            return "\(output) \(outputPath) is the same file as \(what) \(other)\(alias); writing it would destroy \(otherIsInput ? "the input" : "one of them"): choose another path"
        }
    }
}
