/// A fixed-size, uninitialised-then-zeroed block of scalars owned by a workspace.
///
/// Workspaces hold their activations in these blocks so that a training step or a scoring
/// chunk allocates nothing after the workspace is built. The pointer never escapes the
/// workspace that owns the buffer (the buffer is deallocated with it).
final class ScratchBuffer<Scalar: FlowScalar> {
    let count: Int
    let pointer: UnsafeMutablePointer<Scalar>

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit {
        pointer.deallocate()
    }

    /// The element at `i` (bounds are the caller's duty; used in tests and cold paths only).
    subscript(i: Int) -> Scalar {
        get { pointer[i] }
        set { pointer[i] = newValue }
    }
}
