import CZeroMQ

/// Waits until one of several sockets or file descriptors is ready (`zmq_poll`).
///
/// Add items once, then poll in a loop; ``poll(timeoutMilliseconds:)`` returns the indices
/// (in the order of adding) of the items on which a requested event is ready. Like the sockets
/// it holds, a poller belongs to one thread.
///
///     var poller = ZMQPoller()
///     let control = poller.add(controlSocket)
///     let work = poller.add(workSocket)
///     for index in try poller.poll(timeoutMilliseconds: 100) { … }
public struct ZMQPoller {
    private enum Item {
        case socket(ZMQSocket, ZMQEvents)
        case fileDescriptor(Int32, ZMQEvents)
    }

    private var items: [Item] = []

    /// An empty poller.
    public init() {}

    /// The number of items added.
    public var count: Int { items.count }

    /// Adds a socket, to be reported when any of `events` is ready; returns its index.
    @discardableResult
    public mutating func add(_ socket: ZMQSocket, events: ZMQEvents = .readable) -> Int {
        items.append(.socket(socket, events))
        return items.count - 1
    }

    /// Adds a raw file descriptor (a pipe, a TCP socket of another library), to be reported
    /// when any of `events` is ready (`poll(2)` semantics); returns its index.
    @discardableResult
    public mutating func add(fileDescriptor: Int32, events: ZMQEvents = .readable) -> Int {
        items.append(.fileDescriptor(fileDescriptor, events))
        return items.count - 1
    }

    /// Waits until at least one item is ready or the timeout expires.
    ///
    /// - Parameter timeoutMilliseconds: nil waits without limit, 0 only looks.
    /// - Returns: the indices of the ready items, ascending; empty when the timeout expired.
    /// - Throws: ``ZeroMQError``: ``ZeroMQError/isInterrupted`` when a signal arrived (not
    ///   retried), ``ZeroMQError/isTerminated`` when the context was shut down,
    ///   ``ZeroMQError/socketClosed(operation:)`` for a closed socket,
    ///   ``ZeroMQError/emptyPoller`` for nothing to wait for and no timeout.
    public func poll(timeoutMilliseconds: Int?) throws -> [Int] {
        if let timeoutMilliseconds, timeoutMilliseconds < 0 {
            throw ZeroMQError.outOfRange(
                name: "timeoutMilliseconds", value: Int64(timeoutMilliseconds), range: 0...Int64(Int.max))
        }
        if items.isEmpty && timeoutMilliseconds == nil { throw ZeroMQError.emptyPoller }
        var pollItems = try items.map { item -> zmq_pollitem_t in
            switch item {
            case .socket(let socket, let events):
                return zmq_pollitem_t(socket: try socket.open("poll"), fd: 0, events: events.rawValue, revents: 0)
            case .fileDescriptor(let fd, let events):
                return zmq_pollitem_t(socket: nil, fd: fd, events: events.rawValue, revents: 0)
            }
        }
        let ready = try call("zmq_poll", retryInterrupted: false) {
            zmq_poll(&pollItems, Int32(pollItems.count), timeoutMilliseconds ?? -1)
        }
        guard ready > 0 else { return [] }
        return pollItems.indices.filter { pollItems[$0].revents & pollItems[$0].events != 0 }
    }
}
