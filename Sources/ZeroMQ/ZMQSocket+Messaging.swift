import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Sending and receiving whole multipart messages.
///
/// Every `zmq_msg_t` used here lives in a temporary allocation inside one function, is
/// initialised once and closed exactly once on every path (`defer`), including errors in the
/// middle of a multipart message.
extension ZMQSocket {
    /// The default upper bound on the frames of a received message.
    public static let defaultMaxFrames = 64
    /// The largest `maxFrames` a receive accepts (the frames' messages are held at once).
    public static let maxFramesLimit = 4096

    /// Sends a multipart message whose frames are byte arrays.
    ///
    /// Frames shorter than ``ZMQFrame/sharingThreshold`` are copied into libzmq; longer ones
    /// are shared without a copy (see ``ZMQFrame``). For a ROUTER socket the first frame is the
    /// routing id of the peer.
    ///
    /// - Parameter dontWait: fail fast instead of blocking when the message cannot be queued.
    /// - Returns: true when the message was queued; false when it could not be queued in time —
    ///   the high-water mark is reached or there is no peer, with `dontWait` or after the send
    ///   timeout. Nothing of the message was sent then.
    /// - Throws: ``ZeroMQError`` — e.g. ``ZeroMQError/isHostUnreachable`` for a ROUTER with
    ///   mandatory routing, ``ZeroMQError/emptyMessage`` for no frames.
    @discardableResult
    public func send(_ frames: [[UInt8]], dontWait: Bool = false) throws -> Bool {
        try send(frames: frames.map { ZMQFrame($0) }, dontWait: dontWait)
    }

    /// Sends a multipart message of ``ZMQFrame``s — shared frames are not copied.
    ///
    /// The message is atomic: either every frame is queued or (return value false) none is.
    /// `dontWait` applies to the first frame; libzmq accepts the rest of a message whose first
    /// frame it took without waiting.
    ///
    /// - Returns: true when queued; false when the message could not be queued in time (see
    ///   ``send(_:dontWait:)``).
    @discardableResult
    public func send(frames: [ZMQFrame], dontWait: Bool = false) throws -> Bool {
        let socket = try open("send")
        guard !frames.isEmpty else { throw ZeroMQError.emptyMessage }
        for (index, frame) in frames.enumerated() {
            let last = index == frames.count - 1
            var flags: Int32 = last ? 0 : ZMQ_SNDMORE
            if index == 0 && dontWait { flags |= ZMQ_DONTWAIT }
            let sent = try Self.sendFrame(frame, socket: socket, flags: flags)
            if !sent {
                guard index == 0 else {
                    // libzmq does not refuse the middle of a message it started; if it ever
                    // does, report it rather than pretend nothing was sent.
                    throw ZeroMQError.libzmq(function: "zmq_msg_send", errno: EAGAIN, detail: "frame \(index)")
                }
                return false
            }
        }
        return true
    }

    /// Receives one whole multipart message.
    ///
    /// Each frame is copied once, from libzmq's message buffer into a new `[UInt8]` (the one
    /// copy on the receive path; libzmq itself reads large frames from the network straight
    /// into that buffer).
    ///
    /// - Parameters:
    ///   - timeoutMilliseconds: how long to wait for the first frame: nil waits as the socket's
    ///     ``receiveTimeout`` says (forever by default), 0 does not wait. The rest of a
    ///     multipart message is always there once its first frame is (libzmq delivers messages
    ///     atomically).
    ///   - maxFrames: the most frames a message may have, 1…``maxFramesLimit``. A longer message is read to its end
    ///     and discarded, and ``ZeroMQError/tooManyFrames(limit:frames:)`` is thrown; the socket
    ///     stays usable.
    /// - Returns: the frames, or nil when the timeout expired.
    /// - Throws: ``ZeroMQError``; a signal while waiting throws ``ZeroMQError/isInterrupted``
    ///   (not retried, so the caller decides), a shut-down context ``ZeroMQError/isTerminated``.
    public func receive(
        timeoutMilliseconds: Int? = nil,
        maxFrames: Int = ZMQSocket.defaultMaxFrames
    ) throws -> [[UInt8]]? {
        // The frames are copied out of libzmq's messages once, here.
        try receive(timeoutMilliseconds: timeoutMilliseconds, maxFrames: maxFrames) { frames in frames.map { Array($0) } }
    }

    /// Receives a multipart message and lends its frames to `body` without copying them: the
    /// buffers point into libzmq's messages and are valid only during the call (copy what you
    /// keep). For large messages this saves the copy ``receive(timeoutMilliseconds:maxFrames:)``
    /// makes.
    ///
    /// Timeout, frame limit and errors as ``receive(timeoutMilliseconds:maxFrames:)``; every
    /// message is closed exactly once, also when `body` throws.
    ///
    /// - Returns: what `body` returned, or nil when the timeout expired.
    public func receive<R>(
        timeoutMilliseconds: Int? = nil,
        maxFrames: Int = ZMQSocket.defaultMaxFrames,
        lending body: ([UnsafeRawBufferPointer]) throws -> R
    ) throws -> R? {
        try receive(timeoutMilliseconds: timeoutMilliseconds, maxFrames: maxFrames, property: nil) { frames, _ in try body(frames) }
    }

    /// Like ``receive(timeoutMilliseconds:maxFrames:lending:)``, and also hands `body` a
    /// metadata property of the message's last frame (`zmq_msg_gets`), e.g. `"User-Id"`: the user id the ZAP
    /// handler gave the connection (nil when the property is not set or `property` is nil).
    public func receive<R>(
        timeoutMilliseconds: Int? = nil,
        maxFrames: Int = ZMQSocket.defaultMaxFrames,
        property: String?,
        lending body: ([UnsafeRawBufferPointer], String?) throws -> R
    ) throws -> R? {
        let socket = try open("receive")
        guard (1...Self.maxFramesLimit).contains(maxFrames) else {
            throw ZeroMQError.outOfRange(name: "maxFrames", value: Int64(maxFrames), range: 1...Int64(Self.maxFramesLimit))
        }
        if let timeoutMilliseconds, timeoutMilliseconds < 0 {
            throw ZeroMQError.outOfRange(
                name: "timeoutMilliseconds", value: Int64(timeoutMilliseconds), range: 0...Int64(Int.max))
        }
        return try withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: maxFrames) { messages in
            var used = 0
            defer { for i in 0..<used { zmq_msg_close(messages.baseAddress! + i) } }
            zmq_msg_init(messages.baseAddress!)  // cannot fail
            used = 1
            guard try Self.receiveFirstFrame(messages.baseAddress!, socket: socket, timeoutMilliseconds: timeoutMilliseconds)
            else { return nil }
            while zmq_msg_more(messages.baseAddress! + used - 1) != 0 {
                guard used < maxFrames else {
                    // Drain the rest into the last message, then report.
                    let last = messages.baseAddress! + used - 1
                    var count = used
                    while zmq_msg_more(last) != 0 {
                        try call("zmq_msg_recv") { zmq_msg_recv(last, socket, 0) }
                        count += 1
                    }
                    throw ZeroMQError.tooManyFrames(limit: maxFrames, frames: count)
                }
                let next = messages.baseAddress! + used
                zmq_msg_init(next)
                used += 1
                try call("zmq_msg_recv") { zmq_msg_recv(next, socket, 0) }
            }
            let frames = (0..<used).map { i -> UnsafeRawBufferPointer in
                let message = messages.baseAddress! + i
                let count = zmq_msg_size(message)
                guard count > 0, let data = zmq_msg_data(message) else { return UnsafeRawBufferPointer(start: nil, count: 0) }
                return UnsafeRawBufferPointer(start: data, count: count)
            }
            // The last frame: a ROUTER's routing-id frame is made by the socket and carries no
            // connection metadata.
            let value = property.flatMap { name in zmq_msg_gets(messages.baseAddress! + used - 1, name).map { String(cString: $0) } }
            return try body(frames, value)
        }
    }

    // MARK: Implementation

    /// Sends one frame; false on `EAGAIN`. The message is closed on every path; after a
    /// successful send libzmq has emptied it, so closing it then releases nothing.
    private static func sendFrame(
        _ frame: ZMQFrame, socket: UnsafeMutableRawPointer, flags: Int32
    ) throws -> Bool {
        switch frame.payload {
        case .copied(let bytes):
            // zmq_send copies the bytes into a new message before returning. EINTR is retried:
            // a failed send leaves nothing behind, so sending again is the same send.
            return try bytes.withUnsafeBytes { buffer in
                try callUnlessAgain("zmq_send") { zmq_send(socket, buffer.baseAddress, buffer.count, flags) } != nil
            }
        case .shared(let owner):
            return try withUnsafeTemporaryAllocation(of: zmq_msg_t.self, capacity: 1) { buffer in
                let message = buffer.baseAddress!
                try owner.initialize(message)
                defer { zmq_msg_close(message) }
                return try callUnlessAgain("zmq_msg_send") { zmq_msg_send(message, socket, flags) } != nil
            }
        }
    }

    /// Receives the first frame of a message into `message`; false when none came in time.
    private static func receiveFirstFrame(
        _ message: UnsafeMutablePointer<zmq_msg_t>,
        socket: UnsafeMutableRawPointer,
        timeoutMilliseconds: Int?
    ) throws -> Bool {
        guard let timeoutMilliseconds else {
            // Blocking, bounded by ZMQ_RCVTIMEO; EAGAIN means it expired.
            return try callUnlessAgain("zmq_msg_recv", retryInterrupted: false) {
                zmq_msg_recv(message, socket, 0)
            } != nil
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(timeoutMilliseconds))
        while true {
            let received = try callUnlessAgain("zmq_msg_recv") { zmq_msg_recv(message, socket, ZMQ_DONTWAIT) }
            if received != nil { return true }
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { return false }
            let (seconds, attoseconds) = remaining.components
            // Round up, so that a wait never ends early and spins.
            let milliseconds = Int(seconds) * 1000 + Int((attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var item = zmq_pollitem_t(socket: socket, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
            let ready = try call("zmq_poll", retryInterrupted: false) { zmq_poll(&item, 1, milliseconds) }
            if ready == 0 { return false }
        }
    }
}
