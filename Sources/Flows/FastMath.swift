/// Branch-free `Float` versions of the two transcendental functions of a coupling,
/// `σ = tanh(s̃)` and `exp(σ)`, about ten times faster than libm's scalar calls.
///
/// Accuracy (checked in `FastMathTests` on every 16th float in [−20, 20] against `Double`
/// libm): `tanh` within 2 ulp, `exp` within 1.5 ulp. Being our own code rather than the
/// platform's libm, they also give the same bits on every Linux distribution, which the
/// cluster's bit-for-bit guarantee relies on. `Double` keeps libm (it is the checking precision).
enum FastMath {
    /// e^x for |x| ≤ 87 (inputs beyond are clamped; NaN propagates). Cephes' `expf`: x = k·ln2 + r
    /// with |r| ≤ ln2/2 (ln2 split in two parts), a degree-7 polynomial for e^r, then 2^k by
    /// building the exponent bits.
    @inline(__always)
    static func exp(_ x0: Float) -> Float {
        let x1: Float = x0 < -87 ? -87 : x0
        let x: Float = x1 > 87 ? 87 : x1
        let shifter: Float = 12_582_912  // 1.5 · 2²³: adding it rounds to an integer held in the low mantissa bits
        let t = x * 1.442_695_040_888_963_4 + shifter
        let k = t - shifter
        let ki = Int32(bitPattern: t.bitPattern) &- 0x4B40_0000
        var r = x - k * 0.693_359_375
        r = r - k * -2.121_944_40e-4
        var p: Float = 1.987_569_150_0e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        let y = p * r * r + r + 1
        let scale = Float(bitPattern: UInt32(bitPattern: (ki &+ 127) << 23))
        return y * scale
    }

    /// tanh(x). For |x| < 0.9, x·P(x²) with a degree-7 least-squares polynomial (relative error
    /// 4e-9 before rounding); beyond, 1 − 2/(e^{2|x|} + 1). Odd; NaN propagates; ±0 kept.
    @inline(__always)
    static func tanh(_ x: Float) -> Float {
        let a: Float = x < 0 ? -x : x
        let t = a * a
        var p: Float = -0.000_467_705_438_918_654_3
        p = p * t + 0.002_613_811_674_161_752
        p = p * t + -0.008_294_766_273_807_44
        p = p * t + 0.021_677_347_013_971_893
        p = p * t + -0.053_932_186_719_389_326
        p = p * t + 0.133_329_973_858_174_36
        p = p * t + -0.333_333_213_673_044_8
        p = p * t + 0.999_999_999_301_200_9
        let small = a * p
        let large = 1 - 2 / (exp(2 * (a > 20 ? 20 : a)) + 1)
        let r = a < 0.9 ? small : large
        return x < 0 ? -r : (x > 0 ? r : x)
    }
}
