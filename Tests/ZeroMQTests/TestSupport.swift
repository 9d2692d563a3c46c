import Foundation
import Testing
@testable import ZeroMQ

/// How long a test waits for a message that should arrive; generous so a loaded CI machine
/// does not fail, finite so a broken test never hangs.
let patience = 5_000

extension ZMQSocket {
    /// Binds to a free loopback TCP port and returns the resolved endpoint.
    func bindLoopback() throws -> String {
        try bind("tcp://127.0.0.1:*")
        return try #require(try lastEndpoint)
    }
}

/// Bytes of a UTF-8 string.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// A unique ipc:// endpoint in the temporary directory (short enough for sun_path).
func ipcEndpoint() -> (endpoint: String, path: String) {
    let path = "/tmp/zmq-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).ipc"
    return ("ipc://\(path)", path)
}

/// A thread-safe counter for free callbacks that run on libzmq's I/O threads.
final class Counter: @unchecked Sendable {  // invariant: `value` is only touched under `lock`
    private let lock = NSLock()
    private var count = 0

    func increment() {
        lock.lock()
        count += 1
        lock.unlock()
    }

    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return count
    }
}

/// Owns a buffer and counts its own deinit: proves libzmq released a shared frame exactly once.
final class TrackedBuffer: @unchecked Sendable {  // invariant: `bytes` is never mutated
    let bytes: UnsafeMutableRawBufferPointer
    let released: Counter

    init(copying source: [UInt8], released: Counter) {
        let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: source.count, alignment: 16)
        source.withUnsafeBytes { bytes.copyMemory(from: $0) }
        self.bytes = bytes
        self.released = released
    }

    deinit {
        bytes.deallocate()
        released.increment()
    }
}

/// Waits until `condition` holds, at most `milliseconds`; returns whether it held.
func eventually(within milliseconds: Int = patience, _ condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now.advanced(by: .milliseconds(milliseconds))
    while ContinuousClock.now < deadline {
        if condition() { return true }
        usleep(2_000)
    }
    return condition()
}

/// `count` bytes of a non-periodic-looking pattern, built fast even in debug builds: a seeded
/// block of 4099 bytes (prime, so it does not line up with page or buffer sizes), each copy
/// of it offset by its index.
func testPattern(count: Int, seed: UInt8 = 0) -> [UInt8] {
    let block = (0..<4099).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ ($0 >> 7) &+ Int(seed)) }
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        var offset = 0
        var copy = 0
        while offset < count {
            let length = min(block.count, count - offset)
            block.withUnsafeBytes {
                UnsafeMutableRawPointer(buffer.baseAddress! + offset).copyMemory(from: $0.baseAddress!, byteCount: length)
            }
            buffer[offset] = UInt8(truncatingIfNeeded: copy)  // make every block distinct
            offset += length
            copy += 1
        }
        initialized = count
    }
}

/// Whether two byte arrays are equal, compared with memcmp (fast in debug builds); on
/// failure it reports the first differing offset.
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else {
        Issue.record("lengths differ: \(a.count) vs \(b.count)")
        return false
    }
    let equal = a.isEmpty || a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
    if !equal, let first = a.indices.first(where: { a[$0] != b[$0] }) {
        Issue.record("bytes differ first at offset \(first): \(a[first]) vs \(b[first])")
    }
    return equal
}
