/// The field checks shared by decoding and ``WireMessage/validate(limits:)``: each throws the
/// ``WireError`` that names the field.
enum WireCheck {
    /// `value` must lie in `range`.
    static func range<T: BinaryInteger>(_ value: T, _ range: ClosedRange<T>, _ field: String) throws(WireError) {
        guard range.contains(value) else {
            throw .outOfRange(field: field, value: String(value), allowed: "\(range.lowerBound)...\(range.upperBound)")
        }
    }

    /// `value` must be at least 1.
    static func positive<T: BinaryInteger>(_ value: T, _ field: String) throws(WireError) {
        guard value >= 1 else { throw .outOfRange(field: field, value: String(value), allowed: "at least 1") }
    }

    /// `value` must be finite.
    static func finite(_ value: Double, _ field: String) throws(WireError) {
        guard value.isFinite else { throw .nonFinite(field: field, index: nil) }
    }

    /// `value` must be finite and strictly positive.
    /// A duration in seconds: finite and not negative.
    static func duration(_ value: Double, _ field: String) throws(WireError) {
        guard value.isFinite, value >= 0 else { throw .outOfRange(field: field, value: "\(value)", allowed: "finite, at least 0") }
    }

    static func finitePositive(_ value: Double, _ field: String) throws(WireError) {
        try finite(value, field)
        guard value > 0 else { throw .outOfRange(field: field, value: "\(value)", allowed: "greater than 0") }
    }

    /// Every element of `vector` must be finite.
    static func finite(_ vector: WireVector, _ field: String) throws(WireError) {
        if let index = vector.firstNonFiniteIndex { throw .nonFinite(field: field, index: index) }
    }

    /// The string must fit the limit.
    static func string(_ value: String, _ field: String, _ limits: WireLimits) throws(WireError) {
        let count = value.utf8.count
        guard count <= limits.maxStringBytes else {
            throw .countTooLarge(field: field, count: count, limit: limits.maxStringBytes)
        }
    }

    /// The array must fit `limit` (and a `u32` count).
    static func count(_ count: Int, _ limit: Int, _ field: String) throws(WireError) {
        guard count <= limit, count <= Int(UInt32.max) else {
            throw .countTooLarge(field: field, count: count, limit: min(limit, Int(UInt32.max)))
        }
    }

    /// The vector must fit `maxVectorElements`.
    static func vector(_ vector: WireVector, _ field: String, _ limits: WireLimits) throws(WireError) {
        try count(vector.count, limits.maxVectorElements, field)
    }

    /// The vector must hold `rows × columns` elements.
    static func shape(_ vector: WireVector, rows: UInt64, columns: UInt64, _ field: String) throws(WireError) {
        let (expected, overflow) = rows.multipliedReportingOverflow(by: columns)
        guard !overflow, UInt64(vector.count) == expected else {
            throw .inconsistent(
                field: field, reason: "has \(vector.count) elements, expected \(rows) rows × \(columns) = \(rows &* columns)")
        }
    }

    /// `first + count` must not pass 2^64 − 1 (a row range must be representable).
    static func rowRange(first: UInt64, count: UInt64, _ field: String) throws(WireError) {
        guard first <= UInt64.max - count else {
            throw .inconsistent(field: field, reason: "rows \(first) + \(count) run past 2^64 − 1")
        }
    }

    /// The data dimension range, the same as `FlowConfiguration.validate()`'s.
    static let dimensionRange: ClosedRange<UInt32> = 2...(1 << 20)
}
