/// Bounds the decoder enforces before it allocates anything.
///
/// Every count read from the wire is checked against its limit here *and* against the bytes
/// that remain in the message, so a decoder never allocates more than the bytes present
/// justify. The socket layer should set `ZMQ_MAXMSGSIZE` to ``zmqMaxMessageSize`` so that
/// libzmq drops oversized frames before they are even assembled.
public struct WireLimits: Sendable, Equatable, Hashable {
    /// Largest accepted frame, header included (default 1 GiB).
    public var maxFrameBytes: Int
    /// Largest accepted string, in UTF-8 bytes (default 1 KiB). Senders shorten longer text
    /// with ``WireMessage/truncatedUTF8(_:maxBytes:)``.
    public var maxStringBytes: Int
    /// Most elements of one numeric array: parameters, gradients, rows, log-probs, statuses,
    /// one permutation (default 2^28). The frame limit usually binds first: 2^28 `float32`
    /// values are already 1 GiB.
    public var maxVectorElements: Int
    /// Most micro-batch indices in one assignment (default 65536).
    public var maxMicroBatches: Int

    /// Limits with the defaults above.
    public init(
        maxFrameBytes: Int = 1 << 30,
        maxStringBytes: Int = 1024,
        maxVectorElements: Int = 1 << 28,
        maxMicroBatches: Int = 65536
    ) {
        self.maxFrameBytes = maxFrameBytes
        self.maxStringBytes = maxStringBytes
        self.maxVectorElements = maxVectorElements
        self.maxMicroBatches = maxMicroBatches
    }

    /// The defaults: 1 GiB frames, 1 KiB strings, 2^28-element arrays, 65536 micro-batches.
    public static let `default` = WireLimits()

    /// The value for libzmq's `ZMQ_MAXMSGSIZE` socket option (an `int64_t`), equal to
    /// ``maxFrameBytes``.
    public var zmqMaxMessageSize: Int64 { Int64(maxFrameBytes) }
}
