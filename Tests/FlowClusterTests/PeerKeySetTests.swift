import Foundation
import Testing
@testable import FlowCluster

/// The keys a worker's peer socket admits (`sync=sharded` under CURVE): a key of the current
/// roster at once, a key not yet seen after waiting for a roster that lists it, and a key that
/// left the roster at once as a refusal — its wait would hold up every other handshake, since
/// the ZAP handler answers one request at a time.
struct PeerKeySetTests {
    @Test func aDepartedKeyIsRefusedAtOnceAndAFutureOneIsWaitedFor() {
        let set = PeerKeySet()
        set.set(["a", "b"])
        #expect(set.waitUntilContains("a", seconds: 0))
        set.set(["b"])
        var started = Date()
        #expect(!set.waitUntilContains("a", seconds: 5))
        #expect(Date().timeIntervalSince(started) < 1, "a departed key was waited for")
        // A key never seen is waited for, and admitted when a roster lists it.
        started = Date()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { set.set(["b", "c"]) }
        #expect(set.waitUntilContains("c", seconds: 5))
        #expect(Date().timeIntervalSince(started) < 4)
        // A stranger is refused after the wait.
        started = Date()
        #expect(!set.waitUntilContains("z", seconds: 0.3))
        #expect(Date().timeIntervalSince(started) >= 0.25)
        // A departed key that comes back in a later roster (a worker that rejoined) is admitted.
        set.set(["a", "b", "c"])
        #expect(set.waitUntilContains("a", seconds: 0))
        set.set(["b"])
        #expect(!set.waitUntilContains("c", seconds: 5) && !set.waitUntilContains("a", seconds: 5))
    }
}
