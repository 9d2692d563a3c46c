/// Errors of the flow math and of model files.
public enum FlowError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A configuration field is out of range or inconsistent.
    case invalidConfiguration(field: String, reason: String)
    /// An input's shape does not fit the model (e.g. a batch of the wrong width).
    case shapeMismatch(what: String, expected: Int, found: Int)
    /// A loss or gradient contained NaN or ±∞; the parameters were left unchanged. `step` is
    /// 1-based: the step whose update was refused.
    case nonFinite(what: String, step: Int)
    /// A model file is structurally valid safetensors but does not describe a valid model.
    case invalidModelFile(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let field, let reason):
            return "invalid flow configuration: \(field) \(reason)"
        case .shapeMismatch(let what, let expected, let found):
            return "\(what): expected \(expected), found \(found)"
        case .nonFinite(let what, let step):
            return "step \(step): \(what) is not finite (NaN or infinity); the parameters were not updated"
        case .invalidModelFile(let path, let reason):
            return "\(path): \(reason)"
        }
    }
}
