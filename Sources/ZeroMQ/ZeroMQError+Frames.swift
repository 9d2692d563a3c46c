extension ZeroMQError {
    /// True for ``ZeroMQError/tooManyFrames``: a message with more frames than the receiver
    /// allows (read and discarded by the socket layer, so the socket stays usable).
    public var isTooManyFrames: Bool {
        if case .tooManyFrames = self { return true }
        return false
    }
}
