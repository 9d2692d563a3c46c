#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a text file read block by block, and the lines in them: the part of
/// ``CSVReader`` that owns the file and the raw buffer (its only raw pointer).
///
/// Lines end in `\n` or `\r\n` (the `\r` is not part of the line); the last line may lack its
/// line break. A line is handed out as a ``Line`` of indices into the buffer, valid until the
/// next call that reads (``nextLine(number:)``) or moves (``restart(at:)``); its bytes are read
/// with ``withBytes(of:_:)``. Consumed lines are dropped from the front when more is read, and
/// the buffer grows (doubling) only for a line longer than what it holds.
final class CSVLineBuffer {
    /// One line: `start..<end` are its bytes (without the line break), `next` the index after
    /// its line break.
    struct Line {
        let start: Int
        let end: Int
        let next: Int
    }

    /// Size of one read(2) call.
    static let blockSize = 1 << 20

    /// The file, as given (for messages).
    let path: String
    private let file: PosixFile
    private let lineLimit: Int
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Index of the first unconsumed byte.
    private var start = 0
    /// Index after the last byte read.
    private var end = 0
    /// File offset of `storage[0]`.
    private var fileOffset = 0
    private var atEndOfFile = false

    /// Opens `path`; lines longer than `lineLimit` bytes are refused.
    ///
    /// - Throws: ``DataError/ioError(file:operation:errno:)`` if the file cannot be opened.
    init(path: String, lineLimit: Int) throws(DataError) {
        self.path = path
        self.lineLimit = lineLimit
        file = try PosixFile.openForReading(path)
        storage = .allocate(capacity: Self.blockSize)
        capacity = Self.blockSize
    }

    deinit {
        storage.deallocate()
        file.close()
    }

    /// File offset of the first unconsumed byte.
    var byteOffset: Int { fileOffset + start }

    /// The next line after the consumed bytes, reading more of the file as needed; nil at the
    /// end of the file. `number` (1-based) names the line in a ``DataError/lineTooLong(file:line:limit:)``.
    func nextLine(number: Int) throws(DataError) -> Line? {
        var searchFrom = start
        while true {
            if searchFrom < end,
                let found = memchr(storage + searchFrom, Int32(UInt8(ascii: "\n")), end - searchFrom)
            {
                let newline = UnsafeMutablePointer<UInt8>(found.assumingMemoryBound(to: UInt8.self)) - storage
                var lineEnd = newline
                if lineEnd > start && storage[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                if lineEnd - start > lineLimit {
                    throw DataError.lineTooLong(file: path, line: number, limit: lineLimit)
                }
                return Line(start: start, end: lineEnd, next: newline + 1)
            }
            if end - start > lineLimit {
                throw DataError.lineTooLong(file: path, line: number, limit: lineLimit)
            }
            if atEndOfFile {
                if start == end { return nil }
                var lineEnd = end
                if storage[lineEnd - 1] == UInt8(ascii: "\r") { lineEnd -= 1 }
                return Line(start: start, end: lineEnd, next: end)
            }
            // Everything buffered has been searched; continue after it once more is read.
            let searched = end - start
            try fill()
            searchFrom = start + searched
        }
    }

    /// Marks the bytes before `index` (a ``Line``'s `start` or `next`) as consumed.
    func consume(upTo index: Int) {
        start = index
    }

    /// Calls `body` with the bytes `line.start + skip ..< line.end`.
    func withBytes<R>(of line: Line, skipping skip: Int = 0, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        body(UnsafeBufferPointer(start: storage + line.start + skip, count: line.end - line.start - skip))
    }

    /// True if the line holds only spaces (and tabs, when `tabIsBlank`).
    func isBlank(_ line: Line, tabIsBlank: Bool) -> Bool {
        for i in line.start..<line.end {
            let b = storage[i]
            if b == UInt8(ascii: " ") || (tabIsBlank && b == UInt8(ascii: "\t")) { continue }
            return false
        }
        return true
    }

    /// True if every byte after `line` to the end of the file is a space, a line break (or a
    /// tab, when `tabIsBlank`). Reads ahead with pread(2), leaving the position unchanged.
    func restIsBlank(after line: Line, tabIsBlank: Bool) throws(DataError) -> Bool {
        func blank(_ b: UInt8) -> Bool {
            b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
                || (tabIsBlank && b == UInt8(ascii: "\t"))
        }
        for i in line.next..<end where !blank(storage[i]) {
            return false
        }
        if atEndOfFile { return true }
        let block = 1 << 16
        let scratch = UnsafeMutablePointer<UInt8>.allocate(capacity: block)
        defer { scratch.deallocate() }
        var offset = fileOffset + end
        while true {
            let n = try file.read(into: scratch, count: block, at: offset)
            if n == 0 { return true }
            for k in 0..<n where !blank(scratch[k]) {
                return false
            }
            offset += n
        }
    }

    /// Continues at file offset `offset`, which must be the start of a line at or after
    /// `earliest` (or the end of the file); the buffered bytes are dropped.
    ///
    /// - Throws: ``DataError/badResumeOffset(file:offset:)`` otherwise.
    func restart(at offset: Int, earliest: Int) throws(DataError) {
        let size = try file.size()
        var valid = offset >= earliest && offset <= size
        if valid && offset > earliest {
            var previous: UInt8 = 0
            let n = try file.read(into: &previous, count: 1, at: offset - 1)
            valid = n == 1 && previous == UInt8(ascii: "\n")
        }
        guard valid else { throw DataError.badResumeOffset(file: path, offset: offset) }
        try file.seek(to: offset)
        start = 0
        end = 0
        fileOffset = offset
        atEndOfFile = false
    }

    /// Moves the unconsumed bytes to the front of the buffer (growing it when full) and reads
    /// one more block.
    private func fill() throws(DataError) {
        if start > 0 {
            let remaining = end - start
            if remaining > 0 { memmove(storage, storage + start, remaining) }
            fileOffset += start
            end = remaining
            start = 0
        }
        if capacity - end < Self.blockSize / 2 {
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: storage, count: end)
            storage.deallocate()
            storage = bigger
            capacity *= 2
        }
        let n = try file.read(into: storage + end, count: capacity - end)
        if n == 0 { atEndOfFile = true }
        end += n
    }
}
