/// Why a scored row has (or lacks) a log-density, one byte per row in a ``WireMessage/ScoreResult``.
///
/// A row has a finite log-prob exactly when its status is ``ok``; every other status comes
/// with a NaN (or other non-finite) log-prob, never a silent number.
public enum WireRowStatus: UInt8, Sendable, Equatable, Hashable, CaseIterable, CustomStringConvertible {
    /// Scored; the log-prob is finite.
    case ok = 0
    /// The input row holds NaN or ±∞.
    case nonFiniteInput = 1
    /// The input was finite but the log-density overflowed or underflowed to a non-finite value.
    case nonFiniteResult = 2
    /// The input row was malformed in the file (wrong width, not a number); set by the
    /// coordinator, which reads the file.
    case malformedInput = 3

    /// `ok`, `non-finite input`, `non-finite result` or `malformed input`.
    public var description: String {
        switch self {
        case .ok: return "ok"
        case .nonFiniteInput: return "non-finite input"
        case .nonFiniteResult: return "non-finite result"
        case .malformedInput: return "malformed input"
        }
    }
}
