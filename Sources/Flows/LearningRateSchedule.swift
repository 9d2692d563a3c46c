/// The learning rate of each optimiser step: a linear warm-up, then constant or a cosine decay.
///
/// For the update taken at 0-based step `t` (the first update is `t = 0`), with base rate `lr`,
/// `W` warm-up steps, `T` total steps and floor `lr_min`:
///
///     t < W:                  lr_t = lr · ((t + 1) / W)
///     t ≥ W, constant:        lr_t = lr
///     t ≥ W, cosine:          lr_t = lr_min + (lr − lr_min) · (1 + cos(π · (t − W) / (T − W))) / 2
///
/// so the warm-up climbs from `lr/W` to `lr` at step `W − 1`, and the cosine starts at `lr` and
/// reaches `lr_min` at `t = T` (one step after the last; PyTorch's `CosineAnnealingLR` with
/// `T_max = T − W` stepped once per update after the warm-up).
///
/// The rate is a pure function of the schedule and `t`, computed in `Double` with
/// ``cosineOfPiTimes(_:)`` (a fixed polynomial, no libm), so the coordinator, a worker on another
/// host and single-process training all compute the same bits.
public struct LearningRateSchedule: Sendable, Equatable, Hashable, Codable {
    /// The shape after the warm-up.
    public enum Kind: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
        /// `lr` for every step after the warm-up.
        case constant
        /// Half a cosine from `lr` down to the floor over the steps after the warm-up.
        case cosine
    }

    /// The shape after the warm-up.
    public var kind: Kind
    /// The base (peak) learning rate `lr`, finite and > 0.
    public var baseRate: Double
    /// Warm-up steps `W` (0: none).
    public var warmupSteps: Int
    /// Total steps `T` of the run (the cosine's length is `T − W`).
    public var totalSteps: Int
    /// The cosine's floor `lr_min`, in `[0, lr]` (ignored by `constant`).
    public var minimumRate: Double

    /// A schedule; the defaults give a constant `baseRate`.
    public init(kind: Kind = .constant, baseRate: Double, warmupSteps: Int = 0, totalSteps: Int = 0, minimumRate: Double = 0) {
        self.kind = kind
        self.baseRate = baseRate
        self.warmupSteps = warmupSteps
        self.totalSteps = totalSteps
        self.minimumRate = minimumRate
    }

    /// Whether every step gets `baseRate` (no warm-up, constant): the plain optimiser.
    public var isConstant: Bool { kind == .constant && warmupSteps == 0 }

    /// Whether the rates depend on the total step count (a cosine does; a constant rate with or
    /// without warm-up does not), so that a run may not be extended on resume.
    public var dependsOnTotalSteps: Bool { kind == .cosine }

    /// The rate of the update at 0-based step `t` (see the type's formula). Steps at or beyond
    /// `T` get the floor.
    public func rate(atStep t: Int) -> Double {
        if t < warmupSteps {
            return baseRate * (Double(t + 1) / Double(warmupSteps))
        }
        switch kind {
        case .constant:
            return baseRate
        case .cosine:
            let length = totalSteps - warmupSteps
            guard length > 0, t - warmupSteps < length else { return minimumRate }
            let progress = Double(t - warmupSteps) / Double(length)
            return minimumRate + (baseRate - minimumRate) * (1 + Self.cosineOfPiTimes(progress)) / 2
        }
    }

    /// `cos(π·x)` for `x` in `[0, 1]`, to within a few ulps, as a fixed sequence of `Double`
    /// operations (Taylor series of degree 22 on `[0, π/2]` and the reflection
    /// `cos(π·x) = −cos(π·(1 − x))`), so that every platform computes the same bits.
    public static func cosineOfPiTimes(_ x: Double) -> Double {
        precondition(x >= 0 && x <= 1, "cosineOfPiTimes takes x in [0, 1], found \(x)")
        if x > 0.5 { return -cosineOfPiTimes(1 - x) }
        let y = Double.pi * x
        let y2 = y * y
        // Horner on cos(y) = Σ (−1)^k y^(2k) / (2k)!, k = 0…11: the last term is below 2^-60 for y ≤ π/2.
        var sum = 1.0
        for k in stride(from: 11, through: 1, by: -1) {
            sum = 1 - y2 / Double((2 * k - 1) * (2 * k)) * sum
        }
        return sum
    }
}
