import ZeroMQ

extension ZMQSocket {
    /// Sends `body` to the ROUTER peer `identity` without blocking. A peer that is gone or whose
    /// queue is full is not an error here (the heartbeat rules notice it); anything else is
    /// logged, never thrown: one peer must not stop a coordinator.
    @discardableResult
    func sendToPeer(_ identity: [UInt8], _ body: [UInt8], log: (String) -> Void) -> Bool {
        do {
            return try send(frames: [ZMQFrame(identity), ZMQFrame(body)], dontWait: true)
        } catch let error as ZeroMQError where error.isHostUnreachable || error.isTimeout {
            // The peer is gone, or its queue is full.
            return false
        } catch {
            log("send to peer failed: \(error)")
            return false
        }
    }
}
