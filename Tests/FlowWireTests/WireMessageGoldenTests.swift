import Testing
import FlowWire

/// Exact bytes, computed by hand from `docs/protocol.md`, so the encoding cannot drift silently.
struct WireMessageGoldenTests {
    static func header(_ kind: UInt8) -> [UInt8] { [0x54, 0x52, 0x42, 0x57, 0x01, 0x00, kind, 0x00] }

    @Test func heartbeatWithoutStep() throws {
        let message = WireMessage.heartbeat(.init(sequence: 1, pendingWork: 0, currentStep: nil))
        let golden: [UInt8] = Self.header(0x0B) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // sequence u64 = 1
            0x00, 0x00, 0x00, 0x00,  // pendingWork u32 = 0
            0x00,  // currentStep absent
        ]
        #expect(golden.count == 21)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func heartbeatWithStep() throws {
        let message = WireMessage.heartbeat(.init(sequence: 0x0102_0304_0506_0708, pendingWork: 3, currentStep: 258))
        let golden: [UInt8] = Self.header(0x0B) + [
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // sequence, little-endian
            0x03, 0x00, 0x00, 0x00,  // pendingWork = 3
            0x01,  // currentStep present
            0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // currentStep = 258
        ]
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func assignment() throws {
        let message = WireMessage.assignment(.init(jobID: 7, step: 3, version: 3, microBatches: [12, 13]))
        let golden: [UInt8] = Self.header(0x06) + [
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 7
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // step = 3
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version = 3
            0x02, 0x00, 0x00, 0x00,  // 2 micro-batches
            0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 12
            0x0D, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 13
        ]
        #expect(golden.count == 52)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func gradientResultFloat32() throws {
        let message = WireMessage.gradientResult(.init(
            jobID: 1, step: 2, version: 2, microBatch: 5, rowCount: 4, lossSum: 0.5, gradient: .float32([1, -2])))
        let golden: [UInt8] = Self.header(0x07) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 1
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // step = 2
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version = 2
            0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // microBatch = 5
            0x04, 0x00, 0x00, 0x00,  // rowCount = 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE0, 0x3F,  // lossSum = 0.5 (0x3FE0000000000000)
            0x01,  // dtype float32
            0x02, 0x00, 0x00, 0x00,  // 2 elements
            0x00, 0x00, 0x80, 0x3F,  // 1.0 (0x3F800000)
            0x00, 0x00, 0x00, 0xC0,  // -2.0 (0xC0000000)
        ]
        #expect(golden.count == 65)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func goodbyeWithMultibyteText() throws {
        let message = WireMessage.goodbye(.init(reason: "né"))
        let golden: [UInt8] = Self.header(0x0D) + [0x03, 0x00, 0x00, 0x00, 0x6E, 0xC3, 0xA9]
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    /// The kind numbers are part of the protocol.
    @Test func kindNumbers() {
        let expected: [(WireMessage.Kind, UInt8)] = [
            (.hello, 1), (.welcome, 2), (.jobSpec, 3), (.shardRows, 4), (.parameters, 5), (.assignment, 6),
            (.gradientResult, 7), (.localResult, 8), (.scoreChunk, 9), (.scoreResult, 10), (.heartbeat, 11),
            (.error, 12), (.goodbye, 13),
        ]
        for (kind, code) in expected { #expect(kind.rawValue == code, "\(kind)") }
        #expect(WireMessage.Kind.allCases.count == expected.count)
        #expect(WireDType.float32.rawValue == 1 && WireDType.float64.rawValue == 2)
        #expect(WireRowStatus.allCases.map(\.rawValue) == [0, 1, 2, 3])
    }
}
