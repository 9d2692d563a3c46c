import Foundation

/// A small, fast, seedable pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// Every random choice Tributary makes — parameter initialisation, data generation, shuffles,
/// train/validation splits, base-noise for sampling — draws from this generator, so that the
/// same seed gives the same bits on every machine and every Swift version. (The standard
/// library's `SystemRandomNumberGenerator` is not seedable, and its `shuffle(using:)` is not
/// promised to stay the same algorithm across releases, so neither is used for anything that
/// must be reproducible.)
///
/// The stream is a pure function of the 64-bit seed and of an optional `stream` number, which
/// derives independent generators for independent purposes (`SeededGenerator(seed: s, stream: 3)`).
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64

    /// Creates a generator whose output depends only on `seed` and `stream`.
    ///
    /// - Parameters:
    ///   - seed: the user's seed.
    ///   - stream: a purpose-specific number; different streams of one seed are independent
    ///     for all practical purposes (they are seeded through SplitMix64 from a mixed key).
    public init(seed: UInt64, stream: UInt64 = 0) {
        var sm = SplitMix64(state: seed ^ (stream &* 0x9E37_79B9_7F4A_7C15) ^ (stream << 32 | stream >> 32))
        if stream != 0 { _ = sm.next() }
        s0 = sm.next()
        s1 = sm.next()
        s2 = sm.next()
        s3 = sm.next()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }  // the all-zero state is the one fixed point
    }

    /// The next 64 uniformly distributed bits.
    @inlinable @inline(__always)
    public mutating func next() -> UInt64 {
        nextBits()
    }

    @usableFromInline
    mutating func nextBits() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inline(__always)
    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 &- k))
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    public mutating func uniform() -> Double {
        Double(nextBits() >> 11) * 0x1.0p-53
    }

    /// A uniform `Double` in [low, high).
    public mutating func uniform(_ low: Double, _ high: Double) -> Double {
        low + (high - low) * uniform()
    }

    /// A standard normal draw (Box–Muller; each call consumes exactly two uniforms, so the
    /// position in the stream never depends on earlier draws).
    public mutating func normal() -> Double {
        // 1 - u is in (0, 1], so the logarithm is finite.
        let u1 = 1.0 - uniform()
        let u2 = uniform()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }

    /// An integer uniformly distributed in `0..<bound` (Lemire's nearly-divisionless method,
    /// unbiased). `bound` must be positive.
    public mutating func integer(below bound: Int) -> Int {
        precondition(bound > 0, "integer(below:) needs a positive bound")
        let b = UInt64(bound)
        var m = nextBits().multipliedFullWidth(by: b)
        if m.low < b {
            let threshold = (0 &- b) % b
            while m.low < threshold {
                m = nextBits().multipliedFullWidth(by: b)
            }
        }
        return Int(m.high)
    }

    /// Shuffles `values` in place with the Fisher–Yates algorithm (a fixed algorithm, so the
    /// permutation for a given seed never changes).
    public mutating func shuffle<T>(_ values: inout [T]) {
        var i = values.count - 1
        while i > 0 {
            let j = integer(below: i + 1)
            values.swapAt(i, j)
            i -= 1
        }
    }

    /// A random permutation of `0..<n` (the identity shuffled by `shuffle(_:)`).
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        shuffle(&p)
        return p
    }
}

/// SplitMix64, used only to expand a 64-bit seed into a full xoshiro state.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
