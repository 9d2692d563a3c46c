import Foundation
import Testing
import FlowRandom
@testable import FlowData

struct DecimalNumberTests {
    func parse(_ text: String) -> Double? {
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return nil }
        return bytes.withUnsafeBufferPointer { DecimalNumber.parse($0.baseAddress!, count: $0.count) }
    }

    @Test(arguments: [
        ("0", 0.0), ("1", 1.0), ("-0.5", -0.5), ("+2.25", 2.25), ("1e3", 1000.0), ("1E-3", 0.001),
        (".5", 0.5), ("5.", 5.0), ("007", 7.0), ("0.000123", 0.000123), ("1.5e+10", 1.5e10),
        ("123456789012345678901234567890", 1.2345678901234568e29), ("4.9e-324", Double.leastNonzeroMagnitude),
        ("1.7976931348623157e308", 1.7976931348623157e308), ("1e-400", 0.0),
        ("0.1", 0.1), ("9007199254740993", 9007199254740992.0),
    ])
    func acceptsDecimalNumbers(text: String, value: Double) {
        let parsed = parse(text)
        #expect(parsed == value, "\(text)")
    }

    @Test func signedZeroAndSpecials() {
        #expect(parse("-0")?.bitPattern == (-0.0).bitPattern)
        #expect(parse("-0.0e5")?.bitPattern == (-0.0).bitPattern)
        for text in ["nan", "NaN", "-nan", "NAN"] {
            #expect(parse(text)?.isNaN == true, "\(text)")
        }
        #expect(parse("inf") == .infinity)
        #expect(parse("-Infinity") == -.infinity)
        #expect(parse("+INF") == .infinity)
        #expect(parse("1e400") == .infinity)
        #expect(parse("-1e99999999999") == -.infinity)
    }

    @Test(arguments: [
        "", "-", "+", ".", "e5", "1e", "1e+", "1.5.2", "1,5", "0x1p3", "0x10", "1 2", "\"1\"", "abc",
        "1_000", "infinit", "nana", "--1", "+-1", "1e5.5", "1d5", " 1", "1 ", "∞", "1f",
    ])
    func rejectsEverythingElse(text: String) {
        #expect(parse(text) == nil, "\(text)")
    }

    /// Correct rounding: Swift's shortest round-trip output and 17–20 significant digit
    /// renderings parse to the same value as the standard library's correctly rounded parser.
    @Test func agreesWithTheStandardLibraryOnRandomValues() {
        var g = SeededGenerator(seed: 7)
        for _ in 0..<20_000 {
            let magnitude = pow(10.0, g.uniform(-30, 30))
            let x = (g.uniform() - 0.5) * magnitude
            for text in [x.description, String(format: "%.17e", x), String(format: "%.19g", x),
                         String(format: "%.6f", x), Float(x).description]
            {
                let expected = Double(text)!
                let parsed = parse(text)
                #expect(parsed?.bitPattern == expected.bitPattern, "\(text)")
            }
        }
    }
}
