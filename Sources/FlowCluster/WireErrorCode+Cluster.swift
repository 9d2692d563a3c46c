import FlowWire

extension WireErrorCode {
    /// The coordinator does not know the sender (it was declared dead, or the coordinator
    /// restarted): the worker must say hello again on a new connection.
    public static let notRegistered = WireErrorCode(rawValue: 11)
}

import ZeroMQ

extension ZeroMQError {
    /// A message with more frames than the receiver allows (read and discarded by the socket layer).
    var isTooManyFrames: Bool {
        if case .tooManyFrames = self { return true }
        return false
    }
}
