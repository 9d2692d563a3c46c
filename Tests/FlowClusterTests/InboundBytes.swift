import FlowCluster

// The tests speak bytes to the machines the way the drivers do: decoded at the edge by
// `InboundMessage`, so that malformed frames reach the machines exactly as in a run.

extension CoordinatorStateMachine {
    mutating func messageReceived(from identity: [UInt8], bytes: [UInt8], userID: String? = nil, now: Double) -> [Action] {
        messageReceived(InboundMessage(decoding: bytes), from: identity, userID: userID, now: now)
    }
}

extension ScoringStateMachine {
    mutating func messageReceived(from identity: [UInt8], bytes: [UInt8], userID: String? = nil, now: Double) -> [Action] {
        messageReceived(InboundMessage(decoding: bytes), from: identity, userID: userID, now: now)
    }
}

extension WorkerStateMachine {
    mutating func messageReceived(_ bytes: [UInt8], now: Double) -> [Action] {
        messageReceived(InboundMessage(decoding: bytes), now: now)
    }
}
