import CZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A libzmq context: the I/O threads and the bookkeeping behind a set of sockets.
///
/// One context per process is usual. Sockets keep their context alive, so the context is
/// terminated (`zmq_ctx_term`) only after every socket created from it has been closed — and
/// because ``ZMQSocket`` starts with linger 0, terminating never waits for unsent messages
/// unless you raised a socket's linger yourself.
///
/// `@unchecked Sendable` invariant: libzmq contexts are thread-safe (every `zmq_ctx_*` call
/// and `zmq_socket` may be made from any thread), and the one piece of Swift state, the
/// handle, is read and cleared only under `lock`.
public final class ZMQContext: @unchecked Sendable {
    private let lock = HandleLock()
    private var handle: UnsafeMutableRawPointer?

    /// Creates a context with `ioThreads` I/O threads (libzmq's default is 1; one thread moves
    /// roughly a gigabyte per second) and room for `maxSockets` sockets (default 1023).
    public init(ioThreads: Int = 1, maxSockets: Int? = nil) throws {
        guard let handle = zmq_ctx_new() else {
            throw ZeroMQError.libzmq(function: "zmq_ctx_new", errno: zmq_errno(), detail: nil)
        }
        do {
            try Self.set(handle, ZMQ_IO_THREADS, "ioThreads", ioThreads)
            if let maxSockets {
                try Self.set(handle, ZMQ_MAX_SOCKETS, "maxSockets", maxSockets)
            }
        } catch {
            zmq_ctx_term(handle)
            throw error
        }
        self.handle = handle
    }

    deinit {
        terminate()
    }

    /// The number of I/O threads.
    public var ioThreads: Int {
        get throws { try get(ZMQ_IO_THREADS) }
    }

    /// The largest number of sockets the context allows at once.
    public var maxSockets: Int {
        get throws { try get(ZMQ_MAX_SOCKETS) }
    }

    /// Shuts the context down (`zmq_ctx_shutdown`) without terminating it: every blocking call
    /// on its sockets, in any thread, returns an error with ``ZeroMQError/isTerminated``, and
    /// new sockets cannot be created. Use it to stop a thread that is blocked in a receive or a
    /// poll; the sockets must still be closed. Safe to call more than once and from any thread.
    public func shutdown() {
        lock.withLock {
            if let handle { zmq_ctx_shutdown(handle) }
        }
    }

    /// Terminates the context (`zmq_ctx_term`), releasing its threads. Idempotent; done by
    /// `deinit` if not called.
    ///
    /// This blocks until every socket of the context is closed, so call it only after closing
    /// them (sockets hold a reference to their context, so `deinit` always runs after that).
    /// It then returns within the largest linger of the closed sockets — at once with the
    /// default linger 0. Afterwards, creating a socket throws ``ZeroMQError/isTerminated``.
    public func terminate() {
        let taken: UnsafeMutableRawPointer? = lock.withLock {
            defer { handle = nil }
            return handle
        }
        guard let taken else { return }
        // EINTR: "termination was interrupted by a signal. It can be restarted."
        while zmq_ctx_term(taken) == -1 && zmq_errno() == EINTR {}
    }

    /// Creates a libzmq socket in this context; used by ``ZMQSocket/init(context:type:)``.
    func makeSocket(_ type: Int32) throws -> UnsafeMutableRawPointer {
        try lock.withLock {
            guard let handle else {
                throw ZeroMQError.libzmq(
                    function: "zmq_socket", errno: ZeroMQError.ETERM, detail: "context terminated")
            }
            guard let socket = zmq_socket(handle, type) else {
                throw ZeroMQError.libzmq(function: "zmq_socket", errno: zmq_errno(), detail: nil)
            }
            return socket
        }
    }

    private func get(_ option: Int32) throws -> Int {
        try lock.withLock {
            guard let handle else {
                throw ZeroMQError.libzmq(
                    function: "zmq_ctx_get", errno: ZeroMQError.ETERM, detail: "context terminated")
            }
            return Int(try call("zmq_ctx_get") { zmq_ctx_get(handle, option) })
        }
    }

    private static func set(
        _ handle: UnsafeMutableRawPointer, _ option: Int32, _ name: String, _ value: Int
    ) throws {
        guard let value = Int32(exactly: value), value >= 0 else {
            throw ZeroMQError.outOfRange(name: name, value: Int64(value), range: 0...Int64(Int32.max))
        }
        try call("zmq_ctx_set", detail: name) { zmq_ctx_set(handle, option, value) }
    }
}

/// A plain pthread mutex (the package still targets macOS 14, where `Synchronization.Mutex`
/// is unavailable).
///
/// `@unchecked Sendable` invariant: the mutex is allocated once, never moved, and only used
/// through `pthread_mutex_lock`/`unlock`, which are thread-safe.
final class HandleLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
