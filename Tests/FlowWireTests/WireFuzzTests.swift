import Testing
import FlowWire

/// 100 000 random and mutated byte strings: decoding never traps; every input either decodes to
/// a message that re-encodes to exactly the same bytes, or throws; and for targeted mutations
/// the error is the expected one.
struct WireFuzzTests {
    /// What a fuzz run saw.
    struct Tally {
        var cases = 0
        var decoded = 0
        var reasons: [String: Int] = [:]
        var failures: [String] = []

        /// Decodes `bytes` and checks the invariant, and `expected` when given.
        mutating func check(_ bytes: [UInt8], _ what: @autoclosure () -> String, expected: ((WireError) -> Bool)? = nil) {
            cases += 1
            switch decodeResult(bytes) {
            case .success(let message):
                decoded += 1
                // An `error` is read in any header version up to ours and always written in version 1.
                var written = bytes
                if case .error = message { written[4] = 1; written[5] = 0 }
                if message.encoded() != written {
                    fail("\(what()): decoded \(message.kind) re-encodes differently: \(hex(bytes.prefix(80)))")
                } else if expected != nil {
                    fail("\(what()): expected an error, decoded \(message.kind): \(hex(bytes.prefix(80)))")
                }
            case .failure(let error):
                reasons[error.reasonName, default: 0] += 1
                if let expected, !expected(error) {
                    fail("\(what()): unexpected error \(error) (\(error.description)) for \(hex(bytes.prefix(80)))")
                }
            }
        }

        mutating func fail(_ text: String) {
            if failures.count < 20 { failures.append(text) }
        }
    }

    /// Small valid messages of every kind, both dtypes, some with empty arrays.
    static func corpus(_ samples: inout Samples) -> [WireMessage] {
        var corpus: [WireMessage] = []
        for kind in WireMessage.Kind.allCases {
            for dtype in WireDType.allCases {
                corpus.append(samples.message(kind, dtype: dtype, size: .empty))
                for _ in 0..<3 { corpus.append(samples.message(kind, dtype: dtype, size: .small)) }
            }
        }
        return corpus
    }

    /// The field name of a message's trailing vector, for the kinds whose body ends with one.
    static func trailingVector(_ message: WireMessage) -> (name: String, vector: WireVector, mustBeFinite: Bool)? {
        switch message {
        case .parameters(let m): return ("parameters.values", m.values, true)
        case .gradientResult(let m): return ("gradientResult.gradient", m.gradient, true)
        case .localResult(let m): return ("localResult.parameters", m.parameters, true)
        case .shardRows(let m): return ("shardRows.values", m.values, true)
        case .scoreChunk(let m): return ("scoreChunk.values", m.values, false)
        default: return nil
        }
    }

    @Test func hundredThousandMutatedMessages() {
        var samples = Samples(seed: 0xF022)
        let corpus = Self.corpus(&samples)
        let encodings = corpus.map { $0.encoded() }
        var tally = Tally()

        // 1. Every truncation of every corpus message is `truncated`.
        for (message, bytes) in zip(corpus, encodings) {
            for length in 0..<bytes.count {
                tally.check(Array(bytes[0..<length]), "\(message.kind) cut at \(length)") {
                    if case .truncated = $0 { return true } else { return false }
                }
            }
        }

        // 2. Targeted mutations with known outcomes.
        for (message, bytes) in zip(corpus, encodings) {
            let kind = message.kind
            var version = UInt16.random(in: 0...UInt16.max, using: &samples.rng)
            if (1...4).contains(version) { version = 5 }
            tally.check(patched(bytes, at: 4, version), "\(kind) version \(version)") { $0 == .unsupportedVersion(found: version) }
            // Version 1 is readable for `error` only (its layout is frozen); any other kind in it is refused.
            if kind != .error {
                tally.check(patched(bytes, at: 4, UInt16(1)), "\(kind) version 1") { $0 == .unsupportedVersion(found: 1) }
            }

            var broken = bytes
            broken[Int.random(in: 0...3, using: &samples.rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &samples.rng)
            tally.check(broken, "\(kind) with a bad magic") { if case .badMagic = $0 { return true } else { return false } }

            // An `error` travels in version 1: as another kind it is a version-1 message of that kind.
            let unknown = UInt8.random(in: 20...255, using: &samples.rng)
            let asKind = { (code: UInt8) -> WireError in kind == .error ? .unsupportedVersion(found: 1) : .unknownKind(found: code) }
            tally.check(patched(bytes, at: 6, unknown), "\(kind) as kind \(unknown)") { $0 == asKind(unknown) }
            tally.check(patched(bytes, at: 6, UInt8(0)), "\(kind) as kind 0") { $0 == asKind(0) }

            let flags = UInt8.random(in: 1...255, using: &samples.rng)
            tally.check(patched(bytes, at: 7, flags), "\(kind) with flags \(flags)") {
                $0 == .outOfRange(field: "flags", value: String(flags), allowed: "0 (reserved)")
            }

            let extra = Int.random(in: 1...16, using: &samples.rng)
            let tail = (0..<extra).map { _ in UInt8.random(in: 0...255, using: &samples.rng) }
            tally.check(bytes + tail, "\(kind) + \(extra) bytes") { $0 == .trailingBytes(count: extra) }

            if let trailing = Self.trailingVector(message) {
                let (name, vector, mustBeFinite) = trailing
                let width = vector.dtype.byteWidth
                let countOffset = bytes.count - vector.count * width - 4
                tally.check(patched(bytes, at: countOffset, UInt32.max), "\(name) count 0xFFFFFFFF") {
                    $0 == .countTooLarge(field: name, count: Int(UInt32.max), limit: 1 << 28)
                }
                tally.check(patched(bytes, at: countOffset, UInt32(1 << 28)), "\(name) count 2^28") {
                    $0 == .truncated(field: name, needed: (1 << 28) * width, available: vector.count * width)
                }
                tally.check(patched(bytes, at: countOffset, UInt32(vector.count + 1)), "\(name) count + 1") {
                    $0 == .truncated(field: name, needed: (vector.count + 1) * width, available: vector.count * width)
                }
                if vector.count > 0 {
                    tally.check(patched(bytes, at: countOffset, UInt32(vector.count - 1)), "\(name) count − 1") {
                        $0 == .trailingBytes(count: width)
                    }
                }
                if mustBeFinite && vector.count > 0 {
                    for _ in 0..<4 {
                        let index = Int.random(in: 0..<vector.count, using: &samples.rng)
                        let offset = bytes.count - (vector.count - index) * width
                        let specials: [Double] = [.nan, .infinity, -.infinity, -.nan, Double(bitPattern: 0x7FF0_0000_0000_0001)]
                        let bad = specials[Int.random(in: 0..<specials.count, using: &samples.rng)]
                        let mutated = vector.dtype == .float32
                            ? patched(bytes, at: offset, Float(bad).bitPattern)
                            : patched(bytes, at: offset, bad.bitPattern)
                        tally.check(mutated, "\(name)[\(index)] = \(bad)") { $0 == .nonFinite(field: name, index: index) }
                    }
                }
            }
            if case .assignment = message {
                tally.check(patched(bytes, at: 32, UInt32.max), "assignment count 0xFFFFFFFF") {
                    $0 == .countTooLarge(field: "assignment.items", count: Int(UInt32.max), limit: 65536)
                }
            }
            if case .goodbye = message {
                tally.check(patched(bytes, at: 8, UInt32.max), "goodbye length 0xFFFFFFFF") {
                    $0 == .countTooLarge(field: "goodbye.reason", count: Int(UInt32.max), limit: 1024)
                }
            }
        }

        // 3. Random bytes, and random mutations of the corpus, until 100 000 inputs in all.
        for _ in 0..<5_000 {
            let length = Int.random(in: 0...64, using: &samples.rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &samples.rng) }
            if length >= 8 && samples.bool() {
                bytes.replaceSubrange(0..<8, with: [0x54, 0x52, 0x42, 0x57, 0x01, 0x00, UInt8.random(in: 1...13, using: &samples.rng), 0])
            }
            tally.check(bytes, "random bytes")
        }
        while tally.cases < 100_000 {
            let pick = Int.random(in: 0..<corpus.count, using: &samples.rng)
            var bytes = encodings[pick]
            let mutation = Int.random(in: 0...6, using: &samples.rng)
            switch mutation {
            case 0:  // bit flips anywhere after the magic
                for _ in 0..<Int.random(in: 1...4, using: &samples.rng) where bytes.count > 4 {
                    bytes[Int.random(in: 4..<bytes.count, using: &samples.rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &samples.rng)
                }
            case 1:  // a byte overwritten
                bytes[Int.random(in: 8..<max(9, bytes.count), using: &samples.rng) % bytes.count] = UInt8.random(in: 0...255, using: &samples.rng)
            case 2:  // a u32 overwritten with a special value
                if bytes.count >= 12 {
                    let specials: [UInt32] = [0, 1, 2, 0xFF, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF]
                    let offset = Int.random(in: 8...(bytes.count - 4), using: &samples.rng)
                    bytes = patched(bytes, at: offset, specials[Int.random(in: 0..<specials.count, using: &samples.rng)])
                }
            case 3:  // bytes inserted
                let at = Int.random(in: 8...bytes.count, using: &samples.rng)
                let n = Int.random(in: 1...8, using: &samples.rng)
                bytes.insert(contentsOf: (0..<n).map { _ in UInt8.random(in: 0...255, using: &samples.rng) }, at: at)
            case 4:  // bytes deleted
                if bytes.count > 8 {
                    let at = Int.random(in: 8..<bytes.count, using: &samples.rng)
                    let n = Int.random(in: 1...min(8, bytes.count - at), using: &samples.rng)
                    bytes.removeSubrange(at..<(at + n))
                }
            case 5:  // the header of one message on the body of another
                let other = encodings[Int.random(in: 0..<encodings.count, using: &samples.rng)]
                bytes = Array(bytes[0..<8]) + other.dropFirst(8)
            default:  // a random body after a valid header
                let n = Int.random(in: 0...80, using: &samples.rng)
                bytes = Array(bytes[0..<8]) + (0..<n).map { _ in UInt8.random(in: 0...255, using: &samples.rng) }
            }
            tally.check(bytes, "mutation \(mutation) of corpus[\(pick)] (\(corpus[pick].kind))")
        }

        print("fuzz: \(tally.cases) inputs, \(tally.decoded) decoded, errors by reason: \(tally.reasons.sorted { $0.key < $1.key })")
        #expect(tally.cases >= 100_000)
        #expect(tally.failures.isEmpty, "\(tally.failures.joined(separator: "\n"))")
    }
}
