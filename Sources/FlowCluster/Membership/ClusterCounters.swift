/// Counters of a coordinator's run, for monitoring (`--prometheus-textfile`, the end report):
/// what the membership and the machine did, and the bytes that crossed the coordinator's socket.
public struct ClusterCounters: Sendable, Equatable {
    /// Workers registered now.
    public var liveWorkers = 0
    /// Work items (training micro-batches, scoring chunks) handed to another worker because
    /// theirs was lost, left, or (scoring) stalled.
    public var reassigned = 0
    /// Backup copies of a slow worker's micro-batches (training).
    public var backups = 0
    /// Workers quarantined for results that disagreed.
    public var quarantines = 0
    /// Messages that did not decode or that no worker may send.
    public var invalidMessages = 0
    /// Hellos refused by the rate limit, the worker cap or a quarantine.
    public var refusedHellos = 0
    /// Valid messages dropped (duplicates, late results, unknown senders).
    public var droppedMessages = 0
    /// Message bytes queued to workers and received from them.
    public var bytesSent = 0
    public var bytesReceived = 0

    public init() {}

    /// The counters the membership keeps (live workers, quarantines, invalid messages, refused
    /// hellos) with the machine's `reassigned`, `backups` and `dropped` and the router's `bytes`.
    init<Role>(membership: MembershipTable<Role>, reassigned: Int, backups: Int = 0, dropped: Int, bytes: (sent: Int, received: Int)) {
        liveWorkers = membership.members.count
        quarantines = membership.quarantinedInstances.count
        invalidMessages = membership.invalidMessageCount
        refusedHellos = membership.refusedHellos
        self.reassigned = reassigned
        self.backups = backups
        droppedMessages = dropped
        bytesSent = bytes.sent
        bytesReceived = bytes.received
    }
}
