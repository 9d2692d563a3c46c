/// What the first line of a CSV file settles: the delimiter, whether it is a header, the
/// width, and the names (the "sniffing" part of ``CSVReader``; see `docs/data.md`).
///
/// The line is split with RFC 4180 quotes (within this one line): header names may be quoted,
/// data fields may not. With ``CSVReader/HeaderMode/auto`` the line is a header if any field is
/// quoted or not a number; with ``CSVDelimiter/auto`` it is tab-separated if it holds a tab
/// outside double quotes.
struct CSVFirstLine {
    /// The delimiter in use (never `.auto`).
    var delimiter: CSVDelimiter
    /// The line's fields, unquoted and trimmed.
    var fields: [String]
    /// Whether the line is a header.
    var isHeader: Bool
    /// Whether the line holds only spaces (and tabs, in a comma-separated file).
    var isBlank: Bool
    /// 3 if the line starts with a UTF-8 byte-order mark (skipped), else 0.
    var byteOrderMarkLength: Int

    /// Sniffs `line`, the first line's bytes without its line break.
    static func analyse(
        _ line: UnsafeBufferPointer<UInt8>, delimiter: CSVDelimiter, header: CSVReader.HeaderMode
    ) -> CSVFirstLine {
        let bomLength = line.count >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF ? 3 : 0
        let bytes = UnsafeBufferPointer(rebasing: line[bomLength...])
        var resolved = delimiter
        if resolved == .auto {
            // A tab outside double quotes makes the file tab-separated.
            var quoted = false
            var tab = false
            for b in bytes {
                if b == UInt8(ascii: "\"") { quoted.toggle() }
                if b == UInt8(ascii: "\t") && !quoted {
                    tab = true
                    break
                }
            }
            resolved = tab ? .tab : .comma
        }
        let separator = resolved.byte!
        let spaceBytes: Set<UInt8> =
            separator == UInt8(ascii: "\t")
            ? [UInt8(ascii: " ")] : [UInt8(ascii: " "), UInt8(ascii: "\t")]
        let blank = bytes.allSatisfy { spaceBytes.contains($0) }

        // Split with RFC 4180 quotes (within this one line).
        var fields: [[UInt8]] = []
        var quotedField: [Bool] = []
        var current: [UInt8] = []
        var inQuotes = false
        var wasQuoted = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if inQuotes {
                if b == UInt8(ascii: "\"") {
                    if i + 1 < bytes.count && bytes[i + 1] == UInt8(ascii: "\"") {
                        current.append(b)
                        i += 1
                    } else {
                        inQuotes = false
                    }
                } else {
                    current.append(b)
                }
            } else if b == separator {
                fields.append(current)
                quotedField.append(wasQuoted)
                current = []
                wasQuoted = false
            } else if b == UInt8(ascii: "\"") && current.allSatisfy({ spaceBytes.contains($0) }) && !wasQuoted {
                current = []
                inQuotes = true
                wasQuoted = true
            } else {
                current.append(b)
            }
            i += 1
        }
        fields.append(current)
        quotedField.append(wasQuoted)

        var names: [String] = []
        var anyNonNumeric = false
        for (k, raw) in fields.enumerated() {
            var a = 0
            var b = raw.count
            if !quotedField[k] {
                while a < b && spaceBytes.contains(raw[a]) { a += 1 }
            }
            while b > a && spaceBytes.contains(raw[b - 1]) { b -= 1 }
            let trimmed = Array(raw[a..<b])
            if quotedField[k] {
                anyNonNumeric = true
            } else {
                let isNumber =
                    !trimmed.isEmpty
                    && trimmed.withUnsafeBufferPointer { p in
                        DecimalNumber.parse(p.baseAddress!, count: p.count) != nil
                    }
                if !isNumber { anyNonNumeric = true }
            }
            names.append(String(decoding: trimmed, as: UTF8.self))
        }
        let isHeader: Bool
        switch header {
        case .auto: isHeader = anyNonNumeric
        case .present: isHeader = true
        case .absent: isHeader = false
        }
        return CSVFirstLine(
            delimiter: resolved, fields: names, isHeader: isHeader, isBlank: blank,
            byteOrderMarkLength: bomLength)
    }
}
