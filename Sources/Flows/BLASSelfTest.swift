import FlowRandom

/// Checks the BLAS library's matrix products against a plain triple loop.
///
/// OpenBLAS chooses CPU-specific kernels at load time, and some releases have shipped kernels
/// that compute wrong results on some processors. `tributary` runs this check whenever it
/// selects kernels itself, and falls back to safer ones if it fails. It exercises every
/// transpose combination, `beta` 0 and 1, row strides larger than the row, and shapes from
/// 1×1×1 to odd sizes past the kernels' register blocks, in `Float` and `Double` (a few ms).
public enum BLASSelfTest {
    /// `nil` when every product agrees with the reference; otherwise a description of the
    /// first disagreement.
    public static func run() -> String? {
        if let failure = check(Float.self, tolerance: 1e-5) { return failure }
        return check(Double.self, tolerance: 1e-13)
    }

    static let shapes: [(m: Int, n: Int, k: Int)] = [
        (1, 1, 1), (3, 5, 7), (17, 33, 9), (64, 16, 8), (20, 70, 131), (131, 16, 40), (8, 72, 33),
    ]

    static func check<S: FlowScalar>(_: S.Type, tolerance: Double) -> String? {
        var rng = SeededGenerator(seed: 2024, stream: 7)
        for shape in shapes {
            for transposeA in [false, true] {
                for transposeB in [false, true] {
                    for beta in [0.0, 1.0] {
                        let (m, n, k) = shape
                        // Row strides one element wider than needed, as `gemm` is used on column slices.
                        let aRows = transposeA ? k : m, aCols = transposeA ? m : k
                        let bRows = transposeB ? n : k, bCols = transposeB ? k : n
                        let lda = aCols + 1, ldb = bCols + 1, ldc = n + 1
                        let a = (0..<(aRows * lda)).map { _ in rng.uniform(-1, 1) }
                        let b = (0..<(bRows * ldb)).map { _ in rng.uniform(-1, 1) }
                        let c0 = (0..<(m * ldc)).map { _ in rng.uniform(-1, 1) }
                        var c = c0.map { S($0) }
                        let aS = a.map { S($0) }, bS = b.map { S($0) }
                        S.gemm(
                            transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k,
                            alpha: 1, a: aS, lda: lda, b: bS, ldb: ldb, beta: S(beta), c: &c, ldc: ldc)
                        for i in 0..<m {
                            for j in 0..<n {
                                var sum = 0.0, magnitude = 0.0
                                for p in 0..<k {
                                    let av = Double(aS[transposeA ? p * lda + i : i * lda + p])
                                    let bv = Double(bS[transposeB ? j * ldb + p : p * ldb + j])
                                    sum += av * bv
                                    magnitude += abs(av * bv)
                                }
                                let previous = Double(S(c0[i * ldc + j]))
                                let expected = sum + beta * previous
                                let got = Double(c[i * ldc + j])
                                if !(abs(got - expected) <= tolerance * (magnitude + abs(previous) + 1)) {
                                    return "\(S.dtypeName) gemm m=\(m) n=\(n) k=\(k) transA=\(transposeA) transB=\(transposeB) beta=\(beta): C[\(i),\(j)] = \(got), expected \(expected)"
                                }
                            }
                            // Padding columns must be untouched.
                            if c[i * ldc + n] != S(c0[i * ldc + n]) {
                                return "\(S.dtypeName) gemm m=\(m) n=\(n) k=\(k): wrote outside its rows (row \(i))"
                            }
                        }
                    }
                }
            }
        }
        return nil
    }
}
