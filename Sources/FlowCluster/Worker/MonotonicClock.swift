import Foundation

/// Seconds on a monotonic clock (`CLOCK_MONOTONIC`), for durations that a change of the wall
/// clock must not distort (a worker's compute time).
enum MonotonicClock {
    static func seconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }
}
