import Foundation
import Testing
@testable import ZeroMQ

/// `receive(lending:)`: frames lent to a closure without a copy, with the same limits and
/// errors as the copying receive.
struct ZMQLendingReceiveTests {
    @Test func framesAreLentWholeAndInOrder() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        let large = testPattern(count: 3 << 20)
        try push.send([bytes("head"), [], large])
        let received = try pull.receive(timeoutMilliseconds: 20_000) { frames in frames.map { Array($0) } }
        let frames = try #require(received)
        #expect(frames.count == 3)
        #expect(frames[0] == bytes("head") && frames[1].isEmpty)
        #expect(sameBytes(frames[2], large))
    }

    @Test func aTimeoutReturnsNilWithoutCallingTheBody() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        _ = try pull.bindLoopback()
        var called = false
        #expect(try pull.receive(timeoutMilliseconds: 30) { _ in called = true } == nil)
        #expect(!called)
    }

    @Test func tooManyFramesAreDrainedAndTheNextMessageArrivesWhole() throws {
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        try push.send((0..<10).map { [UInt8($0)] })
        try push.send([bytes("next")])
        #expect(throws: ZeroMQError.tooManyFrames(limit: 4, frames: 10)) {
            try pull.receive(timeoutMilliseconds: 20_000, maxFrames: 4) { _ in Issue.record("the body ran") }
        }
        #expect(try pull.receive(timeoutMilliseconds: 20_000, maxFrames: 4) { $0.map { Array($0) } } == [bytes("next")])
    }

    @Test func anErrorThrownByTheBodyLeavesTheSocketUsable() throws {
        struct Refused: Error {}
        let context = try ZMQContext()
        let pull = try ZMQSocket(context: context, type: .pull)
        let endpoint = try pull.bindLoopback()
        let push = try ZMQSocket(context: context, type: .push)
        try push.connect(endpoint)
        try push.send([bytes("one"), bytes("two")])
        try push.send([bytes("three")])
        #expect(throws: Refused.self) { try pull.receive(timeoutMilliseconds: 20_000) { _ in throw Refused() } }
        #expect(try pull.receive(timeoutMilliseconds: 20_000) { $0.map { Array($0) } } == [bytes("three")])
    }
}
