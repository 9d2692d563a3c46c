import FlowRandom

/// A seeded split of the rows `0..<rows` into a training list and a validation list.
///
/// The rows are permuted with `SeededGenerator(seed: seed, stream: 0xDA7A_0601)` (Fisher–Yates);
/// the first ``validationCount(rows:validationFraction:)`` rows of the permutation are the
/// validation rows and the rest the training rows, both kept in permuted order.
public struct TrainValidationSplit: Sendable, Equatable {
    /// Training row indices, in permuted order.
    public let train: [Int]
    /// Validation row indices, in permuted order.
    public let validation: [Int]

    /// Splits `rows` rows.
    ///
    /// - Throws: ``DataError/badSplit(rows:validationFraction:reason:)`` if `rows` is negative
    ///   or `validationFraction` is not in [0, 1).
    public init(rows: Int, validationFraction: Double, seed: UInt64) throws(DataError) {
        guard rows >= 0 else {
            throw DataError.badSplit(rows: rows, validationFraction: validationFraction,
                                     reason: "the row count is negative")
        }
        guard validationFraction >= 0 && validationFraction < 1 else {
            throw DataError.badSplit(rows: rows, validationFraction: validationFraction,
                                     reason: "the validation fraction must be in [0, 1)")
        }
        var generator = SeededGenerator(seed: seed, stream: RandomStream.split)
        let permutation = generator.permutation(rows)
        let count = Self.validationCount(rows: rows, validationFraction: validationFraction)
        validation = Array(permutation[..<count])
        train = Array(permutation[count...])
    }

    /// The number of validation rows: `rows · fraction` rounded to the nearest integer (halves
    /// away from zero), but at least 1 when `fraction > 0` and `rows ≥ 2`, and at most
    /// `rows − 1` so that at least one training row remains.
    public static func validationCount(rows: Int, validationFraction fraction: Double) -> Int {
        guard rows > 0, fraction > 0 else { return 0 }
        var count = Int((Double(rows) * fraction).rounded(.toNearestOrAwayFromZero))
        if rows >= 2 { count = max(count, 1) }
        return min(count, rows - 1)
    }
}
