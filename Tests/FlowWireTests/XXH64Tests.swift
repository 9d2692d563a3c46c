import Testing
import FlowWire

/// XXH64 against the reference implementation's values (the `xxhash` Python package, which wraps
/// it), for inputs that take every path: empty, under 4, 4–7 and 8–31 bytes, whole 32-byte
/// stripes, and stripes with every tail length.
struct XXH64Tests {
    static func hash(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { XXH64.hash($0, seed: seed) }
    }

    @Test func matchesTheReference() {
        #expect(Self.hash([]) == 0xEF46_DB37_51D8_E999)
        #expect(Self.hash([], seed: 1) == 0xD5AF_BA13_36A3_BE4B)
        #expect(Self.hash(Array("a".utf8)) == 0xD24E_C4F1_A98C_6E5B)
        #expect(Self.hash(Array("a".utf8), seed: 1) == 0xDEC2_BC81_C3CD_46C6)
        #expect(Self.hash(Array("abc".utf8)) == 0x44BC_2CF5_AD77_0999)
        #expect(Self.hash((0..<32).map(UInt8.init)) == 0xCBF5_9C51_16FF_32B4)
        #expect(Self.hash((0..<32).map(UInt8.init), seed: 1) == 0xD74E_6766_CE9D_BA94)
        #expect(Self.hash((0..<100).map(UInt8.init)) == 0x6AC1_E580_3216_6597)
        #expect(Self.hash((0..<1000).map { UInt8(($0 * 7) & 255) }) == 0x2527_5608_A9CF_C168)
        #expect(Self.hash((0..<1000).map { UInt8(($0 * 7) & 255) }, seed: 1) == 0x68B0_523A_81EF_A7F0)
    }

    /// One ulp anywhere in a gradient changes the digest (what verification relies on).
    @Test func oneULPAnywhereChangesIt() {
        let values = (0..<1027).map { Float($0) * 0.37 - 11 }
        let base = values.withUnsafeBufferPointer { XXH64.hash(values: $0) }
        for index in [0, 1, 31, 32, 500, 1024, 1026] {
            var changed = values
            changed[index] = changed[index].nextUp
            #expect(changed.withUnsafeBufferPointer { XXH64.hash(values: $0) } != base, "index \(index)")
        }
    }
}
