import COpenBLAS
import Foundation

/// The floating-point types the flow math runs in: `Float` (training default, BLAS `sgemm`)
/// and `Double` (gradient checks, BLAS `dgemm`).
///
/// The protocol carries the few operations whose implementation differs by type — the BLAS
/// matrix product and the transcendental functions — so that the generic math in this module
/// compiles to direct calls once specialised (see `Specialization`).
public protocol FlowScalar: BinaryFloatingPoint, Sendable, Codable where RawSignificand: FixedWidthInteger {
    /// The dtype name used in model files' metadata: `float32` or `float64`.
    static var dtypeName: String { get }

    /// Row-major general matrix product through BLAS:
    /// `C[m×n] = alpha · op(A) · op(B) + beta · C`, where `op(X)` is `X` or `Xᵀ`.
    ///
    /// Leading dimensions are row strides in elements. With `beta == 0`, `C` need not be
    /// initialised (BLAS does not read it).
    static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int
    )

    /// e^x, correctly rounded to within the platform libm's accuracy.
    static func exp(_ x: Self) -> Self
    /// The hyperbolic tangent.
    static func tanh(_ x: Self) -> Self
    /// The natural logarithm.
    static func log(_ x: Self) -> Self

    /// In place over `count` values: `values[i] = tanh(values[i])`, then `exp[i] = e^values[i]` —
    /// the log-scales σ of a coupling and their exponentials, in one pass that vectorises.
    static func tanhThenExp(_ values: UnsafeMutablePointer<Self>, exp: UnsafeMutablePointer<Self>, count: Int)
}

extension Float: FlowScalar {
    public static var dtypeName: String { "float32" }

    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    @inline(__always) public static func exp(_ x: Float) -> Float { Foundation.expf(x) }
    @inline(__always) public static func tanh(_ x: Float) -> Float { Foundation.tanhf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { Foundation.logf(x) }

    /// Uses `FastMath` (≤ 2 ulp, platform-independent bits).
    public static func tanhThenExp(_ values: UnsafeMutablePointer<Float>, exp: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count {
            let s = FastMath.tanh(values[i])
            values[i] = s
            exp[i] = FastMath.exp(s)
        }
    }
}

extension Double: FlowScalar {
    public static var dtypeName: String { "float64" }

    @inline(__always)
    public static func gemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        cblas_dgemm(
            CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }

    @inline(__always) public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inline(__always) public static func tanh(_ x: Double) -> Double { Foundation.tanh(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { Foundation.log(x) }

    /// Uses libm (`Double` is the checking precision).
    public static func tanhThenExp(_ values: UnsafeMutablePointer<Double>, exp: UnsafeMutablePointer<Double>, count: Int) {
        for i in 0..<count {
            let s = Foundation.tanh(values[i])
            values[i] = s
            exp[i] = Foundation.exp(s)
        }
    }
}
