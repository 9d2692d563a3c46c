import ZeroMQ

extension ZeroMQError {
    /// A message with more frames than the receiver allows (read and discarded by the socket layer).
    var isTooManyFrames: Bool {
        if case .tooManyFrames = self { return true }
        return false
    }
}
