import Foundation
import Testing
@testable import ZeroMQ

struct ZMQContextTests {
    @Test func optionsAreApplied() throws {
        let context = try ZMQContext(ioThreads: 2, maxSockets: 64)
        #expect(try context.ioThreads == 2)
        #expect(try context.maxSockets == 64)
        #expect(throws: ZeroMQError.self) { try ZMQContext(ioThreads: -1) }
    }

    @Test func terminatesPromptlyAfterSocketsCloseWithPendingMessages() throws {
        let context = try ZMQContext()
        do {
            let push = try ZMQSocket(context: context, type: .push)
            // Nobody listens on port 1: the message waits in the queue forever.
            try push.connect("tcp://127.0.0.1:1")
            #expect(try push.send([bytes("never delivered")], dontWait: true))
            push.close()
        }
        let clock = ContinuousClock()
        let start = clock.now
        context.terminate()
        #expect(start.duration(to: clock.now) < .seconds(1))
        context.terminate()  // idempotent
        #expect(throws: ZeroMQError.self) { try ZMQSocket(context: context, type: .pair) }
    }

    @Test func deinitTerminatesPromptly() throws {
        let clock = ContinuousClock()
        var start = clock.now
        do {
            let context = try ZMQContext()
            let dealer = try ZMQSocket(context: context, type: .dealer)
            try dealer.connect("tcp://127.0.0.1:1")
            try dealer.send([bytes("pending")], dontWait: true)
            start = clock.now
        }  // socket, then context, released here
        #expect(start.duration(to: clock.now) < .seconds(1))
    }

    @Test func shutdownWakesABlockedReceiver() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        _ = try pull.bindLoopback()
        let shutter = Thread { usleep(100_000); context.shutdown() }
        shutter.start()
        do {
            _ = try pull.receive(timeoutMilliseconds: patience)
            Issue.record("receive returned instead of throwing ETERM")
        } catch let error as ZeroMQError {
            #expect(error.isTerminated)
        }
    }

    @Test func closingTwiceIsHarmlessAndUseAfterCloseThrows() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .pull)
        socket.close()
        socket.close()
        #expect(socket.isClosed)
        #expect(throws: ZeroMQError.socketClosed(operation: "bind")) { try socket.bind("tcp://127.0.0.1:*") }
        #expect(throws: ZeroMQError.socketClosed(operation: "receive")) { try socket.receive(timeoutMilliseconds: 0) }
        #expect(throws: ZeroMQError.socketClosed(operation: "send")) { try socket.send([[1]]) }
    }
}
