extension WireMessage {
    /// `segment` (kind 0x10, worker → worker, `sync=sharded`): values of segments
    /// `firstSegment ..< firstSegment + segmentCount` of a vector: a worker's partial (the value of
    /// tree node ``node``, ``isReduced`` false) sent to the segments' owner, or an owner's fold of
    /// the step (the root, ``isReduced`` true) sent to every worker.
    public struct Segment: Sendable, Equatable {
        /// The job.
        public var jobID: UInt64
        /// The step.
        public var step: UInt64
        /// The roster's epoch.
        public var epoch: UInt64
        /// The roster's token (a segment with another is dropped).
        public var token: UInt64
        /// The sending worker's id.
        public var sender: UInt32
        /// Whether the values are the step's root (an owner's fold) rather than a node's partial.
        public var isReduced: Bool
        /// The node (`TreeNode.key`) of a partial; 0 for a fold.
        public var node: UInt64
        /// The first segment (0..<64).
        public var firstSegment: UInt32
        /// Segments covered (1...64 − firstSegment).
        public var segmentCount: UInt32
        /// Rows under the node (or the step).
        public var rowCount: UInt64
        /// Σ −log p over those rows (finite).
        public var lossSum: Double
        /// The values of the segments, in order (finite).
        public var values: WireVector
        /// Not on the wire: the CURVE key (Z85) of the connection the segment came over, set by
        /// the receiving worker under CURVE (nil: sent by the worker to itself, or no CURVE).
        public var senderKey: String?

        /// A segment message with the given fields.
        public init(
            jobID: UInt64, step: UInt64, epoch: UInt64, token: UInt64 = 0, sender: UInt32, isReduced: Bool, node: UInt64,
            firstSegment: UInt32, segmentCount: UInt32, rowCount: UInt64, lossSum: Double, values: WireVector
        ) {
            self.token = token
            self.jobID = jobID
            self.step = step
            self.epoch = epoch
            self.sender = sender
            self.isReduced = isReduced
            self.node = node
            self.firstSegment = firstSegment
            self.segmentCount = segmentCount
            self.rowCount = rowCount
            self.lossSum = lossSum
            self.values = values
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("segment.jobID")
            step = try reader.u64("segment.step")
            epoch = try reader.u64("segment.epoch")
            token = try reader.u64("segment.token")
            sender = try reader.u32("segment.sender")
            isReduced = try reader.bool("segment.isReduced")
            node = try reader.u64("segment.node")
            firstSegment = try reader.u32("segment.firstSegment")
            segmentCount = try reader.u32("segment.segmentCount")
            rowCount = try reader.u64("segment.rowCount")
            lossSum = try reader.f64("segment.lossSum")
            values = try reader.vector("segment.values")
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u64(step)
            sink.u64(epoch)
            sink.u64(token)
            sink.u32(sender)
            sink.bool(isReduced)
            sink.u64(node)
            sink.u32(firstSegment)
            sink.u32(segmentCount)
            sink.u64(rowCount)
            sink.f64(lossSum)
            sink.vector(values, "segment.values")
        }

        /// The bytes of `WireMessage.segment(self)` with ``values`` replaced by `elements`
        /// (`Float` or `Double`, the job's dtype) — encoded straight from the caller's buffer, one
        /// copy, where building a `WireVector` first would make two. ``values`` itself is ignored.
        public func encoded<T: BinaryFloatingPoint>(values elements: UnsafeBufferPointer<T>) -> [UInt8] {
            var encoder = Encoder<T>(self, valueCount: elements.count)
            encoder.append(elements)
            return encoder.bytes
        }

        /// The bytes of a segment message whose values are appended piece by piece (an owner's
        /// fold, one segment at a time as each is folded), each copied once.
        public struct Encoder<T: BinaryFloatingPoint> {
            /// The message so far; complete once every announced value is appended.
            public private(set) var bytes: [UInt8]
            /// Values still to append.
            public private(set) var remaining: Int

            /// A message with `header`'s fields (its ``values`` ignored) and room for `valueCount` values.
            public init(_ header: Segment, valueCount: Int) {
                precondition(T.self == Float.self || T.self == Double.self, "FlowWire: segment values are Float or Double")
                precondition(valueCount <= Int(UInt32.max), "FlowWire: segment of \(valueCount) elements")
                var empty = header
                empty.values = WireVector(empty: T.self == Float.self ? .float32 : .float64)
                var bytes = WireMessage.segment(empty).encoded()
                bytes.reserveCapacity(bytes.count + valueCount * MemoryLayout<T>.size)
                // The empty vector's count is the last four bytes: patch it.
                withUnsafeBytes(of: UInt32(valueCount).littleEndian) { count in
                    for i in 0..<4 { bytes[bytes.count - 4 + i] = count[i] }
                }
                self.bytes = bytes
                remaining = valueCount
            }

            /// Appends the next values.
            public mutating func append(_ elements: UnsafeBufferPointer<T>) {
                precondition(elements.count <= remaining, "FlowWire: \(elements.count) values appended, \(remaining) expected")
                remaining -= elements.count
                #if _endian(big)
                for x in elements {
                    if let f = x as? Float { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes += $0 } }
                    if let d = x as? Double { withUnsafeBytes(of: d.bitPattern.littleEndian) { bytes += $0 } }
                }
                #else
                bytes.append(contentsOf: UnsafeRawBufferPointer(elements))
                #endif
            }
        }

        /// Checks the fields (see `docs/protocol.md`, `segment`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            try WireCheck.range(firstSegment, 0...63, "segment.firstSegment")
            try WireCheck.range(segmentCount, 1...(64 - firstSegment), "segment.segmentCount")
            try WireCheck.positive(rowCount, "segment.rowCount")
            try WireCheck.finite(lossSum, "segment.lossSum")
            try WireCheck.vector(values, "segment.values", limits)
            try WireCheck.finite(values, "segment.values")
        }
    }
}
