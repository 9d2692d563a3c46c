import CZeroMQ

/// The ZeroMQ socket patterns this wrapper offers (a subset of `zmq_socket(3)`).
public enum SocketType: String, CaseIterable, Sendable {
    /// Addresses each peer by routing id; receives `[id] + frames`, sends `[id] + frames`.
    case router
    /// Round-robins outgoing messages over its peers, fair-queues incoming ones.
    case dealer
    /// Sends only, round-robin over connected PULL sockets.
    case push
    /// Receives only, fair-queued from connected PUSH sockets.
    case pull
    /// Publishes to every subscriber whose subscription is a prefix of the first frame.
    case pub
    /// Receives the messages whose first frame starts with a subscribed prefix.
    case sub
    /// Strict send-then-receive client.
    case req
    /// Strict receive-then-send server.
    case rep
    /// Exactly one peer, both directions.
    case pair

    /// The libzmq constant (`ZMQ_ROUTER`, …).
    var cValue: Int32 {
        switch self {
        case .router: return ZMQ_ROUTER
        case .dealer: return ZMQ_DEALER
        case .push: return ZMQ_PUSH
        case .pull: return ZMQ_PULL
        case .pub: return ZMQ_PUB
        case .sub: return ZMQ_SUB
        case .req: return ZMQ_REQ
        case .rep: return ZMQ_REP
        case .pair: return ZMQ_PAIR
        }
    }
}
