#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A TensorBoard event file (`events.out.tfevents.<seconds>.<host>.<pid>` in a log directory):
/// TFRecord records — a little-endian `u64` length, its masked CRC-32C, the payload and its
/// masked CRC-32C — each holding one `Event` protocol buffer, encoded here by hand (no protobuf
/// library): `wall_time` (field 1, double), `step` (2, int64), `file_version` (3, the first
/// record's "brain.Event:2"), `summary` (5: repeated `Value` with `tag` = 1 and `simple_value` = 2,
/// a float) and `session_log` (7: `status` = 1, START).
///
/// A resumed run writes a new file that starts with a `SessionLog.START` at the first step it
/// will write: TensorBoard's reader then drops the events of earlier files from that step on (its
/// "purge orphaned data"), so the curves show each step once. Records are appended with `write`
/// and reach the disk at `flush()` (TensorBoard reads the file while it grows).
public final class TensorBoardEventFile {
    /// The file's path.
    public let path: String
    private let fd: Int32
    private var pending: [UInt8] = []

    /// Creates a new event file in `directory` (made, with its parents, if missing) and writes
    /// its version record; `resumingAt` writes a `SessionLog.START` at that step first (a resumed run).
    public init(directory: String, wallTime: Double, resumingAt: Int? = nil) throws(DataError) {
        var made = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {
            made += "/" + part
            if mkdir(made, 0o755) != 0 && errno != EEXIST {
                throw DataError.ioError(file: made, operation: "create the TensorBoard directory", errno: errno)
            }
        }
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count - 1)
        let hostName = String(cString: host)
        path = "\(directory)/events.out.tfevents.\(Int(wallTime)).\(hostName.isEmpty ? "localhost" : hostName).\(getpid())"
        let opened = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard opened >= 0 else { throw DataError.ioError(file: path, operation: "create", errno: errno) }
        fd = opened
        var first = Protobuf()
        first.double(1, wallTime)
        first.string(3, "brain.Event:2")
        append(first.bytes)
        if let step = resumingAt {
            var event = Protobuf()
            event.double(1, wallTime)
            event.varint(2, UInt64(step))
            var log = Protobuf()
            log.varint(1, 1)  // SessionLog.START
            event.message(7, log)
            append(event.bytes)
        }
        try flush()
    }

    deinit { close(fd) }

    /// Appends one event with `scalars` (tag, value) at `step`.
    public func write(step: Int, wallTime: Double, scalars: [(tag: String, value: Double)]) {
        var summary = Protobuf()
        for (tag, value) in scalars {
            var v = Protobuf()
            v.string(1, tag)
            v.float(2, Float(value))
            summary.message(1, v)
        }
        var event = Protobuf()
        event.double(1, wallTime)
        event.varint(2, UInt64(max(0, step)))
        event.message(5, summary)
        append(event.bytes)
    }

    /// Writes the appended records to the file.
    public func flush() throws(DataError) {
        var offset = 0
        while offset < pending.count {
            let n = pending[offset...].withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError.ioError(file: path, operation: "write", errno: errno)
            }
            offset += n
        }
        pending.removeAll(keepingCapacity: true)
    }

    private func append(_ payload: [UInt8]) {
        var length = [UInt8]()
        withUnsafeBytes(of: UInt64(payload.count).littleEndian) { length.append(contentsOf: $0) }
        pending += length
        withUnsafeBytes(of: CRC32C.masked(length).littleEndian) { pending.append(contentsOf: $0) }
        pending += payload
        withUnsafeBytes(of: CRC32C.masked(payload).littleEndian) { pending.append(contentsOf: $0) }
    }
}

/// The few protocol-buffer encodings an `Event` needs.
struct Protobuf {
    private(set) var bytes: [UInt8] = []

    private mutating func raw(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { raw(UInt64(field) << 3 | wireType) }

    mutating func varint(_ field: Int, _ value: UInt64) {
        key(field, 0)
        raw(value)
    }

    mutating func double(_ field: Int, _ value: Double) {
        key(field, 1)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ field: Int, _ value: String) { lengthDelimited(field, Array(value.utf8)) }

    mutating func message(_ field: Int, _ value: Protobuf) { lengthDelimited(field, value.bytes) }

    private mutating func lengthDelimited(_ field: Int, _ payload: [UInt8]) {
        key(field, 2)
        raw(UInt64(payload.count))
        bytes += payload
    }
}

private func posixWrite(_ fd: Int32, _ bytes: UnsafeRawPointer?, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.write(fd, bytes, count)
    #else
    Darwin.write(fd, bytes, count)
    #endif
}
