import FlowWire

/// Bounds on what peers can make a coordinator hold or do (docs/security.md, "Limits").
///
/// A peer over a limit is dropped: its message is discarded and counted, it is logged once,
/// and — for a registered worker — it is forgotten like a dead one. With a ROUTER socket
/// "disconnected" means exactly that: libzmq offers no call to close one peer's connection, so
/// the coordinator forgets the peer and ignores what it sends (answering at most one error),
/// while libzmq itself closes connections that break ZMTP, fail the CURVE handshake or the ZAP
/// check, or send a frame above `ZMQ_MAXMSGSIZE`.
public struct ClusterLimits: Sendable, Equatable {
    /// The most workers registered at once; further hellos get `error(capacity)`.
    public var maxWorkers: Int
    /// Hellos accepted per second, over all peers (a token bucket refilled at this rate).
    public var hellosPerSecond: Double
    /// Hellos accepted in a burst (the bucket's size).
    public var helloBurst: Int
    /// The most peers whose invalid messages are counted one by one; invalid messages of
    /// further peers share one counter (so a stream of garbage from ever-new identities cannot
    /// grow the coordinator's memory).
    public var maxTrackedPeers: Int

    /// The defaults: 1024 workers, 20 hellos a second in bursts of 64, 4096 tracked peers.
    public init(maxWorkers: Int = 1024, hellosPerSecond: Double = 20, helloBurst: Int = 64, maxTrackedPeers: Int = 4096) {
        self.maxWorkers = maxWorkers
        self.hellosPerSecond = hellosPerSecond
        self.helloBurst = helloBurst
        self.maxTrackedPeers = maxTrackedPeers
    }

    /// The largest frame a worker legitimately sends to a training coordinator: a
    /// `gradientResult` or a `localResult` of `parameterCount` values, or a control message with
    /// its strings at their limits — whichever is larger — plus the transport's overhead. Sizes
    /// come from the codec (`WireMessage.encodedByteCount`), not from a copy of its layout. The
    /// coordinator sets `ZMQ_MAXMSGSIZE` to this, so a peer sending anything larger is
    /// disconnected by libzmq before a byte of it is buffered beyond the limit.
    /// With the sharded exchange (`sharded`) it is a `state`: parameters and Adam's two moments.
    public static func largestWorkerMessage(parameterCount: Int, dtype: WireDType, sharded: Bool = false) -> Int64 {
        let empty = WireVector(empty: dtype)
        let values = Int64(parameterCount) * Int64(dtype.byteWidth)
        if sharded {
            let state = Int64(WireMessage.state(.init(
                jobID: 0, version: 0, optimizerStep: 0, parameters: empty, firstMoment: empty, secondMoment: empty)).encodedByteCount)
            return min(max(state + 3 * values, largestControlMessage) + transportOverhead, WireLimits.default.zmqMaxMessageSize)
        }
        let gradient = Int64(WireMessage.gradientResult(.init(
            jobID: 0, step: 0, version: 0, node: 0, rowCount: 0, lossSum: 0, gradient: empty)).encodedByteCount)
        let local = Int64(WireMessage.localResult(.init(
            jobID: 0, round: 0, baseVersion: 0, rowCount: 0, lossSum: 0, parameters: empty)).encodedByteCount)
        return min(max(max(gradient, local) + values, largestControlMessage) + transportOverhead, WireLimits.default.zmqMaxMessageSize)
    }

    /// The largest frame a worker legitimately sends to a scoring coordinator: a `scoreResult`
    /// of a full chunk (`chunkRows` statuses and log-densities and, with latents,
    /// `chunkRows × dimension` values) or a control message, whichever is larger, plus the
    /// transport's overhead; sizes from the codec.
    public static func largestScoringWorkerMessage(chunkRows: Int, dimension: Int, dtype: WireDType, wantLatent: Bool) -> Int64 {
        let empty = WireVector(empty: dtype)
        let width = Int64(dtype.byteWidth), rows = Int64(chunkRows)
        let frame = Int64(WireMessage.scoreResult(.init(
            jobID: 0, chunk: 0, firstRow: 0, rowCount: 0, statuses: Array(repeating: .ok, count: chunkRows), logProbs: empty,
            latent: wantLatent ? .init(dimension: UInt32(clamping: dimension), values: empty) : nil)).encodedByteCount)
        let values = rows * width + (wantLatent ? rows * Int64(dimension) * width : 0)
        return min(max(frame + values, largestControlMessage) + transportOverhead, WireLimits.default.zmqMaxMessageSize)
    }

    /// The largest control message a worker sends (`hello`, `error`, `goodbye`, `heartbeat`),
    /// every string at `WireLimits.default.maxStringBytes`.
    static let largestControlMessage: Int64 = {
        let long = String(repeating: "x", count: WireLimits.default.maxStringBytes)
        let messages: [WireMessage] = [
            .hello(.init(
                instance: 0, processID: 0, name: long, host: long,
                capabilities: .init(dtypes: .all, blasThreads: 0, blasKernel: long, maxMicroBatchRows: 0))),
            .error(.init(code: .internal, jobID: 0, step: 0, item: 0, message: long)),
            .goodbye(.init(reason: long)),
            .heartbeat(.init(sequence: 0, currentStep: 0)),
        ]
        return messages.map { Int64($0.encodedByteCount) }.max()!
    }()

    /// Bytes libzmq counts against `ZMQ_MAXMSGSIZE` beyond the protocol message: with CURVE the
    /// limit applies to the encrypted ZMTP frame (command name, nonce, MAC), some 40 bytes more.
    public static let transportOverhead: Int64 = 256

    /// The send high-water mark (messages queued per worker) of a coordinator whose plan has
    /// `shardCount` shards: room for every shard's rows, the parameters, an assignment and
    /// heartbeats, twice over (a reassignment resends). A stalled peer's queue stops there; the
    /// messages beyond are dropped and the heartbeat rules retire the peer.
    public static func coordinatorSendHighWaterMark(shardCount: Int) -> Int {
        2 * shardCount + 64
    }

    /// The receive high-water mark (messages queued per worker): a step's results from one
    /// worker plus heartbeats. libzmq stops reading a peer's connection when its queue is full,
    /// so a flooding peer holds at most this many frames of at most
    /// ``largestWorkerMessage(parameterCount:dtype:)`` bytes.
    public static func coordinatorReceiveHighWaterMark(microBatchesPerStep: Int) -> Int {
        microBatchesPerStep + 64
    }
}
