/// The `stream` numbers FlowData passes to `SeededGenerator(seed:stream:)`, one per purpose,
/// so that independent random choices made from one user seed never share a stream.
/// Changing any of these changes generated data, splits or batch plans: they are part of the
/// reproducibility contract (documented in `docs/data.md`).
enum RandomStream {
    static let moonsNoise: UInt64 = 0xDA7A_0101
    static let moonsShuffle: UInt64 = 0xDA7A_0102
    static let gaussiansCenter: UInt64 = 0xDA7A_0201
    static let gaussiansNoise: UInt64 = 0xDA7A_0202
    static let checkerboardX1: UInt64 = 0xDA7A_0301
    static let checkerboardX2: UInt64 = 0xDA7A_0302
    static let checkerboardSquare: UInt64 = 0xDA7A_0303
    static let ringsShuffle: UInt64 = 0xDA7A_0401
    static let ringsNoise: UInt64 = 0xDA7A_0402
    static let mixtureParameters: UInt64 = 0xDA7A_0501
    static let mixtureComponent: UInt64 = 0xDA7A_0502
    static let mixtureNoise: UInt64 = 0xDA7A_0503
    static let split: UInt64 = 0xDA7A_0601

    /// The stream of shard `k`'s permutation in epoch `e` of a ``BatchPlan``:
    /// `(k + 1) · 2^32 + e` (shards and epochs below 2^31 each).
    static func shardEpoch(shard k: Int, epoch e: Int) -> UInt64 {
        (UInt64(k + 1) << 32) | UInt64(UInt32(truncatingIfNeeded: e))
    }
}
