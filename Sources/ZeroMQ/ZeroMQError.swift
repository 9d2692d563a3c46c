import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong in the ZeroMQ wrapper.
///
/// A failed libzmq call is ``libzmq(function:errno:detail:)``: it names the C function, the
/// `errno` libzmq reported and, where there is one, the argument that was refused (an endpoint,
/// an option name). ``description`` adds libzmq's own text (`zmq_strerror`), for example
///
///     zmq_bind("tcp://127.0.0.1:notaport") failed: Invalid argument (errno 22)
///
/// The other cases are refusals of the wrapper itself (a closed socket, a malformed Z85 string,
/// a message with too many frames); none of them is ever a crash.
public enum ZeroMQError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A libzmq function returned an error. `detail` is the argument that was refused, if any
    /// (the endpoint of `zmq_bind`, the option name of `zmq_setsockopt`).
    case libzmq(function: String, errno: Int32, detail: String?)
    /// An operation was attempted on a socket after ``ZMQSocket/close()``.
    case socketClosed(operation: String)
    /// A received message had more than `limit` frames. The whole message (`frames` frames in
    /// all) was read and discarded, so the socket is ready for the next message.
    case tooManyFrames(limit: Int, frames: Int)
    /// `send` was called with no frames at all.
    case emptyMessage
    /// `ZMQPoller.poll` was called with nothing to poll and no timeout (it would sleep forever).
    case emptyPoller
    /// A numeric argument is outside what libzmq accepts (`name` is the option or parameter).
    case outOfRange(name: String, value: Int64, range: ClosedRange<Int64>)
    /// Z85 input has the wrong length: bytes to encode must be a multiple of 4, text to decode a
    /// multiple of 5.
    case z85InvalidLength(length: Int, multiple: Int)
    /// Z85 text holds a byte (UTF-8 code unit `byte`, 0-based `offset`) outside the Z85 alphabet.
    case z85InvalidCharacter(offset: Int, byte: UInt8)
    /// A 5-character Z85 group (starting at 0-based `offset`) encodes a value above 2³²−1.
    case z85Overflow(offset: Int)
    /// A CURVE key is neither 32 bytes nor 40 Z85 characters (`length` is what was given).
    case invalidCurveKey(length: Int)

    /// The libzmq function that failed, for ``libzmq(function:errno:detail:)``; otherwise nil.
    public var function: String? {
        if case .libzmq(let function, _, _) = self { return function }
        return nil
    }

    /// The `errno` libzmq reported, for ``libzmq(function:errno:detail:)``; otherwise nil.
    public var errno: Int32? {
        if case .libzmq(_, let code, _) = self { return code }
        return nil
    }

    /// libzmq's text for ``errno`` (`zmq_strerror`), or nil when this is not a libzmq error.
    public var message: String? {
        errno.map { String(cString: zmq_strerror($0)) }
    }

    /// `EAGAIN`: a non-blocking operation could not proceed, or a send/receive timeout expired.
    public var isTimeout: Bool { errno == EAGAIN }

    /// `EINTR`: a blocking call was interrupted by a signal before it completed. Receives and
    /// polls return this to the caller (who usually just tries again) instead of retrying with
    /// the full timeout.
    public var isInterrupted: Bool { errno == EINTR }

    /// `ETERM`: the socket's context was shut down or terminated.
    public var isTerminated: Bool { errno == ZeroMQError.ETERM }

    /// `EHOSTUNREACH`: a ROUTER socket with ``ZMQSocket/setRouterMandatory(_:)`` was asked to
    /// send to a routing id that is not (or no longer) connected.
    public var isHostUnreachable: Bool { errno == EHOSTUNREACH }

    /// libzmq's own `ETERM` (`ZMQ_HAUSNUMERO + 53`; there is no system `ETERM`).
    static let ETERM: Int32 = Int32(ZMQ_HAUSNUMERO) + 53

    /// One sentence naming what failed and why; for libzmq errors the function, the refused
    /// argument, `zmq_strerror` text and the errno.
    public var description: String {
        switch self {
        case .libzmq(let function, let code, let detail):
            let text = String(cString: zmq_strerror(code))
            let call = detail.map { "\(function)(\"\($0)\")" } ?? function
            return "\(call) failed: \(text) (errno \(code))"
        case .socketClosed(let operation):
            return "cannot \(operation): the socket is closed"
        case .tooManyFrames(let limit, let frames):
            return "received a message of \(frames) frames, more than the limit of \(limit); it was discarded"
        case .emptyMessage:
            return "cannot send a message with no frames"
        case .emptyPoller:
            return "cannot poll nothing without a timeout"
        case .outOfRange(let name, let value, let range):
            return "\(name) = \(value) is out of range \(range.lowerBound)...\(range.upperBound)"
        case .z85InvalidLength(let length, let multiple):
            return "Z85: length \(length) is not a multiple of \(multiple)"
        case .z85InvalidCharacter(let offset, let byte):
            return "Z85: byte 0x\(String(byte, radix: 16)) at offset \(offset) is not in the Z85 alphabet"
        case .z85Overflow(let offset):
            return "Z85: the group at offset \(offset) encodes a value above 2^32-1"
        case .invalidCurveKey(let length):
            return "a CURVE key is 32 bytes or 40 Z85 characters, not \(length)"
        }
    }
}

/// Calls a libzmq function that returns `-1` on failure and turns the failure into
/// ``ZeroMQError/libzmq(function:errno:detail:)``.
///
/// `EINTR` is retried when `retryInterrupted` is true — right for calls that do not wait or
/// whose wait may simply start again (bind, connect, setsockopt, the rest of a multipart
/// message). Blocking receives and polls pass `false`: the caller gets ``ZeroMQError/isInterrupted``
/// and decides, instead of silently waiting a full timeout again.
@discardableResult
@inline(__always)
func call(
    _ function: String,
    detail: @autoclosure () -> String? = nil,
    retryInterrupted: Bool = true,
    _ body: () -> Int32
) throws(ZeroMQError) -> Int32 {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = zmq_errno()
        if code == EINTR && retryInterrupted { continue }
        throw ZeroMQError.libzmq(function: function, errno: code, detail: detail())
    }
}

/// Like ``call(_:detail:retryInterrupted:_:)``, but `EAGAIN` — "not now": a non-blocking
/// operation could not proceed, or a send/receive timeout expired — returns nil instead of
/// throwing.
@inline(__always)
func callUnlessAgain(
    _ function: String,
    detail: @autoclosure () -> String? = nil,
    retryInterrupted: Bool = true,
    _ body: () -> Int32
) throws(ZeroMQError) -> Int32? {
    while true {
        let result = body()
        if result != -1 { return result }
        let code = zmq_errno()
        if code == EINTR && retryInterrupted { continue }
        if code == EAGAIN { return nil }
        throw ZeroMQError.libzmq(function: function, errno: code, detail: detail())
    }
}
