import Foundation
import Testing
@testable import Flows

/// The Float fast paths against Double libm, on every 16th float in [−20, 20] (about 34 million
/// points would be every float; this is ~2 million, dense enough to see any region's error).
struct FastMathTests {
    /// Error in units of the float spacing at the true value.
    static func ulps(_ got: Float, _ exact: Double) -> Double {
        let spacing = Double(Float(exact).ulp)
        return abs(Double(got) - exact) / spacing
    }

    @Test func tanhIsWithinTwoUlp() {
        var worst = 0.0, at: Float = 0
        var x: Float = -20
        while x < 20 {
            let e = Self.ulps(FastMath.tanh(x), Foundation.tanh(Double(x)))
            if e > worst { worst = e; at = x }
            for _ in 0..<16 { x = x.nextUp }
        }
        #expect(worst <= 2, "tanh worst error \(worst) ulp at \(at)")
    }

    @Test func expIsWithinTwoUlpOnTheRangeItServes() {
        var worst = 0.0, at: Float = 0
        var x: Float = -20
        while x < 20 {
            let e = Self.ulps(FastMath.exp(x), Foundation.exp(Double(x)))
            if e > worst { worst = e; at = x }
            for _ in 0..<16 { x = x.nextUp }
        }
        #expect(worst <= 2, "exp worst error \(worst) ulp at \(at)")
    }

    @Test func specialValues() {
        #expect(FastMath.tanh(.nan).isNaN)
        #expect(FastMath.exp(.nan).isNaN)
        #expect(FastMath.tanh(0) == 0 && FastMath.tanh(-0.0).sign == .minus)
        #expect(FastMath.tanh(.infinity) == 1 && FastMath.tanh(-.infinity) == -1)
        #expect(FastMath.tanh(1e-30) == 1e-30)
        #expect(FastMath.exp(0) == 1)
    }

    @Test func tanhThenExpMatchesTheScalarFunctions() {
        var values: [Float] = [-3, -0.5, 0, 0.25, 0.9, 4]
        var e = [Float](repeating: 0, count: values.count)
        let original = values
        Float.tanhThenExp(&values, exp: &e, count: values.count)
        for i in values.indices {
            #expect(values[i] == FastMath.tanh(original[i]))
            #expect(e[i] == FastMath.exp(values[i]))
        }
    }
}
