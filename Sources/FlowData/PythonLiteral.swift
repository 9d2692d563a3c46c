/// A strict parser for the small subset of Python literals that NPY headers use: a dictionary
/// with string keys whose values are strings, integers, `True`/`False`/`None`, tuples and lists.
/// Floats, expressions, nested dictionaries and anything else are rejected with a reason.
enum PythonLiteral {
    /// Why a header is not a valid literal.
    struct Failure: Error {
        let reason: String
    }

    /// One parsed value and its source text (for messages).
    struct Value {
        enum Kind {
            case string(String)
            case integer(Int)
            case bool(Bool)
            case none
            case tuple([Value])
            case list([Value])

            var isString: Bool {
                if case .string = self { return true }
                return false
            }
        }

        let kind: Kind
        let source: String

        var stringValue: String? {
            if case let .string(s) = kind { return s }
            return nil
        }
    }

    /// Parses `bytes` as `{ 'key': value, … }` followed only by whitespace.
    static func parseHeaderDictionary(_ bytes: [UInt8]) throws(Failure) -> [String: Value] {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        guard parser.position < bytes.count else {
            throw Failure(reason: "the header is empty")
        }
        guard parser.peek == UInt8(ascii: "{") else {
            throw Failure(reason: "the header does not start with '{' (found \(parser.describeHere()))")
        }
        parser.position += 1
        var result: [String: Value] = [:]
        while true {
            parser.skipWhitespace()
            if parser.peek == UInt8(ascii: "}") {
                parser.position += 1
                break
            }
            let key = try parser.parseValue(depth: 0)
            guard let name = key.stringValue else {
                throw Failure(reason: "dictionary key \(key.source) is not a string")
            }
            parser.skipWhitespace()
            guard parser.peek == UInt8(ascii: ":") else {
                throw Failure(reason: "expected ':' after key '\(name)', found \(parser.describeHere())")
            }
            parser.position += 1
            let value = try parser.parseValue(depth: 0)
            if result[name] != nil {
                throw Failure(reason: "duplicate key '\(name)'")
            }
            result[name] = value
            parser.skipWhitespace()
            if parser.peek == UInt8(ascii: ",") {
                parser.position += 1
            } else if parser.peek != UInt8(ascii: "}") {
                throw Failure(reason: "expected ',' or '}' in the dictionary, found \(parser.describeHere())")
            }
        }
        parser.skipWhitespace()
        if parser.position != bytes.count {
            throw Failure(reason: "unexpected text after the dictionary: \(parser.describeHere())")
        }
        return result
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        var peek: UInt8? {
            position < bytes.count ? bytes[position] : nil
        }

        mutating func skipWhitespace() {
            while let b = peek,
                  b == UInt8(ascii: " ") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\n")
                    || b == UInt8(ascii: "\r")
            {
                position += 1
            }
        }

        /// Up to 20 bytes from the current position, quoted, with "…" when more non-blank
        /// text follows (the header's space padding is not shown).
        func describeHere() -> String {
            guard position < bytes.count else { return "the end of the header" }
            func blank(_ b: UInt8) -> Bool {
                b == UInt8(ascii: " ") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\t") || b == UInt8(ascii: "\r")
            }
            var end = min(bytes.count, position + 20)
            let more = bytes[end...].contains { !blank($0) }
            if !more {
                while end > position && blank(bytes[end - 1]) { end -= 1 }
            }
            return DataError.quoted(String(decoding: bytes[position..<end], as: UTF8.self) + (more ? "…" : ""))
        }

        func source(from start: Int) -> String {
            String(decoding: bytes[start..<position], as: UTF8.self)
        }

        mutating func parseValue(depth: Int) throws(Failure) -> Value {
            guard depth < 16 else { throw Failure(reason: "values are nested too deeply") }
            skipWhitespace()
            let start = position
            guard let b = peek else {
                throw Failure(reason: "expected a value, found the end of the header")
            }
            switch b {
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                let text = try parseString(quote: b)
                return Value(kind: .string(text), source: source(from: start))
            case UInt8(ascii: "("), UInt8(ascii: "["):
                let close = b == UInt8(ascii: "(") ? UInt8(ascii: ")") : UInt8(ascii: "]")
                position += 1
                var items: [Value] = []
                var trailingComma = false
                while true {
                    skipWhitespace()
                    if peek == close {
                        position += 1
                        break
                    }
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    trailingComma = false
                    if peek == UInt8(ascii: ",") {
                        position += 1
                        trailingComma = true
                    } else if peek != close {
                        throw Failure(reason: "expected ',' or '\(Character(Unicode.Scalar(close)))', found \(describeHere())")
                    }
                }
                if close == UInt8(ascii: "]") {
                    return Value(kind: .list(items), source: source(from: start))
                }
                // `(x)` is a parenthesised value, `(x,)` a one-element tuple.
                if items.count == 1 && !trailingComma {
                    return Value(kind: items[0].kind, source: source(from: start))
                }
                return Value(kind: .tuple(items), source: source(from: start))
            case UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var negative = false
                if b == UInt8(ascii: "-") || b == UInt8(ascii: "+") {
                    negative = b == UInt8(ascii: "-")
                    position += 1
                    skipWhitespace()
                }
                var value = 0
                var digits = 0
                while let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") {
                    let (m, o1) = value.multipliedReportingOverflow(by: 10)
                    let (s, o2) = m.addingReportingOverflow(Int(d - UInt8(ascii: "0")))
                    if o1 || o2 {
                        while let d = peek, d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9") { position += 1 }
                        throw Failure(reason: "integer \(source(from: start)) is too large")
                    }
                    value = s
                    digits += 1
                    position += 1
                }
                if digits == 0 {
                    throw Failure(reason: "expected digits, found \(describeHere())")
                }
                if let next = peek, next == UInt8(ascii: ".") || next | 0x20 == UInt8(ascii: "e")
                    || next | 0x20 == UInt8(ascii: "x") || next | 0x20 == UInt8(ascii: "j")
                    || next == UInt8(ascii: "_") || next | 0x20 == UInt8(ascii: "l")
                {
                    throw Failure(reason: "only decimal integers are allowed, found \(describeHere())")
                }
                return Value(kind: .integer(negative ? -value : value), source: source(from: start))
            default:
                var end = position
                while end < bytes.count, Self.isIdentifierByte(bytes[end]) { end += 1 }
                let word = String(decoding: bytes[position..<end], as: UTF8.self)
                switch word {
                case "True", "False", "None":
                    position = end
                    let kind: Value.Kind = word == "None" ? .none : .bool(word == "True")
                    return Value(kind: kind, source: word)
                default:
                    throw Failure(reason: "unsupported value \(describeHere())")
                }
            }
        }

        mutating func parseString(quote: UInt8) throws(Failure) -> String {
            position += 1
            var text: [UInt8] = []
            while true {
                guard let b = peek else {
                    throw Failure(reason: "unterminated string")
                }
                position += 1
                if b == quote { break }
                if b == UInt8(ascii: "\n") {
                    throw Failure(reason: "line break inside a string")
                }
                if b == UInt8(ascii: "\\") {
                    guard let escaped = peek else { throw Failure(reason: "unterminated string") }
                    position += 1
                    text.append(escaped)
                } else {
                    text.append(b)
                }
            }
            return String(decoding: text, as: UTF8.self)
        }

        static func isIdentifierByte(_ b: UInt8) -> Bool {
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
                || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
        }
    }
}
