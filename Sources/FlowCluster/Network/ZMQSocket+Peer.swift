import ZeroMQ

extension ZMQSocket {
    /// Sends `body` to the ROUTER peer `identity` without blocking. A peer that is gone or whose
    /// queue is full is not an error here (the heartbeat rules notice it); anything else is
    /// logged, never thrown: one peer must not stop a coordinator.
    func sendToPeer(_ identity: [UInt8], _ body: [UInt8], log: (String) -> Void) {
        do {
            _ = try send(frames: [ZMQFrame(identity), ZMQFrame(body)], dontWait: true)
        } catch let error as ZeroMQError where error.isHostUnreachable || error.isTimeout {
            // The peer is gone, or its queue is full.
        } catch {
            log("send to peer failed: \(error)")
        }
    }
}
