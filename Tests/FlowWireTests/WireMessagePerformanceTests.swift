import Testing
import FlowWire

/// Large payloads decode with one copy: a 10 MB gradient takes a few milliseconds (printed, not
/// asserted — timing depends on the machine and the build).
struct WireMessagePerformanceTests {
    @Test(arguments: WireDType.allCases)
    func tenMegabyteGradient(dtype: WireDType) throws {
        let count = 10 * 1024 * 1024 / dtype.byteWidth
        var samples = Samples(seed: 10)
        let gradient = samples.vector(dtype, count: count)
        let message = WireMessage.gradientResult(.init(
            jobID: 1, step: 1, version: 1, node: 1, rowCount: 256, lossSum: 1.5, gradient: gradient))
        let clock = ContinuousClock()
        var bytes: [UInt8] = []
        var decoded: WireMessage?
        var encodeTimes: [Duration] = []
        var decodeTimes: [Duration] = []
        for _ in 0..<5 {
            encodeTimes.append(clock.measure { bytes = message.encoded() })
            decodeTimes.append(try clock.measure { decoded = try WireMessage.decode(bytes) })
        }
        #expect(decoded == message)
        print("10 MB \(dtype) gradient (\(bytes.count) bytes), best of 5: encode \(encodeTimes.min()!), decode \(decodeTimes.min()!)")
    }
}
