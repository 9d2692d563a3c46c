import CZeroMQ

/// One frame of an outgoing multipart message, either copied into libzmq or shared with it
/// without a copy.
///
/// **Copied** frames (``init(copying:)``, and small arrays given to ``init(_:)``) are copied
/// into a libzmq message during `send`; the array is free again when `send` returns.
///
/// **Shared** frames hand libzmq a pointer to memory the frame keeps alive, through
/// `zmq_msg_init_data` with a free callback: the memory's owner is retained (`Unmanaged`) when
/// the frame is sent and released exactly once, by libzmq, when its last reference to the
/// message is gone — after the I/O thread has written the bytes to the wire (tcp, ipc), after
/// the receiver has dropped it (inproc), or immediately when the send fails or the message is
/// discarded by `close`/linger. That release may happen on a libzmq I/O thread, after `send`
/// has returned; until then the bytes must not change, which the initialisers guarantee:
///
/// - ``init(sharing:)-([UInt8])`` and ``init(sharing:)-(ContiguousArray<UInt8>)`` keep a
///   reference to the array's storage. Swift arrays are values: mutating your copy afterwards
///   copies it first, so libzmq's view never changes. (This relies on a native array's element
///   storage staying at one address while a reference to it is held, which holds for every
///   `[UInt8]` on Linux and for every native array on Darwin.)
/// - ``init(byteCount:initializingWith:)`` allocates the bytes and lets you write them once —
///   the way to encode a large message straight into the buffer libzmq sends.
/// - ``init(unsafeBytes:owner:)`` shares memory you manage; you promise it stays valid and
///   unchanged while `owner` is alive.
///
/// A frame can be sent several times; every send takes its own reference to the owner.
public struct ZMQFrame: Sendable {
    /// Arrays at least this long given to ``init(_:)`` are shared rather than copied
    /// (32 KiB: below it a copy costs less than the bookkeeping).
    public static let sharingThreshold = 32 * 1024

    enum Payload: Sendable {
        case copied([UInt8])
        case shared(FrameOwner)
    }

    let payload: Payload

    /// A frame that shares `bytes` when it is at least ``sharingThreshold`` long and copies it
    /// otherwise.
    public init(_ bytes: [UInt8]) {
        payload = bytes.count >= Self.sharingThreshold ? .shared(FrameOwner(.array(bytes))) : .copied(bytes)
    }

    /// A frame whose bytes libzmq copies when it is sent.
    public init(copying bytes: [UInt8]) {
        payload = .copied(bytes)
    }

    /// A frame that shares the storage of `bytes` with libzmq: sending copies nothing.
    public init(sharing bytes: [UInt8]) {
        payload = .shared(FrameOwner(.array(bytes)))
    }

    /// A frame that shares the storage of `bytes` with libzmq: sending copies nothing.
    public init(sharing bytes: ContiguousArray<UInt8>) {
        payload = .shared(FrameOwner(.contiguousArray(bytes)))
    }

    /// A frame of `byteCount` bytes, allocated here and filled by `initialize` (which must
    /// write every byte; the memory starts zeroed). Sending copies nothing; the memory is
    /// freed when libzmq and every copy of the frame are done with it.
    public init(
        byteCount: Int,
        initializingWith initialize: (UnsafeMutableRawBufferPointer) throws -> Void
    ) rethrows {
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(byteCount, 0), alignment: 16)
        memory.initializeMemory(as: UInt8.self, repeating: 0)
        let owner = FrameOwner(.allocated(memory))
        try initialize(memory)
        payload = .shared(owner)
    }

    /// A frame that shares memory managed by the caller.
    ///
    /// - Parameters:
    ///   - bytes: the frame's bytes; they must stay valid and unchanged while `owner` is alive.
    ///   - owner: the object that keeps `bytes` alive. It is retained until libzmq is done,
    ///     then released — possibly on a libzmq I/O thread, hence `Sendable`.
    public init(unsafeBytes bytes: UnsafeRawBufferPointer, owner: AnyObject & Sendable) {
        payload = .shared(FrameOwner(.external(owner, bytes)))
    }

    /// The frame's length in bytes.
    public var count: Int {
        switch payload {
        case .copied(let bytes): return bytes.count
        case .shared(let owner): return owner.count
        }
    }

    /// Whether sending the frame copies nothing.
    public var isShared: Bool {
        if case .shared = payload { return true }
        return false
    }
}

/// Keeps the memory of a shared frame alive until libzmq's free callback releases it.
///
/// `@unchecked Sendable` invariant: the storage is never mutated after `init` (arrays are held
/// as immutable `let` values, allocated memory is written only by the initialiser before the
/// owner is shared, external owners are `Sendable`), so releasing it on an I/O thread is safe.
final class FrameOwner: @unchecked Sendable {
    enum Storage {
        case array([UInt8])
        case contiguousArray(ContiguousArray<UInt8>)
        case allocated(UnsafeMutableRawBufferPointer)
        case external(AnyObject & Sendable, UnsafeRawBufferPointer)
    }

    let storage: Storage

    init(_ storage: Storage) {
        self.storage = storage
    }

    deinit {
        if case .allocated(let memory) = storage { memory.deallocate() }
    }

    var count: Int {
        switch storage {
        case .array(let bytes): return bytes.count
        case .contiguousArray(let bytes): return bytes.count
        case .allocated(let memory): return memory.count
        case .external(_, let bytes): return bytes.count
        }
    }

    /// Initialises `message` to point at the owner's bytes without copying them, retaining
    /// the owner for libzmq; `releaseFrameOwner` balances the retain. Empty frames need no
    /// owner and are plain empty messages.
    func initialize(_ message: UnsafeMutablePointer<zmq_msg_t>) throws {
        let base: UnsafeRawPointer?
        switch storage {
        case .array(let bytes): base = bytes.withUnsafeBytes { $0.baseAddress }
        case .contiguousArray(let bytes): base = bytes.withUnsafeBytes { $0.baseAddress }
        case .allocated(let memory): base = UnsafeRawPointer(memory.baseAddress)
        case .external(_, let bytes): base = bytes.baseAddress
        }
        guard let base, count > 0 else {
            try call("zmq_msg_init_size") { zmq_msg_init_size(message, 0) }
            return
        }
        let hint = Unmanaged.passRetained(self).toOpaque()
        do {
            try call("zmq_msg_init_data") {
                zmq_msg_init_data(message, UnsafeMutableRawPointer(mutating: base), count, releaseFrameOwner, hint)
            }
        } catch {
            // libzmq did not take the message, so it will never call the free function.
            Unmanaged<FrameOwner>.fromOpaque(hint).release()
            throw error
        }
    }
}

/// libzmq's free function for shared frames: drops the reference taken in
/// `FrameOwner.initialize`. Called exactly once per initialised message, on any thread.
private func releaseFrameOwner(_ data: UnsafeMutableRawPointer?, _ hint: UnsafeMutableRawPointer?) {
    guard let hint else { return }
    Unmanaged<FrameOwner>.fromOpaque(hint).release()
}
