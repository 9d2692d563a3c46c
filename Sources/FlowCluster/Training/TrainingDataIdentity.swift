import Flows

/// What the training data of a run was, recorded in its checkpoints so that `--resume` refuses
/// other data: the options that shape the rows and a digest of the training rows themselves.
///
/// Two runs see the same training rows in the same order exactly when every field is equal;
/// the digest catches what the options cannot (a data file edited between the runs).
public struct TrainingDataIdentity: Codable, Equatable, Sendable {
    /// `--data` as given: a built-in dataset name or a file path.
    public var source: String
    /// `--rows` (built-in datasets only).
    public var rows: Int?
    /// `--data-seed` as used (built-in datasets only).
    public var dataSeed: UInt64?
    /// `--validation`.
    public var validationFraction: Double
    /// `--standardize`.
    public var standardize: Bool
    /// Training rows after the split.
    public var trainCount: Int
    /// Validation rows after the split.
    public var validationCount: Int
    /// FNV-1a (64-bit) of the training rows' bytes in split order, 16 hex digits.
    public var trainDigest: String

    public init(
        source: String, rows: Int?, dataSeed: UInt64?, validationFraction: Double, standardize: Bool,
        trainCount: Int, validationCount: Int, trainDigest: String
    ) {
        self.source = source
        self.rows = rows
        self.dataSeed = dataSeed
        self.validationFraction = validationFraction
        self.standardize = standardize
        self.trainCount = trainCount
        self.validationCount = validationCount
        self.trainDigest = trainDigest
    }

    /// The identity of `data`, prepared from `source` with these options.
    public init<Scalar: FlowScalar>(
        _ data: TrainingData<Scalar>, source: String, rows: Int?, dataSeed: UInt64?, validationFraction: Double, standardize: Bool
    ) {
        self.init(
            source: source, rows: rows, dataSeed: dataSeed, validationFraction: validationFraction, standardize: standardize,
            trainCount: data.trainCount, validationCount: data.validationCount, trainDigest: Self.digest(data.trainRows))
    }

    /// FNV-1a over the bytes of `values`, as 16 lowercase hex digits.
    public static func digest<Scalar: FlowScalar>(_ values: [Scalar]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        values.withUnsafeBytes { bytes in
            for byte in bytes {
                hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            }
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// The first field that differs from `other` (this is the checkpoint's, `other` the command
    /// line's), as (option, checkpoint value, command-line value).
    public func firstDifference(from other: TrainingDataIdentity) -> (field: String, recorded: String, given: String)? {
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        // A file may be named differently from another directory: its rows' digest decides.
        let builtin = rows != nil || other.rows != nil
        let pairs: [(String, String, String)] = [
            ("--data", builtin ? source : "", builtin ? other.source : ""),
            ("--rows", text(rows), text(other.rows)),
            ("--data-seed", text(dataSeed), text(other.dataSeed)),
            ("--validation", "\(validationFraction)", "\(other.validationFraction)"),
            ("--standardize", "\(standardize)", "\(other.standardize)"),
            ("training rows", "\(trainCount)", "\(other.trainCount)"),
            ("validation rows", "\(validationCount)", "\(other.validationCount)"),
            ("digest of the training rows", trainDigest, other.trainDigest),
        ]
        return pairs.first { $0.1 != $0.2 }.map { (field: $0.0, recorded: $0.1, given: $0.2) }
    }
}
