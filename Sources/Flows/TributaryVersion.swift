/// The version of this build of Tributary, in one place: `tributary --version` prints it, and
/// every model file and training checkpoint records it in its metadata as `tributary_version`.
///
/// Semantic versioning: the minor number grows with features, the patch with fixes. The model
/// file's own `format_version` is separate and changes only when the file layout does.
public enum TributaryVersion {
    /// `MAJOR.MINOR.PATCH`.
    public static let current = "0.4.0"
}
