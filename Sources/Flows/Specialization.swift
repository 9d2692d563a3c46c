/// Runs generic math as concrete `Float` or `Double` code.
///
/// Swift specialises a generic function only where its caller's types are known inside the
/// same module; a client in another module (the CLI, the cluster) would otherwise run the
/// unspecialised body, where every `+` goes through a witness table — ten times slower.
/// Each public hot entry point therefore checks `Scalar` once per call and re-enters its body
/// with concrete types (the casts are identities: they run only when the types are equal).
enum Specialization {
    /// `value` seen as type `T` (which it is: the caller has checked the scalar type).
    @inline(__always)
    static func same<U, T>(_ value: U, as _: T.Type) -> T {
        unsafeBitCast(value, to: T.self)
    }
}

extension UnsafePointer {
    /// The same address, typed as `T` (used only where `T` is `Pointee`).
    @inline(__always)
    func same<T>(as _: T.Type) -> UnsafePointer<T> {
        UnsafeRawPointer(self).assumingMemoryBound(to: T.self)
    }
}

extension UnsafeMutablePointer {
    /// The same address, typed as `T` (used only where `T` is `Pointee`).
    @inline(__always)
    func same<T>(as _: T.Type) -> UnsafeMutablePointer<T> {
        UnsafeMutableRawPointer(self).assumingMemoryBound(to: T.self)
    }
}
