import FlowWire
import Flows
import Foundation

/// The journal of a scoring job: which chunks are done, each one's results durably on disk.
///
/// A directory holding `journal` (text, one record per line) and one part file per finished
/// chunk, `chunk-<k>.part`. A chunk is recorded only after its part file is in place durably
/// (``AtomicFile``: written, fsynced, renamed, directory fsynced); the record itself is appended
/// to the ``AppendOnlyFile`` and fsynced before the chunk
/// counts as done. So after a crash at any moment every recorded chunk has its results, and an
/// unrecorded chunk is simply computed again. See `docs/scoring.md` for the byte formats.
///
/// - First line: `tributary-score-journal 2` then tab-separated `key=value` fields of the job's
///   identity (model hash, input path/size/mtime, output paths, chunk rows, row count, dtype).
///   A journal whose identity differs from the job's is refused, naming the field.
/// - Then `done <chunk> <rows> <part-hash> <check>` per chunk, `<check>` being the FNV-1a
///   64-bit hash (16 hex digits) of the text before it. A torn or corrupt last record (no line
///   break, bad check) is ignored and cut off before new records are appended.
public final class ScoreJournal {
    /// The journal's format version (the first line's second word). Parts hold encoded
    /// `scoreResult` messages, so a new protocol version is a new journal format: version 2
    /// goes with protocol version 2 (whose `scoreResult` carries `computeSeconds`).
    public static let formatVersion = 2
    static let magic = "tributary-score-journal"

    /// The job identity recorded in the first line.
    public struct Identity: Sendable, Equatable {
        /// Ordered `key=value` fields.
        public var fields: [(key: String, value: String)]

        /// An identity from ordered fields.
        public init(fields: [(key: String, value: String)]) { self.fields = fields }

        public static func == (a: Identity, b: Identity) -> Bool {
            a.fields.map(\.key) == b.fields.map(\.key) && a.fields.map(\.value) == b.fields.map(\.value)
        }

        var line: String {
            "\(ScoreJournal.magic) \(ScoreJournal.formatVersion)\t" + fields.map { "\($0.key)=\($0.value)" }.joined(separator: "\t")
        }
    }

    /// The journal's directory.
    public let directory: String
    /// Chunks recorded as done, with a part file that reads back intact.
    public private(set) var done: Set<Int> = []
    /// Records that were ignored when the journal was opened (torn last record, parts missing or damaged).
    public private(set) var ignoredRecords = 0
    private let log: AppendOnlyFile

    /// The journal file's path in `directory`.
    public static func journalPath(_ directory: String) -> String { directory + "/journal" }

    /// The part file of chunk `k`.
    public func partPath(_ chunk: Int) -> String { directory + "/chunk-\(chunk).part" }

    /// Opens the journal in `directory` for a job with `identity`: a new one (the directory must
    /// not hold a journal), or, with `resume`, an existing one of the same job (or a new one when
    /// there is none yet).
    public init(directory: String, identity: Identity, resume: Bool) throws {
        self.directory = directory
        let path = Self.journalPath(directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let exists = FileManager.default.fileExists(atPath: path)
        if exists && !resume {
            throw ScoreJournalError.unfinishedRun(journal: path, directory: directory)
        }
        var keep = 0
        var recorded: [(chunk: Int, hash: String)] = []
        if exists {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let bytes = [UInt8](data)
            guard let firstBreak = bytes.firstIndex(of: 10) else {
                throw ScoreJournalError.notAJournal(journal: path, directory: directory)
            }
            let header = String(decoding: bytes[..<firstBreak], as: UTF8.self)
            try Self.check(header: header, against: identity, path: path)
            keep = firstBreak + 1
            var start = keep
            while start < bytes.count {
                guard let lineEnd = bytes[start...].firstIndex(of: 10) else { ignoredRecords += 1; break }
                let line = String(decoding: bytes[start..<lineEnd], as: UTF8.self)
                guard let record = Self.parse(record: line) else { ignoredRecords += 1; break }
                recorded.append(record)
                start = lineEnd + 1
                keep = start
            }
        }
        // A torn last record is cut off before appending after it.
        log = try AppendOnlyFile(path: path, keepingFirst: exists ? keep : 0)
        if !exists {
            try log.append(Array((identity.line + "\n").utf8))
        }
        for record in recorded where !done.contains(record.chunk) {
            if let bytes = try? Data(contentsOf: URL(fileURLWithPath: partPath(record.chunk))),
               Self.hash([UInt8](bytes)) == record.hash, (try? ScorePart.decode([UInt8](bytes))) != nil {
                done.insert(record.chunk)
            } else {
                ignoredRecords += 1
            }
        }
    }

    /// Makes chunk `part.chunk` durable: writes and fsyncs its part file, renames it into place,
    /// fsyncs the directory, then appends and fsyncs the record.
    public func record(_ part: ScorePart) throws {
        let bytes = part.encoded()
        try AtomicFile.write(bytes, to: partPath(part.chunk))
        let text = "done \(part.chunk) \(part.result.rowCount) \(Self.hash(bytes))"
        try log.append(Array((text + " " + Self.hex(Self.fnv1a(Array(text.utf8))) + "\n").utf8))
        done.insert(part.chunk)
    }

    /// Reads the part file of a recorded chunk.
    public func part(_ chunk: Int) throws -> ScorePart {
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: partPath(chunk))))
        return try ScorePart.decode(bytes)
    }

    /// Removes the journal and its parts (after the outputs are in place).
    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    static func check(header: String, against identity: Identity, path: String) throws {
        let prefix = "\(magic) "
        guard header.hasPrefix(prefix) else {
            throw ScoreJournalError.notAJournal(journal: path, directory: String(path.dropLast("/journal".count)))
        }
        let parts = header.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        let version = parts[0].dropFirst(prefix.count)
        guard version == String(formatVersion) else {
            throw ScoreJournalError.formatVersion(journal: path, found: String(version), supported: formatVersion)
        }
        var found: [String: String] = [:]
        for field in parts.dropFirst() {
            guard let eq = field.firstIndex(of: "=") else { continue }
            found[String(field[..<eq])] = String(field[field.index(after: eq)...])
        }
        for (key, value) in identity.fields where found[key] != value {
            throw ScoreJournalError.anotherJob(journal: path, field: key, journalValue: found[key], jobValue: value)
        }
    }

    static func parse(record line: String) -> (chunk: Int, hash: String)? {
        let words = line.split(separator: " ").map(String.init)
        guard words.count == 5, words[0] == "done", let chunk = Int(words[1]), chunk >= 0, Int(words[2]) != nil else { return nil }
        let text = words[0..<4].joined(separator: " ")
        guard hex(fnv1a(Array(text.utf8))) == words[4] else { return nil }
        return (chunk, words[3])
    }

    /// FNV-1a, 64 bits.
    public static func fnv1a<C: Collection>(_ bytes: C, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where C.Element == UInt8 {
        var h = seed
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01B3
        }
        return h
    }

    static func hash(_ bytes: [UInt8]) -> String { hex(fnv1a(bytes)) }

    /// 16 lowercase hex digits.
    public static func hex(_ value: UInt64) -> String {
        let s = String(value, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

/// One finished chunk as the journal keeps it: the `scoreResult` (statuses already including
/// `malformedInput`) and the reader's reasons for malformed rows.
///
/// Bytes: `u64` length n of the encoded `scoreResult` message (protocol §4), the n bytes, then
/// `u32` count of reasons, each `u32` row within the chunk, `u32` byte length, UTF-8 text.
public struct ScorePart: Sendable, Equatable {
    /// The chunk index.
    public var chunk: Int { Int(result.chunk) }
    /// The chunk's results.
    public var result: WireMessage.ScoreResult
    /// Reasons for malformed rows, by row within the chunk.
    public var reasons: [Int: String]

    /// A part with the given fields.
    public init(result: WireMessage.ScoreResult, reasons: [Int: String]) {
        self.result = result
        self.reasons = reasons
    }

    /// The part's bytes.
    public func encoded() -> [UInt8] {
        let message = WireMessage.scoreResult(result).encoded()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(message.count + 12)
        Self.put(UInt64(message.count), into: &bytes)
        bytes += message
        Self.put(UInt32(reasons.count), into: &bytes)
        for row in reasons.keys.sorted() {
            let text = Array(reasons[row]!.utf8)
            Self.put(UInt32(row), into: &bytes)
            Self.put(UInt32(text.count), into: &bytes)
            bytes += text
        }
        return bytes
    }

    /// Decodes part bytes (every field checked).
    public static func decode(_ bytes: [UInt8]) throws -> ScorePart {
        var at = 0
        func take(_ n: Int) throws -> ArraySlice<UInt8> {
            guard n >= 0, bytes.count - at >= n else { throw ScoreJournalError.damagedPart(reason: "truncated") }
            defer { at += n }
            return bytes[at..<(at + n)]
        }
        func integer<T: FixedWidthInteger>(_: T.Type) throws -> T {
            try take(MemoryLayout<T>.size).reversed().reduce(T(0)) { ($0 << 8) | T($1) }
        }
        let length = try integer(UInt64.self)
        guard length <= UInt64(bytes.count) else { throw ScoreJournalError.damagedPart(reason: "truncated") }
        guard case .scoreResult(let result) = try WireMessage.decode(take(Int(length))) else {
            throw ScoreJournalError.damagedPart(reason: "it does not hold a score result")
        }
        var reasons: [Int: String] = [:]
        let count = try integer(UInt32.self)
        for _ in 0..<count {
            let row = Int(try integer(UInt32.self))
            let n = Int(try integer(UInt32.self))
            reasons[row] = String(decoding: try take(n), as: UTF8.self)
        }
        guard at == bytes.count else { throw ScoreJournalError.damagedPart(reason: "trailing bytes") }
        return ScorePart(result: result, reasons: reasons)
    }

    private static func put<T: FixedWidthInteger>(_ value: T, into bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes += $0 }
    }
}
