import Foundation
import Testing
@testable import ZeroMQ

/// Zero-copy sends: the bytes arrive intact and libzmq releases the buffer exactly once.
struct ZMQFrameTests {
    static let sixteenMiB = 16 << 20

    @Test func sharedSixteenMiBBufferArrivesIntactAndIsReleasedOnce() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)

        let released = Counter()
        let expected = testPattern(count: Self.sixteenMiB)
        do {
            let buffer = TrackedBuffer(copying: expected, released: released)
            let frame = ZMQFrame(unsafeBytes: UnsafeRawBufferPointer(buffer.bytes), owner: buffer)
            #expect(frame.isShared && frame.count == Self.sixteenMiB)
            #expect(try push.send(frames: [ZMQFrame(copying: bytes("header")), frame]))
        }
        let message = try #require(try pull.receive(timeoutMilliseconds: 20_000))
        #expect(message.count == 2)
        #expect(message[0] == bytes("header"))
        #expect(sameBytes(message[1], expected))

        // libzmq frees the message on its I/O thread once it is on the wire.
        #expect(eventually { released.value == 1 })
        // Once the context is terminated libzmq has released everything it held: still once.
        push.close()
        pull.close()
        context.terminate()
        #expect(released.value == 1)
    }

    @Test func sharedArrayArrivesIntact() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)

        var payload = testPattern(count: Self.sixteenMiB, seed: 7)
        let expected = payload
        try push.send(frames: [ZMQFrame(sharing: payload)])
        // Changing our copy does not change what libzmq sends (arrays are values).
        payload[0] ^= 0xFF
        payload[payload.count - 1] ^= 0xFF
        let message = try #require(try pull.receive(timeoutMilliseconds: 20_000))
        #expect(message.count == 1 && sameBytes(message[0], expected))

        // Large arrays given to the plain initialiser are shared as well.
        #expect(ZMQFrame(expected).isShared)
        #expect(!ZMQFrame(bytes("small")).isShared)
        try push.send([expected])
        let again = try #require(try pull.receive(timeoutMilliseconds: 20_000))
        #expect(again.count == 1 && sameBytes(again[0], expected))
    }

    @Test func contiguousArrayAndAllocatedFrames() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)

        let contiguous = ContiguousArray<UInt8>((0..<100_000).map { UInt8(truncatingIfNeeded: $0) })
        let allocated = ZMQFrame(byteCount: 40_000) { buffer in
            for index in buffer.indices { buffer[index] = UInt8(truncatingIfNeeded: index * 7) }
        }
        try push.send(frames: [ZMQFrame(sharing: contiguous), allocated, ZMQFrame(sharing: [UInt8]())])
        let message = try #require(try pull.receive(timeoutMilliseconds: patience))
        #expect(message.count == 3)
        #expect(message[0] == Array(contiguous))
        #expect(message[1] == (0..<40_000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        #expect(message[2] == [])
    }

    @Test func failedSendReleasesTheBufferAtOnce() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, type: .push)
        _ = try push.bindLoopback()  // no peer: a non-blocking send is refused
        let released = Counter()
        do {
            let buffer = TrackedBuffer(copying: testPattern(count: 1 << 20), released: released)
            let frame = ZMQFrame(unsafeBytes: UnsafeRawBufferPointer(buffer.bytes), owner: buffer)
            #expect(try push.send(frames: [frame], dontWait: true) == false)
        }
        #expect(released.value == 1)
    }

    @Test func frameSentTwiceIsReleasedOnceAfterBothSends() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        let released = Counter()
        do {
            let buffer = TrackedBuffer(copying: testPattern(count: 1 << 20), released: released)
            let frame = ZMQFrame(unsafeBytes: UnsafeRawBufferPointer(buffer.bytes), owner: buffer)
            try push.send(frames: [frame])
            try push.send(frames: [frame])
        }
        #expect(try pull.receive(timeoutMilliseconds: patience)?.first?.count == 1 << 20)
        #expect(try pull.receive(timeoutMilliseconds: patience)?.first?.count == 1 << 20)
        #expect(eventually { released.value == 1 })
    }
}
