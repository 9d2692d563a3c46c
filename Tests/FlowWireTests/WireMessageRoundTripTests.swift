import Testing
import FlowWire

struct WireMessageRoundTripTests {
    static let cases: [(WireMessage.Kind, WireDType, SampleSize)] = WireMessage.Kind.allCases.flatMap { kind in
        WireDType.allCases.flatMap { dtype in SampleSize.allCases.map { (kind, dtype, $0) } }
    }

    /// Every kind, both dtypes, empty/small/large arrays, several random contents: the encoding
    /// has the announced length, decodes to an equal message, and re-encodes to the same bytes.
    @Test(arguments: WireMessageRoundTripTests.cases)
    func roundTrip(kind: WireMessage.Kind, dtype: WireDType, size: SampleSize) throws {
        let seeds: [UInt64] = size == .large ? [1] : Array(1...20)
        for seed in seeds {
            var samples = Samples(seed: seed &* 7919 &+ UInt64(kind.rawValue) << 32 &+ UInt64(dtype.rawValue) << 40)
            let message = samples.message(kind, dtype: dtype, size: size)
            try message.validate()
            let bytes = message.encoded()
            #expect(bytes.count == message.encodedByteCount)
            // Version 5, except `error`, which keeps the version-1 header every version can read.
            let version: UInt8 = kind == .error ? 0x01 : UInt8(WireMessage.protocolVersion)
            #expect(Array(bytes[0..<8]) == [0x54, 0x52, 0x42, 0x57, version, 0x00, kind.rawValue, 0x00])
            let decoded = try WireMessage.decode(bytes)
            #expect(decoded.kind == kind)
            #expect(decoded == message, "seed \(seed): \(kind) did not survive the round trip")
            #expect(decoded.encoded() == bytes, "seed \(seed): \(kind) re-encodes differently")
        }
    }

    /// The same bytes decode through every entry point: an array, a slice that does not start
    /// at index 0, a raw buffer, and a collection without contiguous storage.
    @Test func everyEntryPointDecodes() throws {
        var samples = Samples(seed: 99)
        let message = samples.message(.scoreResult, dtype: .float64, size: .small)
        let bytes = message.encoded()
        let framed = [0xAA, 0xBB, 0xCC] + bytes + [0xDD]
        let slice = framed[3..<(3 + bytes.count)]
        #expect(try WireMessage.decode(slice) == message)
        #expect(try bytes.withUnsafeBytes { raw in try WireMessage.decode(raw) } == message)
        #expect(try WireMessage.decode(bytes.lazy.map { $0 }) == message)
        let emptyRaw = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(throws: WireError.truncated(field: "magic", needed: 4, available: 0)) {
            try WireMessage.decode(emptyRaw)
        }
    }

    /// Equality of vectors is bitwise, so messages carrying NaN compare equal to their decoding.
    @Test func vectorEqualityIsBitwise() {
        #expect(WireVector.float32([.nan, 1]) == WireVector.float32([.nan, 1]))
        #expect(WireVector.float64([0.0]) != WireVector.float64([-0.0]))
        #expect(WireVector.float32([1]) != WireVector.float64([1]))
        #expect(WireVector.float64([Double(bitPattern: 0x7FF8_0000_0000_0001)]) != WireVector.float64([.nan]))
    }

    @Test func vectorWrapsAndUnwrapsWithoutConversion() {
        let floats: [Float] = [1, 2, 3]
        let vector = WireVector(floats)
        #expect(vector == .float32([1, 2, 3]))
        #expect(vector?.elements(as: Float.self) == floats)
        #expect(vector?.elements(as: Double.self) == nil)
        #expect(WireVector([1.5, 2.5] as [Double])?.dtype == .float64)
        #expect(WireVector.float32([1, .infinity, .nan]).firstNonFiniteIndex == 1)
        #expect(WireVector.float64([1, 2, -.nan]).firstNonFiniteIndex == 2)
        #expect(WireVector.float64([1, 2, .greatestFiniteMagnitude]).firstNonFiniteIndex == nil)
        #expect(WireVector(empty: .float32).firstNonFiniteIndex == nil)
        #expect(WireVector.float64([1, 2]).description == "float64[2]")
    }

    @Test func longTextIsShortenedAtCharacterBoundaries() {
        let text = String(repeating: "🙂", count: 300)  // 4 bytes each
        let short = WireMessage.truncatedUTF8(text)
        #expect(short.utf8.count == 1024)
        #expect(WireMessage.truncatedUTF8("aé🙂", maxBytes: 5) == "aé")
        #expect(WireMessage.truncatedUTF8("abc", maxBytes: 3) == "abc")
        let report = WireMessage.error(.init(code: .computeFailed, message: WireMessage.truncatedUTF8(text + "x")))
        #expect(throws: Never.self) { try report.validate() }
    }

    @Test func defaultArchitectureUsesReversals() throws {
        let a = WireMessage.JobSpec.Architecture(dimension: 3, couplings: 2, hidden: 8, depth: 2)
        #expect(a.permutations == [[2, 1, 0], [2, 1, 0]])
        let spec = WireMessage.jobSpec(.init(
            jobID: 1, dtype: .float32, architecture: a, standardization: nil,
            mode: .training(.init(seed: 0, rowCount: 10, shardCount: 64, microBatchSize: 2, batchSize: 4, sync: .gradients))))
        #expect(try WireMessage.decode(spec.encoded()) == spec)
    }

    @Test func limitsMatchTheDocumentation() {
        let limits = WireLimits.default
        #expect(limits.maxFrameBytes == 1 << 30)
        #expect(limits.maxStringBytes == 1024)
        #expect(limits.maxVectorElements == 1 << 28)
        #expect(limits.maxMicroBatches == 65536)
        #expect(limits.zmqMaxMessageSize == 1 << 30)
    }
}

@Test func dtypeSetMembership() {
    #expect(WireDTypeSet.all.contains(WireDType.float32))
    #expect(WireDTypeSet.all.contains(WireDType.float64))
    #expect(!WireDTypeSet.float32.contains(WireDType.float64))
    #expect(!WireDTypeSet([]).contains(WireDType.float32))
}
