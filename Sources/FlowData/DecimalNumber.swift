#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Strict, allocation-free parsing of one decimal number from bytes.
///
/// Accepted (after the caller has trimmed surrounding spaces):
///
///     [+-]? ( digits [ "." digits? ] | "." digits ) ( [eE] [+-]? digits )?
///     [+-]? ( "nan" | "inf" | "infinity" )            (any letter case)
///
/// The whole field must match; anything else — hexadecimal floats, `1,5`, `1.5.2`, `"1.5"`,
/// thousands separators, an empty field — is not a number. The result is correctly rounded:
/// mantissas of at most 2^53 with a decimal exponent in ±22 are converted exactly by one
/// IEEE multiplication or division (Clinger's fast path); other inputs go to the C library's
/// `strtod`, whose glibc implementation rounds correctly.
enum DecimalNumber {
    private static let powersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The value of the `count` bytes at `start`, or nil when they are not a number.
    /// Overflow gives ±infinity (the caller decides about non-finite values); underflow gives
    /// a subnormal or ±0.
    static func parse(_ start: UnsafePointer<UInt8>, count: Int) -> Double? {
        var i = 0
        var negative = false
        if count == 0 { return nil }
        if start[0] == UInt8(ascii: "-") || start[0] == UInt8(ascii: "+") {
            negative = start[0] == UInt8(ascii: "-")
            i = 1
        }
        if i == count { return nil }
        let first = start[i]
        if first != UInt8(ascii: ".") && (first &- 48) > 9 {
            guard let special = parseSpecial(start + i, count: count - i) else { return nil }
            return negative ? -special : special
        }

        var mantissa: UInt64 = 0
        var significantDigits = 0
        var exponent = 0
        var truncated = false
        var anyDigit = false

        while i < count {
            let d = start[i] &- 48
            if d > 9 { break }
            anyDigit = true
            if significantDigits < 19 {
                if mantissa != 0 || d != 0 {
                    mantissa = mantissa &* 10 &+ UInt64(d)
                    significantDigits += 1
                }
            } else {
                exponent += 1
                truncated = true
            }
            i += 1
        }
        if i < count && start[i] == UInt8(ascii: ".") {
            i += 1
            while i < count {
                let d = start[i] &- 48
                if d > 9 { break }
                anyDigit = true
                if significantDigits < 19 {
                    if mantissa != 0 || d != 0 {
                        mantissa = mantissa &* 10 &+ UInt64(d)
                        significantDigits += 1
                    }
                    exponent -= 1
                } else {
                    truncated = true
                }
                i += 1
            }
        }
        if !anyDigit { return nil }
        if i < count && (start[i] | 0x20) == UInt8(ascii: "e") {
            i += 1
            var exponentNegative = false
            if i < count && (start[i] == UInt8(ascii: "-") || start[i] == UInt8(ascii: "+")) {
                exponentNegative = start[i] == UInt8(ascii: "-")
                i += 1
            }
            var value = 0
            var exponentDigits = 0
            while i < count {
                let d = start[i] &- 48
                if d > 9 { break }
                if value < 1_000_000 { value = value * 10 + Int(d) }
                exponentDigits += 1
                i += 1
            }
            if exponentDigits == 0 { return nil }
            exponent += exponentNegative ? -value : value
        }
        if i != count { return nil }

        if mantissa == 0 {
            return negative ? -0.0 : 0.0
        }
        if !truncated && mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            let m = Double(mantissa)
            let value = exponent >= 0 ? m * powersOfTen[exponent] : m / powersOfTen[-exponent]
            return negative ? -value : value
        }
        return slowPath(start, count: count)
    }

    /// `nan`, `inf` or `infinity` in any letter case (no sign), else nil.
    private static func parseSpecial(_ start: UnsafePointer<UInt8>, count: Int) -> Double? {
        func matches(_ word: StaticString) -> Bool {
            guard word.utf8CodeUnitCount == count else { return false }
            let w = word.utf8Start
            for k in 0..<count where (start[k] | 0x20) != w[k] {
                return false
            }
            return true
        }
        if matches("nan") { return .nan }
        if matches("inf") || matches("infinity") { return .infinity }
        return nil
    }

    /// Correctly rounded conversion of an already validated decimal literal through `strtod`
    /// on a NUL-terminated copy. If the process's C locale does not use "." as the decimal
    /// point, `strtod` stops early; the Swift standard library's locale-independent parser
    /// takes over then.
    private static func slowPath(_ start: UnsafePointer<UInt8>, count: Int) -> Double? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: count + 1) { buffer in
            let base = buffer.baseAddress!
            UnsafeMutableRawPointer(base).copyMemory(from: start, byteCount: count)
            base[count] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let value = strtod(base, &end)
            if end == base + count { return value }
            return Double(String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self))
        }
    }
}
