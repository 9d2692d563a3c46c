import Foundation
import Testing
@testable import ZeroMQ

/// The socket patterns the cluster uses, over real loopback TCP and IPC connections.
struct ZMQSocketTests {
    @Test func routerDealerRoundTripWithIdentitiesAndMultipart() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        let endpoint = try router.bindLoopback()
        let dealer = try ZMQSocket(context: context, type: .dealer)
        try dealer.setRoutingID(bytes("worker-1"))
        #expect(try dealer.routingID == bytes("worker-1"))
        try dealer.connect(endpoint)

        try dealer.send([bytes("hello"), [], bytes("world")])
        let request = try #require(try router.receive(timeoutMilliseconds: patience))
        #expect(request == [bytes("worker-1"), bytes("hello"), [], bytes("world")])

        try router.send([bytes("worker-1"), bytes("reply"), [0, 1, 2, 255]])
        let reply = try #require(try dealer.receive(timeoutMilliseconds: patience))
        #expect(reply == [bytes("reply"), [0, 1, 2, 255]])
    }

    @Test func pushPullOverTCP() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        for index in 0..<10 { try push.send([[UInt8(index)]]) }
        for index in 0..<10 {
            #expect(try pull.receive(timeoutMilliseconds: patience) == [[UInt8(index)]])
        }
    }

    @Test func pushPullOverIPC() throws {
        let (endpoint, path) = ipcEndpoint()
        defer { unlink(path) }
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.bind(endpoint)
        #expect(try pull.lastEndpoint == endpoint)
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        try push.send([bytes("over"), bytes("ipc")])
        #expect(try pull.receive(timeoutMilliseconds: patience) == [bytes("over"), bytes("ipc")])
    }

    @Test func pubSubDeliversOnlySubscribedPrefixes() throws {
        let context = try ZMQContext()
        let pub = try ZMQSocket(context: context, type: .pub)
        let endpoint = try pub.bindLoopback()
        let sub = try ZMQSocket(context: context, type: .sub)
        try sub.subscribe("weather")
        try sub.connect(endpoint)

        // A subscription reaches the publisher asynchronously ("slow joiner"): publish
        // both topics until the subscriber has seen one message.
        var first: [[UInt8]]?
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(patience))
        while first == nil && ContinuousClock.now < deadline {
            try pub.send([bytes("traffic jam")])
            try pub.send([bytes("weather sunny"), bytes("22C")])
            first = try sub.receive(timeoutMilliseconds: 20)
        }
        #expect(first == [bytes("weather sunny"), bytes("22C")])
        // Everything that arrives afterwards is weather, too.
        while let more = try sub.receive(timeoutMilliseconds: 50) {
            #expect(more.first.map { $0.starts(with: bytes("weather")) } == true)
        }
    }

    @Test func requestReply() throws {
        let context = try ZMQContext()
        let rep = try ZMQSocket(context: context, type: .rep)
        let endpoint = try rep.bindLoopback()
        let req = try ZMQSocket(context: context, type: .req)
        try req.connect(endpoint)
        for round in 0..<3 {
            try req.send([bytes("ping \(round)")])
            #expect(try rep.receive(timeoutMilliseconds: patience) == [bytes("ping \(round)")])
            try rep.send([bytes("pong \(round)")])
            #expect(try req.receive(timeoutMilliseconds: patience) == [bytes("pong \(round)")])
        }
    }

    @Test func pairBothWays() throws {
        let context = try ZMQContext()
        let a = try ZMQSocket(context: context, type: .pair)
        let endpoint = try a.bindLoopback()
        let b = try ZMQSocket(context: context, type: .pair)
        try b.connect(endpoint)
        try b.send([bytes("to a")])
        #expect(try a.receive(timeoutMilliseconds: patience) == [bytes("to a")])
        try a.send([bytes("to b")])
        #expect(try b.receive(timeoutMilliseconds: patience) == [bytes("to b")])
    }

    @Test func receiveTimeoutReturnsNil() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        _ = try pull.bindLoopback()
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try pull.receive(timeoutMilliseconds: 100) == nil)
        let elapsed = start.duration(to: clock.now)
        #expect(elapsed >= .milliseconds(95))
        #expect(elapsed < .seconds(3))
        #expect(try pull.receive(timeoutMilliseconds: 0) == nil)
    }

    @Test func socketReceiveTimeoutOptionBoundsABlockingReceive() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        _ = try pull.bindLoopback()
        try pull.setReceiveTimeout(50)
        #expect(try pull.receiveTimeout == 50)
        #expect(try pull.receive() == nil)
    }

    @Test func messagesWithTooManyFramesAreDrainedAndReported() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        try push.send((0..<10).map { [UInt8($0)] })
        try push.send([bytes("next")])

        #expect(throws: ZeroMQError.tooManyFrames(limit: 4, frames: 10)) {
            try pull.receive(timeoutMilliseconds: patience, maxFrames: 4)
        }
        // The oversized message was drained completely: the next one arrives whole.
        #expect(try pull.receive(timeoutMilliseconds: patience, maxFrames: 4) == [bytes("next")])
    }

    @Test func oversizedMessageDropsOnlyThatPeer() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.setMaxMessageSize(1024)
        #expect(try pull.maxMessageSize == 1024)
        let endpoint = try pull.bindLoopback()

        let offender = try ZMQSocket(context: context, type: .push)
        try offender.connect(endpoint)
        let honest = try ZMQSocket(context: context, type: .push)
        try honest.connect(endpoint)

        try offender.send([[UInt8](repeating: 7, count: 4096)])
        try honest.send([bytes("small and welcome")])

        #expect(try pull.receive(timeoutMilliseconds: patience) == [bytes("small and welcome")])
        // The oversized frame never arrives; libzmq dropped the offender's connection.
        #expect(try pull.receive(timeoutMilliseconds: 200) == nil)
        // The receiving socket keeps working for the other peer.
        try honest.send([bytes("still here")])
        #expect(try pull.receive(timeoutMilliseconds: patience) == [bytes("still here")])
    }

    @Test func routerMandatoryRejectsUnknownIdentity() throws {
        let context = try ZMQContext()
        let router = try ZMQSocket(context: context, type: .router)
        try router.setRouterMandatory(true)
        _ = try router.bindLoopback()
        do {
            try router.send([bytes("nobody"), bytes("hello")])
            Issue.record("sending to an unknown routing id did not throw")
        } catch let error as ZeroMQError {
            #expect(error.isHostUnreachable)
            #expect(error.function == "zmq_send")  // small frames are copied by zmq_send
        }
        // Shared (zero-copy) frames take the same path.
        #expect(throws: ZeroMQError.self) {
            try router.send(frames: [ZMQFrame(copying: bytes("nobody")), ZMQFrame(sharing: bytes("x"))])
        }
    }

    @Test func highWaterMarkWithDontWaitReturnsFalseWhenFull() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        try pull.setReceiveHighWaterMark(1)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.setSendHighWaterMark(1)
        try push.connect(endpoint)

        // One shared 1 MiB buffer: queueing it many times costs no memory, and a few of them
        // fill the kernel's socket buffers behind the two one-message queues.
        let frame = ZMQFrame(sharing: [UInt8](repeating: 1, count: 1 << 20))
        var queued = 0
        var refused = false
        while queued < 1_000 {
            if try push.send(frames: [frame], dontWait: true) {
                queued += 1
            } else {
                refused = true
                break
            }
        }
        #expect(refused, "1000 messages of 1 MiB were queued without reaching the high-water mark")

        // Draining the receiver makes room again.
        _ = try #require(try pull.receive(timeoutMilliseconds: patience))
        #expect(eventually { (try? push.send(frames: [frame], dontWait: true)) == true })
    }

    @Test func sendWithoutPeerAndDontWaitReturnsFalse() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, type: .push)
        _ = try push.bindLoopback()
        #expect(try push.send([bytes("nobody listens")], dontWait: true) == false)
    }

    @Test func emptyMessageIsRefused() throws {
        let context = try ZMQContext()
        let push = try ZMQSocket(context: context, type: .push)
        #expect(throws: ZeroMQError.emptyMessage) { try push.send([]) }
    }

    @Test func optionsRoundTrip() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        #expect(try socket.linger == 0)
        try socket.setLinger(250)
        #expect(try socket.linger == 250)
        try socket.setSendHighWaterMark(10)
        try socket.setReceiveHighWaterMark(20)
        #expect(try socket.sendHighWaterMark == 10)
        #expect(try socket.receiveHighWaterMark == 20)
        try socket.setSendTimeout(30)
        #expect(try socket.sendTimeout == 30)
        try socket.setHeartbeatInterval(1_000)
        try socket.setHeartbeatTimeout(3_000)
        try socket.setHeartbeatTTL(5_000)
        try socket.setImmediate(true)
        #expect(try socket.events == [])
        #expect(try socket.fileDescriptor >= 0)
        #expect(throws: ZeroMQError.outOfRange(name: "linger", value: -2, range: -1...Int64(Int32.max))) {
            try socket.setLinger(-2)
        }
        #expect(throws: ZeroMQError.self) { try socket.setSendHighWaterMark(Int(Int32.max) + 1) }
        #expect(throws: ZeroMQError.self) { try socket.setHeartbeatTTL(7_000_000) }
    }

    @Test func unbindAndDisconnect() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        try push.send([bytes("one")])
        #expect(try pull.receive(timeoutMilliseconds: patience) == [bytes("one")])
        try push.disconnect(endpoint)
        try pull.unbind(endpoint)
        #expect(throws: ZeroMQError.self) { try pull.unbind(endpoint) }
    }
}
