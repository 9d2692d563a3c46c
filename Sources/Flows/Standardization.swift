/// The optional first layer of a flow: `u = (x − μ) / σ` per coordinate, fixed after fitting.
///
/// Its log-determinant is the constant `−Σ_j log σ_j`. It is not trained; it is stored in the
/// model file as `standardize.mean` and `standardize.std`.
public struct Standardization<Scalar: FlowScalar>: Sendable, Equatable {
    /// Per-coordinate mean μ.
    public var mean: [Scalar]
    /// Per-coordinate standard deviation σ (strictly positive).
    public var std: [Scalar]

    /// A standardisation with the given statistics. Every σ must be finite and positive.
    public init(mean: [Scalar], std: [Scalar]) throws(FlowError) {
        guard mean.count == std.count else {
            throw .shapeMismatch(what: "standardization std length", expected: mean.count, found: std.count)
        }
        for (j, s) in std.enumerated() where !(s.isFinite && s > 0) {
            throw .invalidConfiguration(field: "standardize.std[\(j)]", reason: "must be finite and positive, found \(s)")
        }
        for (j, m) in mean.enumerated() where !m.isFinite {
            throw .invalidConfiguration(field: "standardize.mean[\(j)]", reason: "must be finite, found \(m)")
        }
        self.mean = mean
        self.std = std
    }

    /// Fits μ and σ to `rows × dimension` row-major data (population standard deviation,
    /// accumulated in `Double`; a constant column gets σ = 1 so that the layer stays invertible).
    public static func fit(_ data: [Scalar], rows: Int, dimension: Int) throws(FlowError) -> Standardization {
        try fitReportingConstantColumns(data, rows: rows, dimension: dimension).standardization
    }

    /// ``fit(_:rows:dimension:)``, and the 0-based indices of the columns found constant
    /// (σ ≤ 1e-12, given σ = 1): the flow can shrink such an axis without bound, so a caller
    /// should say so.
    public static func fitReportingConstantColumns(
        _ data: [Scalar], rows: Int, dimension: Int
    ) throws(FlowError) -> (standardization: Standardization, constantColumns: [Int]) {
        guard rows > 0 else { throw .shapeMismatch(what: "rows to fit standardization", expected: 1, found: 0) }
        guard data.count == rows * dimension else {
            throw .shapeMismatch(what: "standardization data size", expected: rows * dimension, found: data.count)
        }
        var sum = [Double](repeating: 0, count: dimension)
        for r in 0..<rows {
            for j in 0..<dimension { sum[j] += Double(data[r * dimension + j]) }
        }
        let mean = sum.map { $0 / Double(rows) }
        var sq = [Double](repeating: 0, count: dimension)
        for r in 0..<rows {
            for j in 0..<dimension {
                let c = Double(data[r * dimension + j]) - mean[j]
                sq[j] += c * c
            }
        }
        var constant: [Int] = []
        let std: [Double] = sq.enumerated().map { j, squares in
            let s = (squares / Double(rows)).squareRoot()
            if s > 1e-12 && s.isFinite { return s }
            constant.append(j)
            return 1
        }
        let fitted = try Standardization(mean: mean.map { Scalar($0) }, std: std.map { Scalar($0) })
        return (fitted, constant)
    }

    /// `−Σ_j log σ_j`, the log-determinant of the layer's Jacobian (the same for every row).
    public var logDeterminant: Scalar {
        var s: Scalar = 0
        for v in std { s -= Scalar.log(v) }
        return s
    }
}
