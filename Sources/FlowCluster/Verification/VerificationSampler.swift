/// Which items of a job (training micro-batches, scoring chunks) are computed twice and compared
/// bit for bit under `--verify-fraction`: a seeded hash of the item's index mapped to [0, 1)
/// falls below the fraction. A pure function of (seed, index), so the same items are checked
/// whatever the workers, the failures or a resume. One sampler for both machines.
public struct VerificationSampler: Sendable, Equatable {
    /// The share of items checked (0: none, 1: all).
    public let fraction: Double
    /// The job's seed (training: the plan's seed; scoring: 0).
    public let seed: UInt64

    public init(fraction: Double, seed: UInt64) {
        self.fraction = fraction
        self.seed = seed
    }

    /// Whether item `index` is checked.
    public func contains(_ index: Int) -> Bool {
        guard fraction > 0 else { return false }
        if fraction >= 1 { return true }
        // SplitMix64's finaliser over the seed and the index.
        var z = seed ^ 0x7665_7269_6679 &+ UInt64(truncatingIfNeeded: index) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / 9_007_199_254_740_992 < fraction
    }
}
