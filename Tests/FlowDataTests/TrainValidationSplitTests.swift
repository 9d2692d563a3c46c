import Testing
import FlowData

struct TrainValidationSplitTests {
    @Test(arguments: [
        (10, 0.1, 1), (10, 0.25, 3), (10, 0.0, 0), (2, 0.01, 1), (1, 0.5, 0), (0, 0.5, 0),
        (10, 0.99, 9), (1000, 0.1, 100), (1000, 0.0005, 1), (7, 0.5, 4),
    ])
    func validationCount(rows: Int, fraction: Double, expected: Int) throws {
        #expect(TrainValidationSplit.validationCount(rows: rows, validationFraction: fraction) == expected)
        let split = try TrainValidationSplit(rows: rows, validationFraction: fraction, seed: 1)
        #expect(split.validation.count == expected)
        #expect(split.train.count == rows - expected)
        #expect((split.train + split.validation).sorted() == Array(0..<rows))
    }

    @Test func deterministicAndSeedDependent() throws {
        let a = try TrainValidationSplit(rows: 1000, validationFraction: 0.2, seed: 42)
        #expect(a == (try TrainValidationSplit(rows: 1000, validationFraction: 0.2, seed: 42)))
        #expect(a.validation != (try TrainValidationSplit(rows: 1000, validationFraction: 0.2, seed: 43)).validation)
        // A permutation, not the identity.
        #expect(a.validation + a.train != Array(0..<1000))
        // The same seed with another fraction cuts the same permutation at another place.
        let b = try TrainValidationSplit(rows: 1000, validationFraction: 0.1, seed: 42)
        #expect(b.validation + b.train == a.validation + a.train)
    }

    @Test(arguments: [1.0, -0.1, 1.5, Double.nan, Double.infinity])
    func badFractions(fraction: Double) {
        let error = #expect(throws: DataError.self) {
            _ = try TrainValidationSplit(rows: 10, validationFraction: fraction, seed: 0)
        }
        #expect(error == .badSplit(rows: 10, validationFraction: fraction,
                                   reason: "the validation fraction must be in [0, 1)") || fraction.isNaN)
        #expect(error?.description
                == "cannot split 10 rows with validation fraction \(fraction): the validation fraction must be in [0, 1)")
    }

    @Test func negativeRowCount() {
        #expect(throws: DataError.badSplit(rows: -1, validationFraction: 0.1, reason: "the row count is negative")) {
            _ = try TrainValidationSplit(rows: -1, validationFraction: 0.1, seed: 0)
        }
    }
}
