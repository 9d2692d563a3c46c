import Foundation
import Testing
@testable import ZeroMQ

struct ZeroMQErrorTests {
    @Test func bindToAnInvalidEndpointNamesTheFunctionAndErrno() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .router)
        do {
            try socket.bind("tcp://127.0.0.1:notaport")
            Issue.record("bind did not throw")
        } catch let error as ZeroMQError {
            #expect(error.function == "zmq_bind")
            #expect(error.errno == EINVAL)
            #expect(error.description.contains("zmq_bind(\"tcp://127.0.0.1:notaport\")"))
            #expect(error.description.contains("errno \(EINVAL)"))
            #expect(error.message == String(cString: strerror(EINVAL)))
        }
        do {
            try socket.bind("nonsense://somewhere")
            Issue.record("bind did not throw")
        } catch let error as ZeroMQError {
            #expect(error.function == "zmq_bind")
            #expect(error.errno == EPROTONOSUPPORT)
        }
    }

    @Test func connectToAMalformedAddressNamesTheFunction() throws {
        let context = try ZMQContext()
        let socket = try ZMQSocket(context: context, type: .dealer)
        do {
            try socket.connect("tcp://")
            Issue.record("connect did not throw")
        } catch let error as ZeroMQError {
            #expect(error.function == "zmq_connect")
            #expect(error.errno == EINVAL)
        }
    }

    @Test func bindingAPortTwiceReportsAddressInUse() throws {
        let context = try ZMQContext()
        let first = try ZMQSocket(context: context, type: .pull)
        let endpoint = try first.bindLoopback()
        let second = try ZMQSocket(context: context, type: .pull)
        #expect(throws: ZeroMQError.libzmq(function: "zmq_bind", errno: EADDRINUSE, detail: endpoint)) {
            try second.bind(endpoint)
        }
    }

    @Test func predicates() {
        #expect(ZeroMQError.libzmq(function: "zmq_msg_recv", errno: EAGAIN, detail: nil).isTimeout)
        #expect(ZeroMQError.libzmq(function: "zmq_poll", errno: EINTR, detail: nil).isInterrupted)
        #expect(ZeroMQError.libzmq(function: "zmq_msg_recv", errno: ZeroMQError.ETERM, detail: nil).isTerminated)
        #expect(ZeroMQError.libzmq(function: "zmq_msg_send", errno: EHOSTUNREACH, detail: nil).isHostUnreachable)
        #expect(!ZeroMQError.emptyMessage.isTimeout)
        #expect(ZeroMQError.emptyMessage.errno == nil)
        #expect(ZeroMQError.emptyMessage.function == nil)
    }

    @Test(arguments: [
        (ZeroMQError.socketClosed(operation: "send"), "cannot send: the socket is closed"),
        (ZeroMQError.tooManyFrames(limit: 64, frames: 70),
         "received a message of 70 frames, more than the limit of 64; it was discarded"),
        (ZeroMQError.z85InvalidLength(length: 7, multiple: 5), "Z85: length 7 is not a multiple of 5"),
        (ZeroMQError.invalidCurveKey(length: 12), "a CURVE key is 32 bytes or 40 Z85 characters, not 12"),
        (ZeroMQError.outOfRange(name: "linger", value: -5, range: -1...10), "linger = -5 is out of range -1...10"),
    ])
    func descriptions(error: ZeroMQError, text: String) {
        #expect(error.description == text)
    }

    @Test func versionAndCapabilities() {
        #expect(ZeroMQ.version >= ZeroMQ.Version(major: 4, minor: 3, patch: 0))
        #expect(ZeroMQ.version.description.split(separator: ".").count == 3)
        #expect(ZeroMQ.has("ipc"))
        #expect(!ZeroMQ.has("no-such-capability"))
    }
}
