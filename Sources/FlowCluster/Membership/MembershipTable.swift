import FlowWire

/// Who is in a job, for a coordinator's state machine (training and scoring alike): ROUTER
/// identities ↔ worker ids, the fields every peer has, the gate a hello passes (rate limit,
/// quarantine by instance and by CURVE key, worker cap, protocol version, dtype), liveness
/// (deaths and heartbeats due), and bounded counters of what peers did wrong.
///
/// It decides nothing about work: the machine that owns it keeps its per-worker state in
/// `Role` and does its own bookkeeping when a member goes. Socket-free, like the machines.
public struct MembershipTable<Role: Sendable & Equatable>: Sendable {
    /// One live worker: the fields common to every job, and the job's own (`role`, whose
    /// fields read as the member's own: `member.shards`).
    @dynamicMemberLookup
    public struct Member: Sendable, Equatable {
        public let id: UInt32
        /// Its ROUTER identity.
        public let identity: [UInt8]
        public let name: String
        /// The instance id of its process (new on every start).
        public let instance: UInt64
        /// Its CURVE public key (Z85; the ZAP user id of its connection), when known.
        public let key: String?
        public var lastHeard: Double
        public var lastSent: Double
        /// What the job's machine keeps about it.
        public var role: Role

        public subscript<T>(dynamicMember path: WritableKeyPath<Role, T>) -> T {
            get { role[keyPath: path] }
            set { role[keyPath: path] = newValue }
        }
    }

    /// Why a hello was not admitted, and what to answer.
    public struct Refusal: Sendable, Equatable {
        /// The reply to send the peer (nil: nothing, so that a flood gets no amplification).
        public var reply: WireMessage?
        /// Set when the refusal is counted in `refusedHellos` and due a log line (the 1st, 2nd,
        /// 4th, 8th, … refusal): the reason, and the count so far.
        public var log: (reason: String, total: Int)?

        public static func == (a: Refusal, b: Refusal) -> Bool {
            a.reply == b.reply && a.log?.reason == b.log?.reason && a.log?.total == b.log?.total
        }
    }

    /// What peers may make the coordinator hold or do.
    public let limits: ClusterLimits
    /// The dtype the job needs.
    public let dtype: WireDType
    /// Heartbeat interval (s) and the missed intervals after which a peer is dead.
    public let heartbeatInterval: Double
    public let heartbeatLiveness: Int
    /// The goodbye reason a quarantined worker's hello gets.
    public let quarantineReply: String

    /// Live members by id.
    public internal(set) var members: [UInt32: Member] = [:]
    /// Hellos refused by the rate limit, the worker cap or a quarantine.
    public private(set) var refusedHellos = 0
    /// Invalid messages received, per peer identity (at most `limits.maxTrackedPeers` peers;
    /// see `invalidMessagesFromUntrackedPeers`).
    public private(set) var invalidMessages: [[UInt8]: Int] = [:]
    /// Invalid messages from peers beyond the `limits.maxTrackedPeers` tracked one by one.
    public private(set) var invalidMessagesFromUntrackedPeers = 0
    /// Instances of quarantined workers: their hellos are refused.
    public private(set) var quarantinedInstances: Set<UInt64> = []
    /// CURVE keys (Z85) of quarantined workers: hellos over connections with them are refused.
    public private(set) var quarantinedKeys: Set<String> = []

    private var identities: [[UInt8]: UInt32] = [:]
    private var nextID: UInt32 = 1
    /// The hello token bucket: tokens left, and when it was last refilled (nil: full).
    private var helloTokens = 0.0
    private var helloRefilled: Double?

    public init(limits: ClusterLimits, dtype: WireDType, heartbeatInterval: Double, heartbeatLiveness: Int, quarantineReply: String) {
        self.limits = limits
        self.dtype = dtype
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatLiveness = heartbeatLiveness
        self.quarantineReply = quarantineReply
    }

    /// The live members' ids, sorted.
    public var liveIDs: [UInt32] { members.keys.sorted() }

    /// The id of the member behind `identity`, if it is one.
    public func id(of identity: [UInt8]) -> UInt32? { identities[identity] }

    /// A message arrived from `identity`: a member is alive.
    public mutating func heard(from identity: [UInt8], now: Double) {
        if let id = identities[identity] { members[id]?.lastHeard = now }
    }

    /// Members silent for more than `heartbeatLiveness` intervals, by id.
    public func dead(now: Double) -> [UInt32] {
        let deadline = heartbeatInterval * Double(heartbeatLiveness)
        return liveIDs.filter { now - members[$0]!.lastHeard > deadline }
    }

    /// Members sent nothing for a heartbeat interval, by id.
    public func heartbeatDue(now: Double) -> [UInt32] {
        liveIDs.filter { now - members[$0]!.lastSent >= heartbeatInterval }
    }

    // MARK: Hello

    /// Whether `hello` from `identity` (over a connection with ZAP user id `key`) may join; nil
    /// admits it. Every hello costs a token of the rate limit, whoever sends it, so that a flood
    /// (a peer re-saying hello, or many peers) cannot make the coordinator redo work at will.
    public mutating func judge(_ hello: WireMessage.Hello, from identity: [UInt8], key: String?, now: Double) -> Refusal? {
        if let last = helloRefilled {
            helloTokens = min(Double(limits.helloBurst), helloTokens + (now - last) * limits.hellosPerSecond)
        } else {
            helloTokens = Double(limits.helloBurst)
        }
        helloRefilled = now
        guard helloTokens >= 1 else {
            return refused("over the rate limit of \(limits.hellosPerSecond) hellos/s", reply: nil)
        }
        helloTokens -= 1
        if quarantinedInstances.contains(hello.instance) || key.map(quarantinedKeys.contains) == true {
            return refused("worker instance \(hello.instance) (\(hello.name)) is quarantined", reply: .goodbye(.init(reason: quarantineReply)))
        }
        if identities[identity] == nil, members.count >= limits.maxWorkers {
            return refused("the cluster is full (\(limits.maxWorkers) workers)",
                           reply: .error(.init(code: .capacity, message: "the coordinator admits at most \(limits.maxWorkers) workers")))
        }
        guard hello.minimumVersion <= WireMessage.protocolVersion, hello.maximumVersion >= WireMessage.protocolVersion else {
            return Refusal(reply: .error(.init(
                code: .unsupportedVersion,
                message: "coordinator speaks protocol \(WireMessage.protocolVersion), worker \(hello.minimumVersion)...\(hello.maximumVersion)")))
        }
        guard hello.capabilities.dtypes.contains(dtype) else {
            return Refusal(reply: .error(.init(code: .unsupportedDType, message: "the job needs \(dtype)")))
        }
        return nil
    }

    /// Adds the sender of an admitted hello as a new member (the machine removed the member its
    /// identity had, if any) and returns its id.
    public mutating func add(_ hello: WireMessage.Hello, from identity: [UInt8], key: String?, role: Role, now: Double) -> UInt32 {
        precondition(identities[identity] == nil, "add(_:from:) over a live member: remove it first")
        let id = nextID
        nextID += 1
        members[id] = Member(id: id, identity: identity, name: hello.name, instance: hello.instance, key: key, lastHeard: now, lastSent: now, role: role)
        identities[identity] = id
        return id
    }

    /// The `welcome` for member `id`, under a coordinator whose instance is `coordinator`.
    public func welcome(_ id: UInt32, coordinator: UInt64) -> WireMessage {
        .welcome(.init(
            workerID: id, workerInstance: members[id]?.instance ?? 0, coordinatorInstance: coordinator,
            heartbeatIntervalMilliseconds: UInt32(heartbeatInterval * 1000), heartbeatLiveness: UInt32(heartbeatLiveness)))
    }

    /// Forgets member `id` and returns it (nil if it was not one).
    @discardableResult
    public mutating func remove(_ id: UInt32) -> Member? {
        guard let member = members.removeValue(forKey: id) else { return nil }
        identities[member.identity] = nil
        return member
    }

    /// Refuses, from now on, hellos of `instance` and hellos over connections with `key`.
    /// Returns the key when it is new (the driver revokes it at the transport).
    public mutating func quarantine(instance: UInt64, key: String?) -> String? {
        quarantinedInstances.insert(instance)
        guard let key, quarantinedKeys.insert(key).inserted else { return nil }
        return key
    }

    // MARK: Messages

    /// Where a peer's message goes, once the membership has seen it (`triage`).
    public enum Triage: Sendable, Equatable {
        /// A hello: the machine judges and adds its sender.
        case hello(WireMessage.Hello)
        /// A worker's message (result, report, goodbye) from member `id`: the machine's business.
        case fromMember(UInt32, WireMessage)
        /// Nothing more to do (a member's heartbeat; a goodbye from a peer that is not one).
        case handled
        /// A member's message from a peer that is not one (declared dead, or the coordinator
        /// restarted): the machine counts it dropped and answers `notRegistered`.
        case notRegistered
        /// Not a message a worker may send, or bytes that did not decode: counted (`invalid`),
        /// and `reply` (if any) is sent back.
        case invalid(reason: String, reply: WireMessage?)
    }

    /// The common part of receiving `inbound` from `identity`, for both machines: a member is
    /// alive, heartbeats are consumed, and what only a member may send is told apart from what
    /// nobody may send. `results` are the result kinds the job takes (a result of another kind
    /// is invalid, whoever sends it).
    public mutating func triage(_ inbound: InboundMessage, from identity: [UInt8], results: Set<WireMessage.Kind>, now: Double) -> Triage {
        let message: WireMessage
        switch inbound {
        case .undecodable(let reason, let reply): return .invalid(reason: reason, reply: reply)
        case .message(let m): message = m
        }
        heard(from: identity, now: now)
        switch message {
        case .hello(let hello):
            return .hello(hello)
        case .gradientResult, .localResult, .scoreResult, .stepReady, .state, .heartbeat, .goodbye, .error:
            if [.gradientResult, .localResult, .scoreResult, .stepReady, .state].contains(message.kind), !results.contains(message.kind) {
                return .invalid(reason: "this job takes no \(message.kind)", reply: nil)
            }
            guard let id = identities[identity] else {
                if case .goodbye = message { return .handled }
                return .notRegistered
            }
            if case .heartbeat = message { return .handled }
            return .fromMember(id, message)
        case .welcome, .jobSpec, .shardRows, .parameters, .assignment, .scoreChunk, .roster, .reduce, .segment, .stateRequest:
            return .invalid(reason: "a worker may not send \(message.kind)", reply: nil)
        }
    }

    /// The action for a message to member `id` now: its identity, and the time noted.
    public mutating func send(_ id: UInt32, now: Double) -> [UInt8] {
        members[id]?.lastSent = now
        return members[id]?.identity ?? []
    }

    /// Counts an invalid message from `identity`; returns the reason to log (the first from a
    /// tracked peer, or the first from all untracked ones), or nil.
    public mutating func invalid(from identity: [UInt8], reason: String) -> String? {
        if invalidMessages[identity] == nil, invalidMessages.count >= limits.maxTrackedPeers {
            // Bounded state: one shared counter for the peers beyond the tracked ones, and one
            // log line for all of them.
            invalidMessagesFromUntrackedPeers += 1
            return invalidMessagesFromUntrackedPeers == 1
                ? "\(reason) (more than \(limits.maxTrackedPeers) peers sent invalid messages; those beyond are counted together)"
                : nil
        }
        let count = invalidMessages[identity, default: 0] + 1
        invalidMessages[identity] = count
        return count == 1 ? reason : nil
    }

    /// All invalid messages counted.
    public var invalidMessageCount: Int { invalidMessages.values.reduce(invalidMessagesFromUntrackedPeers, +) }

    /// The reply to a registered-only message from a peer that is not a member (it was declared
    /// dead, or the coordinator restarted): say hello again.
    public static var notRegistered: WireMessage {
        .error(.init(code: .notRegistered, message: "not registered: send hello"))
    }

    private mutating func refused(_ reason: String, reply: WireMessage?) -> Refusal {
        refusedHellos += 1
        let logged = refusedHellos & (refusedHellos - 1) == 0
        return Refusal(reply: reply, log: logged ? (reason, refusedHellos) : nil)
    }
}
