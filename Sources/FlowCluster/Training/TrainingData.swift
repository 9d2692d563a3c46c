import FlowData
import Flows

/// A dataset cut into training and validation rows, in the precision of the model.
///
/// Training rows are stored in the split's (seeded, shuffled) order; the `BatchPlan` indexes
/// positions in this list. Every way of training — one process, a local cluster, a coordinator —
/// prepares its data through this type, so they all see the same rows in the same places.
public struct TrainingData<Scalar: FlowScalar>: Sendable {
    /// Columns per row.
    public let dimension: Int
    /// `trainCount × dimension`, row-major, in split order.
    public let trainRows: [Scalar]
    /// `validationCount × dimension`, row-major.
    public let validationRows: [Scalar]
    /// Original row numbers (0-based) of the training rows, in split order.
    public let trainIndices: [Int]
    /// Original row numbers of the validation rows.
    public let validationIndices: [Int]

    /// Number of training rows.
    public var trainCount: Int { trainIndices.count }
    /// Number of validation rows.
    public var validationCount: Int { validationIndices.count }

    /// Splits `table` with `TrainValidationSplit(rows:validationFraction:seed:)`.
    public init(table: Table, validationFraction: Double, seed: UInt64) throws {
        guard table.columns >= 2 else {
            throw TrainingError.invalidData("a flow needs at least 2 columns, found \(table.columns)")
        }
        let split = try TrainValidationSplit(rows: table.rows, validationFraction: validationFraction, seed: seed)
        guard !split.train.isEmpty else { throw TrainingError.invalidData("no training rows left after the validation split") }
        dimension = table.columns
        trainIndices = split.train
        validationIndices = split.validation
        trainRows = table.gather(rows: split.train).values.map { Scalar($0) }
        validationRows = table.gather(rows: split.validation).values.map { Scalar($0) }
    }

    /// The standardisation fitted on the training rows.
    public func fittedStandardization() throws -> Standardization<Scalar> {
        try Standardization<Scalar>.fit(trainRows, rows: trainCount, dimension: dimension)
    }

    /// The standardisation fitted on the training rows, and the columns that are constant there
    /// (0-based; each was given σ = 1).
    public func fittedStandardizationReportingConstantColumns() throws -> (standardization: Standardization<Scalar>, constantColumns: [Int]) {
        let fitted = try Standardization<Scalar>.fitReportingConstantColumns(trainRows, rows: trainCount, dimension: dimension)
        return (fitted.standardization, fitted.constantColumns)
    }
}
