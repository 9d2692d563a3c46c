import CZeroMQ
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One authentication request of the ZeroMQ Authentication Protocol (ZAP, RFC 27/ZAP), as
/// libzmq sends it to the handler of a socket's context when a peer completes a security
/// handshake on a socket that has a ZAP domain.
public struct ZAPRequest: Sendable, Equatable {
    /// libzmq's id of the request, echoed in the reply.
    public var requestID: [UInt8]
    /// The socket's `ZMQ_ZAP_DOMAIN`.
    public var domain: String
    /// The peer's address as libzmq sees it (e.g. `127.0.0.1`), empty for IPC.
    public var address: String
    /// The peer's routing id, when it set one.
    public var routingID: [UInt8]
    /// `NULL`, `PLAIN` or `CURVE`.
    public var mechanism: String
    /// The mechanism's credentials: for CURVE one frame, the client's 32-byte public key.
    public var credentials: [[UInt8]]

    /// The client's long-term public key of a CURVE request (nil for other mechanisms or a
    /// malformed credential).
    public var curveKey: CurveKey? {
        guard mechanism == "CURVE", credentials.count == 1 else { return nil }
        return try? CurveKey(bytes: credentials[0])
    }
}

/// What a ZAP handler answers.
public enum ZAPDecision: Sendable, Equatable {
    /// Status 200: the connection goes on; `userID` becomes the `User-Id` property of the
    /// peer's messages.
    case allow(userID: String)
    /// Status 400: libzmq sends the client an ERROR command and closes the connection.
    case deny(reason: String)
}

/// A ZAP handler (RFC 27): a REP socket bound at `inproc://zeromq.zap.01` in one context, on a
/// thread of its own, answering every authentication request of that context's sockets with
/// the decision of a closure.
///
/// libzmq consults the handler of the socket's **own context**; a handler must therefore be
/// created in the context of the socket it protects, and be running before that socket
/// accepts connections. ``start(timeout:)`` returns only once a request sent through that
/// context has been answered (a probe round trip), so a caller that binds after `start`
/// returned knows that the handler is ready. Combine it with
/// ``ZMQSocket/setZAPEnforceDomain(_:)``: if the handler ever stops, connections then fail
/// instead of being admitted unauthenticated.
///
/// `@unchecked Sendable` invariant: the REP socket is created, used and closed only by the
/// handler's thread; the Swift state shared with other threads (`state`, `answered`,
/// `bindError`) is read and written only under `lock`.
public final class ZAPHandler: @unchecked Sendable {
    /// The endpoint libzmq sends ZAP requests to, in every context.
    public static let endpoint = "inproc://zeromq.zap.01"
    /// The request id of the readiness probe (answered without consulting the decision).
    static let probeID: [UInt8] = Array("tributary-zap-probe".utf8)

    /// The context whose sockets this handler authenticates.
    public let context: ZMQContext
    private let decide: @Sendable (ZAPRequest) -> ZAPDecision
    private let lock = HandleLock()
    private var state: State = .idle
    private var answered = 0
    private var bindError: Error?
    private let exited = DispatchSemaphore(value: 0)

    private enum State { case idle, running, stopping, stopped }

    /// A handler for the sockets of `context`; `decide` is called on the handler's thread for
    /// every request (never for the readiness probe) and must not block for long: connections
    /// wait for its answer.
    public init(context: ZMQContext, decide: @escaping @Sendable (ZAPRequest) -> ZAPDecision) {
        self.context = context
        self.decide = decide
    }

    deinit {
        stop()
    }

    /// Whether the handler's thread is answering requests.
    public var isRunning: Bool { lock.withLock { state == .running } }

    /// Requests answered so far (the probe not counted).
    public var requestsAnswered: Int { lock.withLock { answered } }

    /// Starts the handler's thread and waits until it has bound the ZAP endpoint and answered a
    /// probe sent through the context.
    ///
    /// - Throws: the bind error (e.g. `EADDRINUSE` when the context already has a ZAP handler),
    ///   or ``ZAPHandlerError/notReady(seconds:)`` when no answer came within `timeout` seconds —
    ///   in both cases the caller must not accept connections: without a handler libzmq 4.3
    ///   admits any CURVE client that knows the server key.
    public func start(timeout: Double = 5) throws {
        try lock.withLock {
            guard state == .idle else { throw ZAPHandlerError.alreadyStarted }
            state = .running
        }
        let bound = DispatchSemaphore(value: 0)
        let thread = Thread { [self] in
            self.serve(bound: bound)
            self.exited.signal()
        }
        thread.name = "zap-handler"
        thread.start()
        bound.wait()
        if let error = lock.withLock({ bindError }) {
            throw error
        }
        do {
            try probe(timeout: timeout)
        } catch {
            stop()
            throw error
        }
    }

    /// Stops the thread and closes its socket (within about 100 ms). Idempotent.
    public func stop() {
        let wasRunning: Bool = lock.withLock {
            guard state == .running else {
                if state == .idle { state = .stopped }
                return false
            }
            state = .stopping
            return true
        }
        if wasRunning { exited.wait() }
    }

    /// Sends a request through the context and waits for the answer.
    private func probe(timeout: Double) throws {
        let client = try ZMQSocket(context: context, type: .req)
        defer { client.close() }
        try client.connect(Self.endpoint)
        let request: [[UInt8]] = [Array("1.0".utf8), Self.probeID, [], [], [], Array("NULL".utf8)]
        guard try client.send(request, dontWait: true) else {
            throw ZAPHandlerError.notReady(seconds: timeout)
        }
        guard let reply = try client.receive(timeoutMilliseconds: Int(timeout * 1000), maxFrames: 8),
              reply.count == 6, reply[1] == Self.probeID, reply[2] == Array("200".utf8)
        else {
            throw ZAPHandlerError.notReady(seconds: timeout)
        }
    }

    private func serve(bound: DispatchSemaphore) {
        let socket: ZMQSocket
        do {
            socket = try ZMQSocket(context: context, type: .rep)
            try socket.bind(Self.endpoint)
        } catch {
            lock.withLock {
                bindError = error
                state = .stopped
            }
            bound.signal()
            return
        }
        bound.signal()
        defer {
            socket.close()
            lock.withLock { state = .stopped }
        }
        while lock.withLock({ state == .running }) {
            let frames: [[UInt8]]
            do {
                guard let received = try socket.receive(timeoutMilliseconds: 100, maxFrames: 16) else { continue }
                frames = received
            } catch let error as ZeroMQError where error.isInterrupted {
                continue
            } catch {
                return  // the context is shutting down, or the socket is broken: fail closed
            }
            let reply = answer(frames)
            do {
                try socket.send(reply)
            } catch {
                return
            }
        }
    }

    /// The reply to one request: version, request id, status code, status text, user id,
    /// metadata.
    private func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
        let requestID = frames.count > 1 ? frames[1] : []
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestID, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, frames[0] == Array("1.0".utf8) else {
            return reply("500", "malformed ZAP request")
        }
        if requestID == Self.probeID {
            return reply("200", "ready")
        }
        let request = ZAPRequest(
            requestID: requestID, domain: String(decoding: frames[2], as: UTF8.self),
            address: String(decoding: frames[3], as: UTF8.self), routingID: frames[4],
            mechanism: String(decoding: frames[5], as: UTF8.self), credentials: Array(frames.dropFirst(6)))
        let decision = decide(request)
        lock.withLock { answered += 1 }
        switch decision {
        case .allow(let user): return reply("200", "OK", user: user)
        case .deny(let reason): return reply("400", String(reason.prefix(200)))
        }
    }
}

/// Why a ``ZAPHandler`` could not start.
public enum ZAPHandlerError: Error, CustomStringConvertible, Equatable, Sendable {
    /// ``ZAPHandler/start(timeout:)`` was called twice.
    case alreadyStarted
    /// No answer to the readiness probe within `seconds`.
    case notReady(seconds: Double)

    public var description: String {
        switch self {
        case .alreadyStarted: return "the ZAP handler was already started"
        case .notReady(let seconds):
            return "the ZAP handler did not answer within \(seconds) s (another socket holds \(ZAPHandler.endpoint) in this context?)"
        }
    }
}
