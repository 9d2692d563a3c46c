import Flows
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// MARK: - Helpers

extension SafeTensorsTests {
    /// A seeded SplitMix64 generator, so that every run draws the same "random" inputs.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// File bytes with `header` (verbatim, no padding) and `buffer`; the length prefix is
    /// `header.count` unless `declaredLength` overrides it.
    static func fileBytes(header: [UInt8], buffer: [UInt8] = [], declaredLength: UInt64? = nil)
        -> [UInt8]
    {
        let length = declaredLength ?? UInt64(header.count)
        var bytes = (0..<8).map { UInt8(truncatingIfNeeded: length >> UInt64(8 * $0)) }
        bytes += header
        bytes += buffer
        return bytes
    }

    static func fileBytes(_ header: String, buffer: [UInt8] = [], declaredLength: UInt64? = nil)
        -> [UInt8]
    {
        fileBytes(header: Array(header.utf8), buffer: buffer, declaredLength: declaredLength)
    }

    static func zeros(_ count: Int) -> [UInt8] { [UInt8](repeating: 0, count: count) }

    /// A fresh empty directory under the system temporary directory.
    static func makeTemporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("safetensors-tests-\(getpid())-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func listing(_ directory: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    /// Runs `python3` with `arguments`; `nil` if it cannot be started.
    static func runPython(_ arguments: [String]) -> (status: Int32, output: String, errors: String)?
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return nil }
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (
            process.terminationStatus, String(decoding: outputData, as: UTF8.self),
            String(decoding: errorData, as: UTF8.self)
        )
    }

    /// Messages collected from several threads.
    /// Invariant for `@unchecked Sendable`: `storage` is only touched while `lock` is held.
    final class FailureLog: @unchecked Sendable {
        private let lock = NSLock()
        private var storage: [String] = []
        func append(_ message: String) { lock.withLock { storage.append(message) } }
        var messages: [String] { lock.withLock { storage } }
    }

    static let pythonAvailable: Bool = runPython(["-c", "import json, struct"])?.status == 0
    static let pythonHasSafetensors: Bool =
        runPython(["-c", "import numpy, safetensors.numpy"])?.status == 0

    /// An archive exercising every dtype, odd shapes and awkward names.
    static func sampleArchive() -> SafeTensorsArchive {
        var random = SplitMix64(state: 42)
        func randomBytes(_ count: Int) -> [UInt8] {
            (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        let payloadNaN = Float(bitPattern: 0x7FC0_1234)
        return SafeTensorsArchive(
            metadata: [
                "format_version": "1",
                "config": #"{"dimension": 2, "hidden": [64, 64]}"#,
                "ünïcødé \u{1}\t\"\\": "value with \n newline and 😀",
                "": "empty key",
            ],
            tensors: [
                SafeTensorsTensor(name: "f64", shape: [2, 2], doubles: [1, -2.5, .pi, -0.0]),
                SafeTensorsTensor(name: "f32", shape: [3], floats: [1, payloadNaN, -.infinity]),
                SafeTensorsTensor(
                    name: "f16", dtype: .F16, shape: [2], bytes: [0x00, 0x3C, 0x00, 0xC0]),
                SafeTensorsTensor(name: "bf16", dtype: .BF16, shape: [1, 1], bytes: [0x80, 0x3F]),
                SafeTensorsTensor(name: "i64", dtype: .I64, shape: [2], bytes: randomBytes(16)),
                SafeTensorsTensor(
                    name: "i32", dtype: .I32, shape: [1, 1, 1], bytes: randomBytes(4)),
                SafeTensorsTensor(name: "i16", dtype: .I16, shape: [3], bytes: randomBytes(6)),
                SafeTensorsTensor(name: "i8", dtype: .I8, shape: [4], bytes: randomBytes(4)),
                SafeTensorsTensor(name: "u8-empty", dtype: .U8, shape: [2, 0, 3], bytes: []),
                SafeTensorsTensor(name: "bool", dtype: .BOOL, shape: [2], bytes: [0, 1]),
                SafeTensorsTensor(name: "scalar", shape: [], floats: [42]),
                // Zero-byte tensors sharing an offset, deliberately not in name order.
                SafeTensorsTensor(name: "z-empty", shape: [0], floats: []),
                SafeTensorsTensor(name: "a-empty", shape: [5, 0], floats: []),
                SafeTensorsTensor(
                    name: "κ/ü\"\\\n\u{0}😀 e\u{301}", dtype: .U8, shape: [3], bytes: [1, 2, 3]),
                SafeTensorsTensor(
                    name: "couplings.0.net.0.weight", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]),
            ])
    }
}

// MARK: - Round trip and determinism

@Suite("SafeTensors")
struct SafeTensorsTests {
    @Test("encode → decode reproduces every dtype, shape, name and metadata exactly")
    func roundTrip() throws {
        let archive = Self.sampleArchive()
        let bytes = try archive.encoded()
        let decoded = try SafeTensorsArchive.decode(bytes, file: "sample")
        #expect(decoded == archive)
        #expect(try decoded.encoded() == bytes)
        #expect(try SafeTensorsArchive.decode(Data(bytes), file: "sample") == archive)
        #expect(try SafeTensorsArchive.decode(bytes[...], file: "sample") == archive)

        // Buffer starts 8-byte aligned and the file holds exactly header + data.
        let length = bytes[0..<8].enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << UInt64(8 * $1.offset)
        }
        #expect((8 + length) % 8 == 0)
        #expect(Int(length) + 8 + archive.tensors.map(\.bytes.count).reduce(0, +) == bytes.count)

        #expect(decoded["scalar"]?.shape == [])
        #expect(try decoded["scalar"]?.floats() == [42])
        #expect(decoded["u8-empty"]?.bytes == [])
        #expect(decoded["missing"] == nil)
    }

    @Test("an empty archive is the header {} padded to 8 bytes")
    func emptyArchive() throws {
        let bytes = try SafeTensorsArchive().encoded()
        #expect(bytes == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
        #expect(try SafeTensorsArchive.decode(bytes, file: "empty") == SafeTensorsArchive())
    }

    @Test("encoded bytes match a hand-computed file exactly")
    func handComputedBytes() throws {
        let archive = SafeTensorsArchive(
            metadata: ["b": "2", "a": "x\"y"],
            tensors: [
                SafeTensorsTensor(name: "w", shape: [2], floats: [1, -2]),
                SafeTensorsTensor(name: "s", dtype: .U8, shape: [], bytes: [7]),
            ])
        let json =
            #"{"__metadata__":{"a":"x\"y","b":"2"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""s":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}"#
        #expect(json.utf8.count == 141)  // + 3 spaces = 144 = 0x90, so 8 + 144 is a multiple of 8
        let expected: [UInt8] =
            [0x90, 0, 0, 0, 0, 0, 0, 0] + Array(json.utf8) + Array("   ".utf8)
            + [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0, 0x07]
        #expect(try archive.encoded() == expected)

        // Deterministic: metadata insertion order and repeated runs do not matter.
        var reordered = SafeTensorsArchive(tensors: archive.tensors)
        reordered.metadata["a"] = "x\"y"
        reordered.metadata["b"] = "2"
        for _ in 0..<5 { #expect(try reordered.encoded() == expected) }
    }

    @Test("names and values are JSON-escaped: quote, backslash, control characters as \\u00xx")
    func escaping() throws {
        let name = "a\u{1}b\n\"\\é\u{1F}\u{7F}😀"
        let archive = SafeTensorsArchive(
            metadata: ["k\u{0}": "v\r"],
            tensors: [SafeTensorsTensor(name: name, dtype: .U8, shape: [1], bytes: [9])])
        let bytes = try archive.encoded()
        let header = String(decoding: bytes[8...], as: UTF8.self)
        #expect(header.contains(#""a\u0001b\u000a\"\\é\u001f"# + "\u{7F}😀\""))
        #expect(header.contains(#"{"__metadata__":{"k\u0000":"v\u000d"}"#))
        #expect(try SafeTensorsArchive.decode(bytes, file: "escaped") == archive)
    }

    @Test("foreign layout: unsorted keys, whitespace, padding and metadata decode in offset order")
    func foreignLayout() throws {
        let header =
            "{\"b\": {\"data_offsets\": [4, 8], \"shape\": [1], \"dtype\": \"F32\"} ,\n"
            + "  \"__metadata__\" : {\"format\": \"pt\"},\n"
            + "  \"a\": {\"shape\": [1], \"dtype\": \"F32\", \"data_offsets\": [0, 4]}}\t\r\n     "
        let bytes = Self.fileBytes(header, buffer: [0, 0, 128, 63, 0, 0, 0, 64])
        let archive = try SafeTensorsArchive.decode(bytes, file: "foreign")
        #expect(archive.tensors.map(\.name) == ["a", "b"])
        #expect(try archive.tensors.flatMap { try $0.floats() } == [1, 2])
        #expect(archive.metadata == ["format": "pt"])
    }

    // MARK: - Element accessors

    @Test("floats() and doubles() read F32/F64 bit for bit and widen F16/BF16/F32 exactly")
    func accessors() throws {
        let floats: [Float] = [
            0, -0.0, 1, -1.5, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .infinity,
            Float(bitPattern: 0x7FC0_0001),
        ]
        let f32 = SafeTensorsTensor(name: "f", shape: [2, 4], floats: floats)
        #expect(try f32.floats().map(\.bitPattern) == floats.map(\.bitPattern))
        #expect(
            try f32.doubles().map { Float($0).bitPattern }.prefix(7)
                == floats.map(\.bitPattern).prefix(7))
        #expect(try f32.doubles().last?.isNaN == true)

        let doubles: [Double] = [.pi, -.ulpOfOne, .leastNonzeroMagnitude, -.infinity]
        let f64 = SafeTensorsTensor(name: "d", shape: [4], doubles: doubles)
        #expect(try f64.doubles().map(\.bitPattern) == doubles.map(\.bitPattern))
        #expect(
            throws: SafeTensorsError(
                tensor: "d", problem: .dtypeMismatch(expected: [.F32, .F16, .BF16], found: .F64))
        ) {
            try f64.floats()
        }

        // binary16: 1, -2, 65504 (max), 2^-24 (min subnormal), 2^-14 (min normal), +inf, 1/3.
        let halfBits: [UInt16] = [0x3C00, 0xC000, 0x7BFF, 0x0001, 0x0400, 0x7C00, 0x3555, 0x8000]
        let half = SafeTensorsTensor(
            name: "h", dtype: .F16, shape: [8],
            bytes: halfBits.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] })
        let widened = try half.floats()
        #expect(
            widened.map(\.bitPattern)
                == [1, -2, 65504, 0x1p-24, 0x1p-14, .infinity, 0.333251953125, -0.0].map {
                    (v: Float) in v.bitPattern
                })
        let halfNaN = SafeTensorsTensor(name: "n", dtype: .F16, shape: [], bytes: [0x01, 0x7E])
        #expect(try halfNaN.floats()[0].isNaN)

        let brain = SafeTensorsTensor(
            name: "b", dtype: .BF16, shape: [3], bytes: [0x80, 0x3F, 0x49, 0x40, 0x80, 0xFF])
        #expect(try brain.doubles() == [1, 3.140625, -.infinity])

        let integers = SafeTensorsTensor(name: "i", dtype: .I32, shape: [1], bytes: [1, 0, 0, 0])
        #expect(
            throws: SafeTensorsError(
                tensor: "i",
                problem: .dtypeMismatch(expected: [.F64, .F32, .F16, .BF16], found: .I32))
        ) {
            try integers.doubles()
        }
        let short = SafeTensorsTensor(name: "s", shape: [3], floats: [1, 2])
        #expect(
            throws: SafeTensorsError(
                tensor: "s", problem: .byteCountMismatch(byteCount: 8, shape: [3], dtype: .F32))
        ) {
            try short.floats()
        }
        #expect(SafeTensorsDType.allCases.map(\.byteSize) == [8, 4, 2, 2, 8, 4, 2, 1, 1, 1])
    }

    // MARK: - Encoding errors

    @Test("encoded() rejects duplicate names, the reserved name and inconsistent tensors")
    func encodingErrors() {
        let a = SafeTensorsTensor(name: "a", shape: [1], floats: [1])
        #expect(throws: SafeTensorsError(tensor: "a", problem: .duplicateTensorName)) {
            try SafeTensorsArchive(tensors: [a, a]).encoded()
        }
        let reserved = SafeTensorsTensor(name: "__metadata__", shape: [1], floats: [1])
        #expect(throws: SafeTensorsError(tensor: "__metadata__", problem: .reservedTensorName)) {
            try SafeTensorsArchive(tensors: [reserved]).encoded()
        }
        let mismatch = SafeTensorsTensor(
            name: "m", shape: [8, 4], floats: [Float](repeating: 0, count: 24))
        let error = SafeTensorsError(
            tensor: "m", problem: .byteCountMismatch(byteCount: 96, shape: [8, 4], dtype: .F32))
        #expect(throws: error) { try SafeTensorsArchive(tensors: [mismatch]).encoded() }
        #expect(
            error.description == #"tensor "m": holds 96 bytes but shape [8, 4] of F32 needs 128"#)
        let negative = SafeTensorsTensor(name: "n", dtype: .U8, shape: [2, -1], bytes: [])
        #expect(
            throws: SafeTensorsError(tensor: "n", problem: .invalidDimension(index: 1, found: "-1"))
        ) {
            try SafeTensorsArchive(tensors: [negative]).encoded()
        }
        let huge = SafeTensorsTensor(name: "h", dtype: .U8, shape: [0, (1 << 53) + 1], bytes: [])
        #expect(
            throws: SafeTensorsError(
                tensor: "h", problem: .invalidDimension(index: 1, found: "9007199254740993"))
        ) {
            try SafeTensorsArchive(tensors: [huge]).encoded()
        }
        let overflow = SafeTensorsTensor(
            name: "o", dtype: .F32, shape: [1 << 32, 1 << 32], bytes: [])
        #expect(
            throws: SafeTensorsError(
                tensor: "o", problem: .elementCountOverflow(shape: [1 << 32, 1 << 32], dtype: .F32))
        ) {
            try SafeTensorsArchive(tensors: [overflow]).encoded()
        }
    }

    // MARK: - Malformed files

    struct Malformed: Sendable, CustomTestStringConvertible {
        var label: String
        var bytes: [UInt8]
        /// The exact error, or `nil` when only "header is not JSON" (whose reason is the
        /// parser's wording) is checked.
        var expected: SafeTensorsError?
        var testDescription: String { label }

        init(
            _ label: String, _ bytes: [UInt8], _ problem: SafeTensorsError.Problem?,
            tensor: String? = nil
        ) {
            self.label = label
            self.bytes = bytes
            self.expected = problem.map {
                SafeTensorsError(file: "m.safetensors", tensor: tensor, problem: $0)
            }
        }
    }

    static let f32x1 = #""dtype":"F32","shape":[1]"#

    static let malformed: [Malformed] = [
        // Container
        Malformed("empty file", [], .fileTooShort(size: 0)),
        Malformed("7 bytes", [2, 0, 0, 0, 0, 0, 0], .fileTooShort(size: 7)),
        Malformed(
            "header length 1e12",
            Self.fileBytes("{}", buffer: Self.zeros(4086), declaredLength: 1_000_000_000_000),
            .headerExceedsFile(length: 1_000_000_000_000, fileSize: 4096)),
        Malformed(
            "header length UInt64.max", Self.fileBytes("{}      ", declaredLength: .max),
            .headerExceedsFile(length: .max, fileSize: 16)),
        Malformed(
            "header length one past the file", Self.fileBytes("{}", declaredLength: 3),
            .headerExceedsFile(length: 3, fileSize: 10)),
        Malformed("header length 0", Self.fileBytes(""), .headerNotObject),
        Malformed(
            "header not UTF-8",
            Self.fileBytes(header: Array(#"{"a"#.utf8) + [0xFF] + Array(#"":1}"#.utf8)),
            .headerNotUTF8),
        Malformed(
            "overlong UTF-8",
            Self.fileBytes(header: Array(#"{""#.utf8) + [0xC0, 0xAF] + Array(#"":1}"#.utf8)),
            .headerNotUTF8),
        Malformed(
            "NUL byte (UTF-16 look-alike)", Self.fileBytes(header: Array("{\0}\0".utf8)),
            .headerNotJSON(reason: "NUL byte at header offset 1")),
        Malformed("leading space", Self.fileBytes(" {}"), .headerNotObject),
        Malformed("array header", Self.fileBytes("[1]"), .headerNotObject),
        Malformed("not JSON", Self.fileBytes("{abc}"), nil),
        Malformed("truncated JSON", Self.fileBytes(#"{"a":"#), nil),
        Malformed("trailing garbage", Self.fileBytes("{} x"), nil),
        Malformed("lone surrogate", Self.fileBytes(#"{"\ud800":1}"#), nil),
        Malformed(
            "nesting bomb",
            Self.fileBytes(
                #"{"a":"# + String(repeating: "[", count: 100_000)
                    + String(repeating: "]", count: 100_000) + "}"), nil),
        Malformed(
            "number beyond Double",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}}"#,
                buffer: Self.zeros(4)), nil),
        Malformed(
            "duplicate tensor",
            Self.fileBytes(
                #"{"a":{\#(f32x1),"data_offsets":[0,4]},"a":{\#(f32x1),"data_offsets":[0,4]}}"#,
                buffer: Self.zeros(4)),
            .duplicateKey("a")),
        Malformed(
            "duplicate field",
            Self.fileBytes(
                #"{"a":{\#(f32x1),"dtype":"F32","data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .duplicateKey("dtype"), tensor: "a"),
        Malformed(
            "duplicate metadata key", Self.fileBytes(#"{"__metadata__":{"k":"1","k":"2"}}"#),
            .duplicateKey("k"), tensor: "__metadata__"),

        // Entries
        Malformed(
            "entry not an object", Self.fileBytes(#"{"a":5}"#), .entryNotObject(found: "5"),
            tensor: "a"),
        Malformed(
            "entry is an array", Self.fileBytes(#"{"a":[1,"x",null]}"#),
            .entryNotObject(found: #"[1, "x", null]"#), tensor: "a"),
        Malformed(
            "missing dtype",
            Self.fileBytes(#"{"a":{"shape":[1],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .missingField("dtype"), tensor: "a"),
        Malformed(
            "missing shape",
            Self.fileBytes(#"{"a":{"dtype":"F32","data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .missingField("shape"), tensor: "a"),
        Malformed(
            "missing data_offsets", Self.fileBytes(#"{"a":{\#(f32x1)}}"#, buffer: Self.zeros(4)),
            .missingField("data_offsets"), tensor: "a"),
        Malformed(
            "extra field",
            Self.fileBytes(
                #"{"a":{\#(f32x1),"data_offsets":[0,4],"offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .unexpectedField("offsets"), tensor: "a"),
        Malformed(
            "dtype not a string",
            Self.fileBytes(
                #"{"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .wrongFieldType(field: "dtype", expected: "a string", found: "5"), tensor: "a"),
        Malformed(
            "unknown dtype",
            Self.fileBytes(
                #"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#,
                buffer: Self.zeros(1)),
            .unknownDType("F8_E4M3"), tensor: "a"),
        Malformed(
            "lower-case dtype",
            Self.fileBytes(
                #"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .unknownDType("f32"), tensor: "a"),
        Malformed(
            "shape not an array",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}}"#, buffer: Self.zeros(8)),
            .wrongFieldType(field: "shape", expected: "an array of integers", found: #""2""#),
            tensor: "a"),
        Malformed(
            "negative dimension",
            Self.fileBytes(#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}"#),
            .invalidDimension(index: 0, found: "-1"), tensor: "a"),
        Malformed(
            "fractional dimension",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[1,2.5],"data_offsets":[0,4]}}"#,
                buffer: Self.zeros(4)),
            .invalidDimension(index: 1, found: "2.5"), tensor: "a"),
        Malformed(
            "real-valued dimension 2.0",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}}"#, buffer: Self.zeros(8)),
            .invalidDimension(index: 0, found: "2.0"), tensor: "a"),
        Malformed(
            "exponent dimension 1e0",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[1e0],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .invalidDimension(index: 0, found: "1.0"), tensor: "a"),
        Malformed(
            "boolean dimension",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)
            ),
            .invalidDimension(index: 0, found: "true"), tensor: "a"),
        Malformed(
            "null dimension",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[1,null],"data_offsets":[0,4]}}"#,
                buffer: Self.zeros(4)),
            .invalidDimension(index: 1, found: "null"), tensor: "a"),
        Malformed(
            "string dimension",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":["1"],"data_offsets":[0,4]}}"#, buffer: Self.zeros(4)),
            .invalidDimension(index: 0, found: #""1""#), tensor: "a"),
        Malformed(
            "dimension beyond 2^53",
            Self.fileBytes(
                #"{"a":{"dtype":"U8","shape":[0,9007199254740993],"data_offsets":[0,0]}}"#),
            .invalidDimension(index: 1, found: "9007199254740993"), tensor: "a"),
        Malformed(
            "dimension beyond UInt64",
            Self.fileBytes(
                #"{"a":{"dtype":"U8","shape":[0,18446744073709551616],"data_offsets":[0,0]}}"#),
            .invalidDimension(index: 1, found: "18446744073709551616"), tensor: "a"),
        Malformed(
            "element count overflow",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#),
            .elementCountOverflow(shape: [1 << 32, 1 << 32], dtype: .F32), tensor: "a"),
        Malformed(
            "byte count overflow",
            Self.fileBytes(
                #"{"a":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}}"#),
            .invalidDimension(index: 0, found: "2305843009213693952"), tensor: "a"),
        Malformed(
            "byte count overflow within 2^53 dims",
            Self.fileBytes(
                #"{"a":{"dtype":"F64","shape":[1048576,1048576,1048576],"data_offsets":[0,0]}}"#),
            .elementCountOverflow(shape: [1 << 20, 1 << 20, 1 << 20], dtype: .F64), tensor: "a"),
        Malformed(
            "one offset",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[0]}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: "[0]"), tensor: "a"),
        Malformed(
            "three offsets",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[0,4,8]}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: "[0, 4, 8]"), tensor: "a"),
        Malformed(
            "negative offset",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[-4,0]}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: "[-4, 0]"), tensor: "a"),
        Malformed(
            "fractional offset",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[0,4.0]}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: "[0, 4.0]"), tensor: "a"),
        Malformed(
            "string offset",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":["0",4]}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: #"["0", 4]"#), tensor: "a"),
        Malformed(
            "offsets not an array",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":{"begin":0}}}"#, buffer: Self.zeros(4)),
            .invalidDataOffsets(found: #"{"begin": 0}"#), tensor: "a"),
        Malformed(
            "offset beyond 2^53",
            Self.fileBytes(
                #"{"a":{"dtype":"U8","shape":[0],"data_offsets":[9007199254740993,9007199254740993]}}"#
            ),
            .invalidDataOffsets(found: "[9007199254740993, 9007199254740993]"), tensor: "a"),
        Malformed(
            "reversed offsets",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[8,4]}}"#, buffer: Self.zeros(8)),
            .dataOffsetsReversed(begin: 8, end: 4), tensor: "a"),
        Malformed(
            "end beyond buffer",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, buffer: Self.zeros(4)),
            .dataOffsetsBeyondBuffer(begin: 0, end: 8, bufferSize: 4), tensor: "a"),
        Malformed(
            "byte count ≠ shape × dtype",
            Self.fileBytes(
                #"{"couplings.0.net.0.weight":{"dtype":"F32","shape":[8,4],"data_offsets":[0,96]}}"#,
                buffer: Self.zeros(96)),
            .dataOffsetsMismatch(begin: 0, end: 96, shape: [8, 4], dtype: .F32),
            tensor: "couplings.0.net.0.weight"),

        // Layout
        Malformed(
            "overlap",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                buffer: Self.zeros(12)),
            .overlap(begin: 4, previous: "a", previousEnd: 8), tensor: "b"),
        Malformed(
            "same range twice",
            Self.fileBytes(
                #"{"b":{\#(f32x1),"data_offsets":[0,4]},"a":{\#(f32x1),"data_offsets":[0,4]}}"#,
                buffer: Self.zeros(4)),
            .overlap(begin: 0, previous: "b", previousEnd: 4), tensor: "a"),
        Malformed(
            "empty tensor inside another",
            Self.fileBytes(
                #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}"#,
                buffer: Self.zeros(8)),
            .overlap(begin: 4, previous: "a", previousEnd: 8), tensor: "e"),
        Malformed(
            "hole between tensors",
            Self.fileBytes(
                #"{"a":{\#(f32x1),"data_offsets":[0,4]},"b":{\#(f32x1),"data_offsets":[8,12]}}"#,
                buffer: Self.zeros(12)),
            .hole(begin: 4, end: 8), tensor: "b"),
        Malformed(
            "hole at the start",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[4,8]}}"#, buffer: Self.zeros(8)),
            .hole(begin: 0, end: 4), tensor: "a"),
        Malformed(
            "trailing bytes",
            Self.fileBytes(#"{"a":{\#(f32x1),"data_offsets":[0,4]}}"#, buffer: Self.zeros(6)),
            .trailingBytes(begin: 4, bufferSize: 6)),
        Malformed(
            "data but no tensors", Self.fileBytes("{}", buffer: Self.zeros(3)),
            .trailingBytes(begin: 0, bufferSize: 3)),

        // Metadata
        Malformed(
            "metadata not an object", Self.fileBytes(#"{"__metadata__":["a"]}"#),
            .metadataNotObject(found: #"["a"]"#)),
        Malformed(
            "metadata null", Self.fileBytes(#"{"__metadata__":null}"#),
            .metadataNotObject(found: "null")),
        Malformed(
            "metadata value not a string", Self.fileBytes(#"{"__metadata__":{"k":1,"s":"ok"}}"#),
            .metadataValueNotString(key: "k", found: "1")),
        Malformed(
            "metadata value an object", Self.fileBytes(#"{"__metadata__":{"k":{"nested":"x"}}}"#),
            .metadataValueNotString(key: "k", found: #"{"nested": "x"}"#)),
    ]

    @Test("each malformed file is rejected with its specific error", arguments: malformed)
    func rejectsMalformed(_ testCase: Malformed) {
        do {
            let archive = try SafeTensorsArchive.decode(testCase.bytes, file: "m.safetensors")
            Issue.record("decoded \(archive.tensors.map(\.name)) from malformed input")
        } catch let error as SafeTensorsError {
            if let expected = testCase.expected {
                #expect(error == expected, "got: \(error)")
            } else if case .headerNotJSON = error.problem {
                #expect(error.file == "m.safetensors")
            } else {
                Issue.record("expected a JSON syntax error, got: \(error)")
            }
        } catch {
            Issue.record("unexpected error type: \(error)")
        }
    }

    @Test("error descriptions name the file, the tensor and the numbers")
    func errorDescriptions() throws {
        let mismatch = Self.malformed.first { $0.label == "byte count ≠ shape × dtype" }!
        #expect(
            mismatch.expected?.description
                == #"m.safetensors: tensor "couplings.0.net.0.weight": data_offsets [0, 96] hold 96 bytes but shape [8, 4] of F32 needs 128"#
        )
        let length = SafeTensorsError(
            file: "model.safetensors",
            problem: .headerExceedsFile(length: 1_000_000_000_000, fileSize: 4096))
        #expect(
            length.description
                == "model.safetensors: header length 1000000000000 exceeds the file size 4096 (4088 bytes follow the 8-byte header length)"
        )
        let io = SafeTensorsError.ioError("/x/y", errno: ENOENT, operation: "open")
        #expect(io.description == "/x/y: open failed: No such file or directory (errno \(ENOENT))")
        let overlap = Self.malformed.first { $0.label == "overlap" }!
        #expect(
            overlap.expected?.description
                == #"m.safetensors: tensor "b": data starting at 4 overlaps tensor "a", which ends at 8"#
        )
    }

    @Test("a header longer than 100,000,000 bytes is refused before it is parsed")
    func headerTooLarge() {
        let limit = SafeTensorsArchive.maximumHeaderLength
        var bytes = Self.fileBytes(header: [], declaredLength: UInt64(limit + 1))
        bytes += Self.zeros(limit + 1)
        #expect(
            throws: SafeTensorsError(
                file: "big", problem: .headerTooLarge(length: UInt64(limit + 1), limit: limit))
        ) {
            try SafeTensorsArchive.decode(bytes, file: "big")
        }
    }

    // MARK: - Fuzzing

    @Test("20,000 random mutations of valid files never trap; successes re-encode identically")
    func fuzz() throws {
        var random = SplitMix64(state: 0x5AFE_7E45)
        let seeds: [[UInt8]] = try [
            Self.sampleArchive().encoded(),
            SafeTensorsArchive(
                metadata: ["step": "7"],
                tensors: [
                    SafeTensorsTensor(name: "w", shape: [2, 2], floats: [1, 2, 3, 4]),
                    SafeTensorsTensor(name: "b", shape: [0], floats: []),
                    SafeTensorsTensor(name: "c", dtype: .I8, shape: [3], bytes: [1, 2, 3]),
                ]
            ).encoded(),
            Self.fileBytes(
                #" {"b": {"data_offsets": [4, 8], "shape": [1], "dtype": "F32"}, "a": {"shape": [1], "dtype": "I32", "data_offsets": [0, 4]}}  "#
                    .trimmingCharacters(in: .whitespaces),
                buffer: Self.zeros(8)),
            SafeTensorsArchive().encoded(),
        ]
        let jsonBytes = Array(#"{}[]":,-.0123456789eE+ tfnul\"#.utf8)
        var decodedCount = 0
        var rejectedCount = 0
        for iteration in 0..<20_000 {
            var bytes = seeds[iteration % seeds.count]
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let headerEnd = min(
                    bytes.count,
                    8
                        + Int(
                            bytes.prefix(8).enumerated().reduce(UInt64(0)) {
                                $0 | UInt64($1.element) << UInt64(8 * $1.offset)
                            } & 0xFFFF))
                func position(allowEnd: Bool = false) -> Int {
                    let upper = bytes.count + (allowEnd ? 1 : 0)
                    guard upper > 0 else { return 0 }
                    // Favour the header, where the parsing happens.
                    if headerEnd > 8, Bool.random(using: &random) {
                        return Int.random(in: 8..<headerEnd, using: &random)
                    }
                    return Int.random(in: 0..<upper, using: &random)
                }
                switch Int.random(in: 0..<8, using: &random) {
                case 0 where !bytes.isEmpty:  // flip a bit
                    let index = position()
                    bytes[index] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                case 1:  // truncate
                    bytes.removeLast(Int.random(in: 0...bytes.count, using: &random))
                case 2 where bytes.count >= 8:  // random header length
                    let length: UInt64
                    switch Int.random(in: 0..<3, using: &random) {
                    case 0: length = UInt64.random(in: .min ... .max, using: &random)
                    case 1: length = UInt64(Int.random(in: 0...bytes.count, using: &random))
                    default:
                        length = UInt64(
                            max(0, headerEnd - 8 + Int.random(in: -4...4, using: &random)))
                    }
                    for index in 0..<8 {
                        bytes[index] = UInt8(truncatingIfNeeded: length >> UInt64(8 * index))
                    }
                case 3:  // insert bytes
                    let insert = (0..<Int.random(in: 1...8, using: &random)).map { _ in
                        Bool.random(using: &random)
                            ? jsonBytes.randomElement(using: &random)!
                            : UInt8.random(in: 0...255, using: &random)
                    }
                    bytes.insert(contentsOf: insert, at: position(allowEnd: true))
                case 4 where !bytes.isEmpty:  // delete a range
                    let start = position()
                    bytes.removeSubrange(
                        start..<min(bytes.count, start + Int.random(in: 1...6, using: &random)))
                case 5 where !bytes.isEmpty:  // overwrite with a JSON-significant byte
                    bytes[position()] = jsonBytes.randomElement(using: &random)!
                case 6 where !bytes.isEmpty:  // duplicate a range
                    let start = position()
                    let chunk = Array(
                        bytes[
                            start..<min(bytes.count, start + Int.random(in: 1...16, using: &random))
                        ])
                    bytes.insert(contentsOf: chunk, at: position(allowEnd: true))
                default:  // overwrite a digit with another digit (keeps JSON valid, breaks layout)
                    if let index = bytes.indices.filter({
                        $0 >= 8 && $0 < headerEnd && (48...57).contains(bytes[$0])
                    }).randomElement(using: &random) {
                        bytes[index] = UInt8.random(in: 48...57, using: &random)
                    }
                }
            }
            do {
                let archive = try SafeTensorsArchive.decode(bytes, file: "fuzz")
                decodedCount += 1
                let again = try SafeTensorsArchive.decode(archive.encoded(), file: "re-encoded")
                #expect(again == archive, "iteration \(iteration): \(bytes)")
            } catch is SafeTensorsError {
                rejectedCount += 1
            } catch {
                Issue.record("iteration \(iteration): unexpected error \(error) for \(bytes)")
            }
        }
        print("fuzz: \(decodedCount) decoded, \(rejectedCount) rejected")
        #expect(decodedCount > 100)
        #expect(rejectedCount > 10_000)
    }

    // MARK: - Files

    @Test(
        "write(to:) creates and atomically replaces a file, keeps its mode, leaves no temporary files"
    )
    func atomicWrite() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/model.safetensors"

        let first = Self.sampleArchive()
        try first.write(to: path)
        #expect(try SafeTensorsArchive.read(from: path) == first)
        #expect(try Self.listing(directory) == ["model.safetensors"])
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == first.encoded())

        #expect(chmod(path, 0o600) == 0)
        let second = SafeTensorsArchive(
            metadata: ["step": "2"],
            tensors: [SafeTensorsTensor(name: "x", shape: [1], floats: [2])])
        try second.write(to: path)
        #expect(try SafeTensorsArchive.read(from: path) == second)
        #expect(try Self.listing(directory) == ["model.safetensors"])
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)

        // Raw helper, empty contents.
        try AtomicFile.write([], to: directory + "/empty")
        #expect(try Data(contentsOf: URL(fileURLWithPath: directory + "/empty")).isEmpty)
        #expect(try Self.listing(directory) == ["empty", "model.safetensors"])
    }

    @Test("concurrent writers to one path: every read sees one complete archive")
    func concurrentWriters() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/shared.safetensors"
        let archives = (0..<8).map { writer in
            SafeTensorsArchive(
                metadata: ["writer": String(writer)],
                tensors: [
                    SafeTensorsTensor(
                        name: "w", shape: [256],
                        floats: [Float](repeating: Float(writer), count: 256))
                ])
        }
        try archives[0].write(to: path)
        let failures = FailureLog()
        DispatchQueue.concurrentPerform(iterations: 16) { index in
            for _ in 0..<10 {
                do {
                    if index < 8 {
                        try archives[index].write(to: path)
                    } else if !archives.contains(try SafeTensorsArchive.read(from: path)) {
                        failures.append("reader saw an archive no writer wrote")
                    }
                } catch {
                    failures.append("\(index < 8 ? "writer" : "reader"): \(error)")
                }
            }
        }
        #expect(failures.messages.isEmpty, "\(failures.messages)")
        #expect(try Self.listing(directory) == ["shared.safetensors"])
    }

    @Test("failed writes name the path and step, keep the old file and remove the temporary file")
    func failedWrites() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let archive = SafeTensorsArchive(tensors: [
            SafeTensorsTensor(name: "x", shape: [1], floats: [1])
        ])

        let missing = directory + "/no/such/dir/model.safetensors"
        #expect(
            throws: SafeTensorsError.ioError(
                missing, errno: ENOENT, operation: "create temporary file")
        ) {
            try archive.write(to: missing)
        }

        // The destination is a non-empty directory: rename fails after the temporary file
        // was written, which must then be removed.
        let occupied = directory + "/occupied"
        try FileManager.default.createDirectory(
            atPath: occupied + "/inside", withIntermediateDirectories: true)
        do {
            try archive.write(to: occupied)
            Issue.record("replaced a directory")
        } catch let error as SafeTensorsError {
            #expect(error.file == occupied)
            guard case .io(let operation, let code) = error.problem else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(operation == "rename temporary file")
            #expect([EISDIR, ENOTEMPTY, EEXIST].contains(code))
        }
        #expect(try Self.listing(directory) == ["occupied"])

        #expect(throws: AtomicFileError(path: directory + "/", operation: "write", errno: EISDIR)) {
            try AtomicFile.write([1], to: directory + "/")
        }

        // An encoding error writes nothing.
        let invalid = SafeTensorsArchive(tensors: [
            SafeTensorsTensor(name: "x", shape: [2], floats: [1])
        ])
        #expect(throws: SafeTensorsError.self) { try invalid.write(to: directory + "/invalid") }
        #expect(try Self.listing(directory) == ["occupied"])
    }

    @Test("read(from:) reports I/O errors and validation errors with the path")
    func readErrors() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let missing = directory + "/missing.safetensors"
        #expect(throws: SafeTensorsError.ioError(missing, errno: ENOENT, operation: "open")) {
            try SafeTensorsArchive.read(from: missing)
        }
        #expect(throws: SafeTensorsError.ioError(directory, errno: EISDIR, operation: "read")) {
            try SafeTensorsArchive.read(from: directory)
        }
        let truncated = directory + "/truncated.safetensors"
        let bytes = try Self.sampleArchive().encoded()
        try Data(bytes.dropLast()).write(to: URL(fileURLWithPath: truncated))
        do {
            _ = try SafeTensorsArchive.read(from: truncated)
            Issue.record("read a truncated file")
        } catch let error as SafeTensorsError {
            #expect(error.file == truncated)
            #expect(error.description.hasPrefix(truncated + ": "))
        }
    }

    // MARK: - Interoperability

    @Test(
        "Python's json module parses the header; offsets and alignment agree",
        .enabled(if: SafeTensorsTests.pythonAvailable, "python3 not found"))
    func pythonJSONReadsHeader() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/sample.safetensors"
        let archive = Self.sampleArchive()
        try archive.write(to: path)
        let script = """
            import json, struct, sys
            data = open(sys.argv[1], "rb").read()
            (n,) = struct.unpack("<Q", data[:8])
            assert (8 + n) % 8 == 0, "unaligned buffer"
            header = json.loads(data[8:8 + n].decode("utf-8"))
            metadata = header.pop("__metadata__", {})
            entries = sorted(header.items(), key=lambda item: tuple(item[1]["data_offsets"]))
            print(json.dumps({"metadata": metadata,
                              "names": [name for name, _ in entries],
                              "shapes": [info["shape"] for _, info in entries],
                              "dtypes": [info["dtype"] for _, info in entries],
                              "end": entries[-1][1]["data_offsets"][1],
                              "buffer": len(data) - 8 - n}))
            """
        let result = try #require(Self.runPython(["-c", script, path]))
        #expect(result.status == 0, "\(result.errors)")
        let parsed = try #require(
            try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(parsed["metadata"] as? [String: String] == archive.metadata)
        // Python's sort is stable by offsets only; compare as multisets per offset via names.
        #expect(Set(parsed["names"] as? [String] ?? []) == Set(archive.tensors.map(\.name)))
        #expect(parsed["end"] as? Int == archive.tensors.map(\.bytes.count).reduce(0, +))
        #expect(parsed["buffer"] as? Int == parsed["end"] as? Int)
    }

    @Test(
        "Hugging Face safetensors (Python) reads our files and we read its files",
        .enabled(
            if: SafeTensorsTests.pythonHasSafetensors,
            "Python package 'safetensors' (with numpy) is not installed; skipping the cross-check"))
    func pythonSafetensorsInterop() throws {
        let directory = try Self.makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ours = directory + "/ours.safetensors"
        let theirs = directory + "/theirs.safetensors"
        let archive = SafeTensorsArchive(
            metadata: ["format": "np", "config": #"{"layers": 4}"#],
            tensors: [
                SafeTensorsTensor(
                    name: "couplings.0.net.0.weight", shape: [2, 3],
                    floats: [1, -2, 3.5, 0, 1e-30, -7]),
                SafeTensorsTensor(
                    name: "standardize.mean", shape: [3], doubles: [0.1, -0.2, 1e300]),
                SafeTensorsTensor(
                    name: "step", dtype: .I64, shape: [], bytes: [7, 0, 0, 0, 0, 0, 0, 0]),
                SafeTensorsTensor(name: "mask", dtype: .BOOL, shape: [2], bytes: [1, 0]),
                SafeTensorsTensor(name: "half", dtype: .F16, shape: [1], bytes: [0x00, 0x3C]),
                SafeTensorsTensor(name: "empty", shape: [0, 2], floats: []),
            ])
        try archive.write(to: ours)
        let script = """
            import json, struct, sys
            import numpy as np
            from safetensors import safe_open
            from safetensors.numpy import load_file, save_file
            tensors = load_file(sys.argv[1])
            with safe_open(sys.argv[1], framework="np") as f:
                metadata = f.metadata()
            def bits(v):  # exact binary64 bit pattern, immune to decimal round trips
                return str(struct.unpack("<Q", struct.pack("<d", float(v)))[0])
            out = {name: {"dtype": str(t.dtype), "shape": list(t.shape),
                          "bits": [bits(v) for v in t.reshape(-1)]} for name, t in tensors.items()}
            print(json.dumps({"metadata": metadata, "tensors": out}))
            save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3),
                       "b": np.array([1.5, -2.25], dtype=np.float64),
                       "c": np.array(3, dtype=np.int32),
                       "d": np.zeros((0,), dtype=np.float32)},
                      sys.argv[2], metadata={"writer": "python"})
            """
        let result = try #require(Self.runPython(["-c", script, ours, theirs]))
        #expect(result.status == 0, "\(result.errors)")
        let parsed = try #require(
            try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        #expect(parsed["metadata"] as? [String: String] == archive.metadata)
        let tensors = try #require(parsed["tensors"] as? [String: [String: Any]])
        let expectedDTypes = [
            "couplings.0.net.0.weight": "float32", "standardize.mean": "float64", "step": "int64",
            "mask": "bool", "half": "float16", "empty": "float32",
        ]
        #expect(Set(tensors.keys) == Set(expectedDTypes.keys))
        for tensor in archive.tensors {
            let info = try #require(tensors[tensor.name])
            #expect(info["dtype"] as? String == expectedDTypes[tensor.name])
            #expect(info["shape"] as? [Int] == tensor.shape)
            let values = (info["bits"] as? [String])?.compactMap(UInt64.init).map(
                Double.init(bitPattern:))
            switch tensor.dtype {
            case .F32, .F64, .F16:
                let expected = try tensor.doubles()
                #expect(values?.map(\.bitPattern) == expected.map(\.bitPattern), "\(tensor.name)")
            case .I64: #expect(values == [7])
            case .BOOL: #expect(values == [1, 0])
            default: break
            }
        }

        let read = try SafeTensorsArchive.read(from: theirs)
        #expect(read.metadata == ["writer": "python"])
        #expect(try read["a"]?.floats() == [0, 1, 2, 3, 4, 5])
        #expect(read["a"]?.shape == [2, 3])
        #expect(try read["b"]?.doubles() == [1.5, -2.25])
        #expect(read["c"]?.dtype == .I32)
        #expect(read["c"]?.shape == [])
        #expect(read["c"]?.bytes == [3, 0, 0, 0])
        #expect(read["d"]?.shape == [0])
        #expect(try SafeTensorsArchive.decode(read.encoded(), file: "re-encoded") == read)
    }
}
