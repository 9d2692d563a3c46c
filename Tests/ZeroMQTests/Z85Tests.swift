import Testing
@testable import ZeroMQ

struct Z85Tests {
    /// The example of the Z85 specification (RFC 32).
    @Test func specificationExample() throws {
        let bytes: [UInt8] = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B]
        #expect(try Z85.encode(bytes) == "HelloWorld")
        #expect(try Z85.decode("HelloWorld") == bytes)
    }

    @Test(arguments: [0, 4, 8, 32, 64, 1024])
    func roundTripAndAgreementWithLibzmq(length: Int) throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = try Z85.encode(bytes)
            #expect(text.utf8.count == length / 4 * 5)
            #expect(try Z85.decode(text) == bytes, "input \(bytes)")
            #expect(Z85.libzmqEncode(bytes) == text, "input \(bytes)")
            if length > 0 {  // libzmq refuses to decode the empty string
                #expect(Z85.libzmqDecode(text) == bytes, "input \(text)")
            }
        }
    }

    @Test func extremeValues() throws {
        for bytes: [UInt8] in [[0, 0, 0, 0], [255, 255, 255, 255]] {
            let text = try Z85.encode(bytes)
            #expect(Z85.libzmqEncode(bytes) == text)
            #expect(try Z85.decode(text) == bytes)
        }
    }

    @Test func malformedInputThrows() {
        #expect(throws: ZeroMQError.z85InvalidLength(length: 3, multiple: 4)) { try Z85.encode([1, 2, 3]) }
        #expect(throws: ZeroMQError.z85InvalidLength(length: 6, multiple: 5)) { try Z85.decode("Hello1") }
        #expect(throws: ZeroMQError.z85InvalidCharacter(offset: 2, byte: UInt8(ascii: " "))) {
            try Z85.decode("He lo")
        }
        #expect(throws: ZeroMQError.z85InvalidCharacter(offset: 0, byte: 0xC3)) { try Z85.decode("é123") }
        // "#####" is 85^5 - 1 > 2^32 - 1.
        #expect(throws: ZeroMQError.z85Overflow(offset: 5)) { try Z85.decode("00000#####") }
        #expect(Z85.libzmqDecode("00000#####") == nil)
    }
}
