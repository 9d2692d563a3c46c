import Foundation

/// The small pieces of JSON the safetensors header needs beyond `JSONSerialization`: writing
/// string literals, reading strict integers out of `NSNumber`s, rendering found values for
/// error messages, and a structural scan that recovers key order and detects repeated keys
/// (which `JSONSerialization` silently collapses).
enum SafeTensorsJSON {
    /// The largest integer the header may hold (2^53, the end of exactly representable
    /// integers in binary64 JSON readers such as JavaScript's).
    static let maximumInteger = 1 << 53

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")
    private static let hexDigits = Array("0123456789abcdef".utf8)

    // MARK: Writing

    /// Appends `string` as a JSON string literal: `"` and `\` are escaped, control characters
    /// U+0000–U+001F are written as `\u00xx`, everything else as raw UTF-8.
    static func appendQuoted(_ string: String, to output: inout [UInt8]) {
        output.append(quote)
        for byte in string.utf8 {
            switch byte {
            case quote, backslash:
                output.append(backslash)
                output.append(byte)
            case 0..<0x20:
                output.append(contentsOf: [
                    backslash, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                ])
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            default:
                output.append(byte)
            }
        }
        output.append(quote)
    }

    /// `string` as a JSON string literal (see ``appendQuoted(_:to:)``).
    static func quoted(_ string: String) -> String {
        var bytes: [UInt8] = []
        appendQuoted(string, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the decimal digits of `value`.
    static func appendInteger(_ value: Int, to output: inout [UInt8]) {
        output.append(contentsOf: String(value).utf8)
    }

    // MARK: Reading values parsed by JSONSerialization

    /// The value as an `Int` if it is a JSON integer literal (no fraction or exponent) that
    /// fits `Int`; `nil` for booleans, reals (`2.0`, `1e3`), huge numbers, strings and
    /// everything else.
    static func integer(_ value: Any) -> Int? {
        guard !(value is String), let number = value as? NSNumber, !(number is NSDecimalNumber)
        else { return nil }
        switch String(cString: number.objCType) {
        case "s", "i", "l", "q": return Int(exactly: number.int64Value)
        case "S", "I", "L", "Q": return Int(exactly: number.uint64Value)
        default: return nil  // "c"/"B": booleans; "f"/"d": reals
        }
    }

    /// A compact JSON rendering of a parsed value for error messages, cut at about
    /// `limit` characters.
    static func describe(_ value: Any, limit: Int = 60) -> String {
        var output = ""
        render(value, into: &output, limit: limit)
        if output.count > limit { output = String(output.prefix(limit)) + "…" }
        return output
    }

    private static func render(_ value: Any, into output: inout String, limit: Int) {
        guard output.count <= limit else { return }
        if let string = value as? String {
            output += quoted(string.count > limit ? String(string.prefix(limit)) : string)
        } else if let number = value as? NSNumber {
            switch String(cString: number.objCType) {
            case "c", "B": output += number.boolValue ? "true" : "false"
            default: output += number.description
            }
        } else if let array = value as? [Any] {
            output += "["
            for (index, element) in array.enumerated() {
                if output.count > limit { break }
                if index > 0 { output += ", " }
                render(element, into: &output, limit: limit)
            }
            output += "]"
        } else if let object = value as? [String: Any] {
            output += "{"
            let keys = object.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
            for (index, key) in keys.enumerated() {
                if output.count > limit { break }
                if index > 0 { output += ", " }
                output += quoted(key) + ": "
                render(object[key]!, into: &output, limit: limit)
            }
            output += "}"
        } else if value is NSNull {
            output += "null"
        } else {
            output += String(describing: value)
        }
    }

    // MARK: Structural scan

    /// The result of ``scanKeys(_:in:)``.
    struct KeyScan {
        /// The members of the top-level object, in the order they appear.
        var topLevelKeys: [String] = []
        /// The first key that appears twice in one object, with the top-level member it is
        /// nested in (`nil` if the repeat is at the top level).
        var duplicate: (key: String, entry: String?)?
    }

    /// Scans the bytes of a document that `JSONSerialization` has already accepted: records
    /// the top-level keys in order and the first key repeated within one object. Never traps,
    /// whatever the bytes.
    static func scanKeys(_ bytes: [UInt8], in range: Range<Int>) -> KeyScan {
        var scan = KeyScan()
        var objects: [Set<String>?] = []  // one entry per open container; nil for arrays
        var lastString: Range<Int>?
        var currentEntry: String?
        var index = range.lowerBound
        while index < range.upperBound {
            switch bytes[index] {
            case quote:
                var end = index + 1
                while end < range.upperBound, bytes[end] != quote {
                    end += bytes[end] == backslash ? 2 : 1
                }
                guard end < range.upperBound else { return scan }  // unterminated: not JSON
                lastString = (index + 1)..<end
                index = end
            case UInt8(ascii: "{"):
                objects.append([])
            case UInt8(ascii: "["):
                objects.append(nil)
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                _ = objects.popLast()
            case UInt8(ascii: ":"):
                guard let keyRange = lastString, let top = objects.indices.last,
                    objects[top] != nil
                else { break }
                let key = unescape(bytes[keyRange])
                if objects[top]?.insert(key).inserted == false, scan.duplicate == nil {
                    scan.duplicate = (key, top == 0 ? nil : currentEntry)
                }
                if top == 0 {
                    scan.topLevelKeys.append(key)
                    currentEntry = key
                }
            default:
                break
            }
            index += 1
        }
        return scan
    }

    /// Decodes the contents of a JSON string literal (without its quotes). Malformed escapes
    /// and unpaired surrogates become U+FFFD.
    static func unescape(_ literal: ArraySlice<UInt8>) -> String {
        guard literal.contains(backslash) else { return String(decoding: literal, as: UTF8.self) }
        var output: [UInt8] = []
        output.reserveCapacity(literal.count)
        var index = literal.startIndex
        func hex4(at position: Int) -> UInt32? {
            guard position >= literal.startIndex, position + 4 <= literal.endIndex else {
                return nil
            }
            var value: UInt32 = 0
            for byte in literal[position..<(position + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt32(digit)
            }
            return value
        }
        func appendScalar(_ value: UInt32) {
            let scalar = Unicode.Scalar(value) ?? "\u{FFFD}"
            output.append(contentsOf: String(Character(scalar)).utf8)
        }
        while index < literal.endIndex {
            let byte = literal[index]
            guard byte == backslash, index + 1 < literal.endIndex else {
                output.append(byte)
                index += 1
                continue
            }
            let escape = literal[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4(at: index) else {
                    appendScalar(0xFFFD)
                    continue
                }
                index += 4
                if (0xD800..<0xDC00).contains(unit), index + 1 < literal.endIndex,
                    literal[index] == backslash, literal[index + 1] == UInt8(ascii: "u"),
                    let low = hex4(at: index + 2), (0xDC00..<0xE000).contains(low)
                {
                    index += 6
                    appendScalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                } else {
                    appendScalar(unit)  // an unpaired surrogate is not a scalar: U+FFFD
                }
            default:
                output.append(escape)  // \" \\ \/
            }
        }
        return String(decoding: output, as: UTF8.self)
    }
}
