import Foundation
import Testing
@testable import ZeroMQ

struct ZMQPollerTests {
    @Test func reportsTheReadySocketOnly() throws {
        let context = try ZMQContext()
        let quiet = try ZMQSocket(context: context, type: .pull)
        _ = try quiet.bindLoopback()
        let busy = try ZMQSocket(context: context, type: .pull)
        let endpoint = try busy.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)

        var poller = ZMQPoller()
        #expect(poller.add(quiet) == 0)
        #expect(poller.add(busy) == 1)
        #expect(try poller.poll(timeoutMilliseconds: 50) == [])

        try push.send([bytes("wake up")])
        #expect(try poller.poll(timeoutMilliseconds: patience) == [1])
        #expect(try busy.events.contains(.readable))
        #expect(try busy.receive(timeoutMilliseconds: 0) == [bytes("wake up")])
        #expect(try poller.poll(timeoutMilliseconds: 0) == [])
    }

    @Test func pollsRawFileDescriptors() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        var poller = ZMQPoller()
        poller.add(fileDescriptor: fds[0])
        #expect(try poller.poll(timeoutMilliseconds: 10) == [])
        var byte: UInt8 = 1
        #expect(write(fds[1], &byte, 1) == 1)
        #expect(try poller.poll(timeoutMilliseconds: patience) == [0])
    }

    @Test func refusesClosedSocketsAndEndlessEmptyPolls() throws {
        #expect(throws: ZeroMQError.emptyPoller) { try ZMQPoller().poll(timeoutMilliseconds: nil) }
        #expect(try ZMQPoller().poll(timeoutMilliseconds: 1) == [])
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .pull)
        var poller = ZMQPoller()
        poller.add(socket)
        socket.close()
        #expect(throws: ZeroMQError.socketClosed(operation: "poll")) { try poller.poll(timeoutMilliseconds: 0) }
    }
}
