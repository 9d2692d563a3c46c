import Testing
import FlowWire

/// Exact bytes, computed by hand from `docs/protocol.md`, so the encoding cannot drift silently.
struct WireMessageGoldenTests {
    /// Version 5, except `error` (kind 0x0C), which every version writes with the version-1 header.
    static func header(_ kind: UInt8) -> [UInt8] { [0x54, 0x52, 0x42, 0x57, kind == 0x0C ? 0x01 : 0x06, 0x00, kind, 0x00] }

    /// A `sync=parameters` training job with a cosine schedule and weight decay (version 2's fields).
    @Test func jobSpecLocalSGDWithSchedule() throws {
        let message = WireMessage.jobSpec(.init(
            jobID: 1, dtype: .float32,
            architecture: .init(dimension: 2, couplings: 1, hidden: 4, depth: 1, permutations: [[1, 0]]),
            standardization: nil,
            mode: .training(.init(
                seed: 5, rowCount: 100, shardCount: 4, microBatchSize: 8, batchSize: 16,
                sync: .parameters(.init(
                    localSteps: 4, learningRate: 0.5, beta1: 0.5, beta2: 0.75, epsilon: 0.25, clipNorm: nil,
                    schedule: .cosine, warmupSteps: 10, totalSteps: 100, minimumLearningRate: 0.125, weightDecay: 0.0625))))))
        let golden: [UInt8] = Self.header(0x03) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 1
            0x01,  // dtype float32
            0x02, 0x00, 0x00, 0x00,  // dimension 2
            0x01, 0x00, 0x00, 0x00,  // couplings 1
            0x04, 0x00, 0x00, 0x00,  // hidden 4
            0x01, 0x00, 0x00, 0x00,  // depth 1
            0x01, 0x00, 0x00, 0x00,  // 1 permutation
            0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // [1, 0]
            0x00,  // no standardization
            0x01,  // mode training
            0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // seed 5
            0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rowCount 100
            0x04, 0x00, 0x00, 0x00,  // shardCount 4
            0x08, 0x00, 0x00, 0x00,  // microBatchSize 8
            0x10, 0x00, 0x00, 0x00,  // batchSize 16
            0x02,  // sync parameters
            0x04, 0x00, 0x00, 0x00,  // localSteps 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE0, 0x3F,  // learningRate 0.5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE0, 0x3F,  // beta1 0.5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE8, 0x3F,  // beta2 0.75
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xD0, 0x3F,  // epsilon 0.25
            0x00,  // no clipNorm
            0x02,  // schedule cosine
            0x0A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // warmupSteps 10
            0x64, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // totalSteps 100
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x3F,  // minimumLearningRate 0.125
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xB0, 0x3F,  // weightDecay 0.0625
        ]
        #expect(golden.count == 150)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
        // A schedule byte other than 1 or 2 is refused, naming the field.
        var bad = golden
        bad[golden.count - 33] = 3
        #expect(throws: WireError.outOfRange(field: "jobSpec.schedule", value: "3", allowed: "1 (constant) or 2 (cosine)")) {
            try WireMessage.decode(bad)
        }
    }

    /// A `sync=sharded` job whose results carry digests (version 5's `digestResults` byte, after
    /// the optimiser's fields; only with sync byte 3).
    @Test func jobSpecShardedWithDigests() throws {
        let message = WireMessage.jobSpec(.init(
            jobID: 1, dtype: .float32,
            architecture: .init(dimension: 2, couplings: 1, hidden: 4, depth: 1, permutations: [[1, 0]]),
            standardization: nil,
            mode: .training(.init(
                seed: 5, rowCount: 100, shardCount: 4, microBatchSize: 8, batchSize: 16,
                sync: .sharded(.init(
                    localSteps: 1, learningRate: 0.5, beta1: 0.5, beta2: 0.75, epsilon: 0.25, clipNorm: nil,
                    schedule: .constant, warmupSteps: 0, totalSteps: 100, minimumLearningRate: 0, weightDecay: 0)),
                digestResults: true))))
        let bytes = message.encoded()
        #expect(bytes.count == 151)
        #expect(bytes[8 + 71] == 0x03, "sync byte")  // after jobID…batchSize (71 bytes of body)
        #expect(bytes.last == 0x01, "digestResults")
        #expect(try WireMessage.decode(bytes) == message)
        var off = bytes
        off[off.count - 1] = 0x00
        guard case .jobSpec(let decoded) = try WireMessage.decode(off), case .training(let training) = decoded.mode else {
            Issue.record("not a training jobSpec")
            return
        }
        #expect(!training.digestResults)
        // Digests with another sync are refused, naming the field.
        var gradients = decoded
        gradients.mode = .training(.init(seed: 5, rowCount: 100, shardCount: 4, microBatchSize: 8, batchSize: 16, sync: .gradients, digestResults: true))
        #expect(throws: WireError.inconsistent(field: "jobSpec.digestResults", reason: "digests are for sync=sharded only")) {
            try gradients.validate()
        }
    }

    /// An `error` keeps the version-1 header, and a decoder of version 6 reads it in version 1 to 6
    /// (so that peers of different versions can always say why they part).
    @Test func errorIsReadableInEveryVersion() throws {
        let message = WireMessage.error(.init(code: .unsupportedVersion, message: "x"))
        let bytes = message.encoded()
        #expect(bytes[4] == 0x01 && bytes[5] == 0x00)
        for version: UInt8 in [2, 3, 4, 5, 6] {
            var older = bytes
            older[4] = version
            #expect(try WireMessage.decode(older) == message)
        }
        var v7 = bytes
        v7[4] = 0x07
        #expect(throws: WireError.unsupportedVersion(found: 7)) { try WireMessage.decode(v7) }
        // Any other kind must carry version 6.
        var hello = WireMessage.hello(.init(
            instance: 1, processID: 1, name: "w", host: "h",
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "", maxMicroBatchRows: 8))).encoded()
        hello[4] = 0x01
        #expect(throws: WireError.unsupportedVersion(found: 1)) { try WireMessage.decode(hello) }
    }

    @Test func heartbeatWithoutStep() throws {
        let message = WireMessage.heartbeat(.init(sequence: 1, pendingWork: 0, currentStep: nil))
        let golden: [UInt8] = Self.header(0x0B) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // sequence u64 = 1
            0x00, 0x00, 0x00, 0x00,  // pendingWork u32 = 0
            0x00,  // currentStep absent
        ]
        #expect(golden.count == 21)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func heartbeatWithStep() throws {
        let message = WireMessage.heartbeat(.init(sequence: 0x0102_0304_0506_0708, pendingWork: 3, currentStep: 258))
        let golden: [UInt8] = Self.header(0x0B) + [
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // sequence, little-endian
            0x03, 0x00, 0x00, 0x00,  // pendingWork = 3
            0x01,  // currentStep present
            0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // currentStep = 258
        ]
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func assignment() throws {
        let message = WireMessage.assignment(.init(jobID: 7, step: 3, version: 3, items: [12, 13]))
        let golden: [UInt8] = Self.header(0x06) + [
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 7
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // step = 3
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version = 3
            0x02, 0x00, 0x00, 0x00,  // 2 items
            0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 12
            0x0D, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // 13
        ]
        #expect(golden.count == 52)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    @Test func gradientResultFloat32() throws {
        let message = WireMessage.gradientResult(.init(
            jobID: 1, step: 2, version: 2, node: 5, rowCount: 4, lossSum: 0.5, gradient: .float32([1, -2]), computeSeconds: 0.25,
            digest: 0x0102_0304_0506_0708))
        let golden: [UInt8] = Self.header(0x07) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 1
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // step = 2
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version = 2
            0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // node = 5
            0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rowCount = 4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE0, 0x3F,  // lossSum = 0.5 (0x3FE0000000000000)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xD0, 0x3F,  // computeSeconds = 0.25 (0x3FD0000000000000)
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,  // digest = 0x0102030405060708 (version 5)
            0x01,  // dtype float32
            0x02, 0x00, 0x00, 0x00,  // 2 elements
            0x00, 0x00, 0x80, 0x3F,  // 1.0 (0x3F800000)
            0x00, 0x00, 0x00, 0xC0,  // -2.0 (0xC0000000)
        ]
        #expect(golden.count == 85)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    /// A `segment` (version 4's sharded exchange): an owner's fold of segments 2..<4.
    @Test func segmentFold() throws {
        let message = WireMessage.segment(.init(
            jobID: 1, step: 2, epoch: 3, token: 9, sender: 4, isReduced: true, node: 0, firstSegment: 2, segmentCount: 2, rowCount: 8,
            lossSum: 0.5, values: .float32([1, -2])))
        let golden: [UInt8] = Self.header(0x10) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 1
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // step = 2
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // epoch = 3
            0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // token = 9
            0x04, 0x00, 0x00, 0x00,  // sender = 4
            0x01,  // isReduced
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // node = 0
            0x02, 0x00, 0x00, 0x00,  // firstSegment = 2
            0x02, 0x00, 0x00, 0x00,  // segmentCount = 2
            0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rowCount = 8
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xE0, 0x3F,  // lossSum = 0.5
            0x01,  // dtype float32
            0x02, 0x00, 0x00, 0x00,  // 2 elements
            0x00, 0x00, 0x80, 0x3F,  // 1.0
            0x00, 0x00, 0x00, 0xC0,  // -2.0
        ]
        #expect(golden.count == 90)
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
        // Segments past the 64th are refused, naming the field.
        var bad = golden
        bad[8 + 8 + 8 + 8 + 8 + 4 + 1 + 8] = 63  // firstSegment 63, with 2 segments
        #expect(throws: WireError.outOfRange(field: "segment.segmentCount", value: "2", allowed: "1...1")) { try WireMessage.decode(bad) }
    }

    /// A `roster` of two workers, one with a key field left empty (no CURVE).
    @Test func roster() throws {
        let message = WireMessage.roster(.init(
            jobID: 1, epoch: 2, version: 3, token: 4, workerIDs: [5, 6], endpoints: ["a", "bc"], keys: ["", ""]))
        let golden: [UInt8] = Self.header(0x0E) + [
            0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // jobID = 1
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // epoch = 2
            0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // version = 3
            0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // token = 4
            0x02, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,  // workerIDs [5, 6]
            0x02, 0x00, 0x00, 0x00,  // 2 endpoints
            0x01, 0x00, 0x00, 0x00, 0x61,  // "a"
            0x02, 0x00, 0x00, 0x00, 0x62, 0x63,  // "bc"
            0x02, 0x00, 0x00, 0x00,  // 2 keys
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // "", ""
        ]
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
        // The owner of each of the 64 segments: contiguous ranges, one per worker.
        if case .roster(let r) = message {
            #expect(r.segments(ownedBy: 0) == 0..<32 && r.segments(ownedBy: 1) == 32..<64)
        }
        let three = WireMessage.Roster(jobID: 1, epoch: 1, version: 0, workerIDs: [1, 2, 3], endpoints: ["a", "b", "c"], keys: ["", "", ""])
        #expect(three.segments(ownedBy: 0) == 0..<22 && three.segments(ownedBy: 1) == 22..<43 && three.segments(ownedBy: 2) == 43..<64)
        let many = WireMessage.Roster(
            jobID: 1, epoch: 1, version: 0, workerIDs: (1...70).map { UInt32($0) }, endpoints: Array(repeating: "a", count: 70),
            keys: Array(repeating: "", count: 70))
        #expect(many.segments(ownedBy: 63) == 63..<64 && many.segments(ownedBy: 64).isEmpty)
    }

    @Test func goodbyeWithMultibyteText() throws {
        let message = WireMessage.goodbye(.init(reason: "né"))
        let golden: [UInt8] = Self.header(0x0D) + [0x03, 0x00, 0x00, 0x00, 0x6E, 0xC3, 0xA9]
        #expect(message.encoded() == golden, "\(hex(message.encoded()))")
        #expect(try WireMessage.decode(golden) == message)
    }

    /// The kind numbers are part of the protocol.
    @Test func kindNumbers() {
        let expected: [(WireMessage.Kind, UInt8)] = [
            (.hello, 1), (.welcome, 2), (.jobSpec, 3), (.shardRows, 4), (.parameters, 5), (.assignment, 6),
            (.gradientResult, 7), (.localResult, 8), (.scoreChunk, 9), (.scoreResult, 10), (.heartbeat, 11),
            (.error, 12), (.goodbye, 13), (.roster, 14), (.reduce, 15), (.segment, 16), (.stepReady, 17),
            (.stateRequest, 18), (.state, 19),
        ]
        for (kind, code) in expected { #expect(kind.rawValue == code, "\(kind)") }
        #expect(WireMessage.Kind.allCases.count == expected.count)
        #expect(WireDType.float32.rawValue == 1 && WireDType.float64.rawValue == 2)
        #expect(WireRowStatus.allCases.map(\.rawValue) == [0, 1, 2, 3])
    }
}

extension WireMessageGoldenTests {
    /// A fresh state (optimizerStep 0) may leave out its zero moments (version 5): both, and only
    /// then; the receiver reads them as P zeros.
    @Test func stateWithoutMomentsOnlyWhenFresh() throws {
        let empty = WireVector.float32([])
        var fresh = WireMessage.TrainingState(
            jobID: 1, version: 0, optimizerStep: 0, parameters: .float32([1, 2, 3]), firstMoment: empty, secondMoment: empty)
        try fresh.validate()
        let decoded = try WireMessage.decode(WireMessage.state(fresh).encoded())
        #expect(decoded == .state(fresh))
        let moments = try #require(fresh.moments(as: Float.self))
        #expect(moments.first == [0, 0, 0] && moments.second == [0, 0, 0])
        #expect(fresh.moments(as: Double.self) == nil)
        fresh.optimizerStep = 1
        #expect(throws: WireError.inconsistent(field: "state.firstMoment", reason: "0 float32 values; the parameters have 3 float32")) {
            try fresh.validate()
        }
        fresh.optimizerStep = 0
        fresh.secondMoment = .float32([0, 0, 0])
        #expect(throws: WireError.inconsistent(field: "state.firstMoment", reason: "0 float32 values; the parameters have 3 float32")) {
            try fresh.validate()
        }
    }
}
