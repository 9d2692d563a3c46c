/// What a reader does with NaN and ±infinity.
public enum NonFinitePolicy: Sendable, Equatable {
    /// Throw ``DataError/nonFiniteValue(file:location:text:)`` naming the place (the default:
    /// training on a NaN silently poisons every parameter).
    case reject
    /// Pass NaN and ±infinity through as values. Scoring uses this and reports a per-row
    /// status for rows it cannot score.
    case allow
}
