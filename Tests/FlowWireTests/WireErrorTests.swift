import Testing
import FlowWire

/// One crafted input per reason (and several per field kind), with the exact error expected.
struct WireErrorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let bytes: [UInt8]
        let expected: WireError
        var limits = WireLimits.default
        var testDescription: String { name }
    }

    static let heartbeat = WireMessage.heartbeat(.init(sequence: 1)).encoded()
    static let emptyParameters = WireMessage.parameters(.init(jobID: 0, version: 0, values: .float32([]))).encoded()
    static let assignment = WireMessage.assignment(.init(jobID: 7, step: 3, version: 3, items: [12, 13])).encoded()
    static let gradient = WireMessage.gradientResult(.init(
        jobID: 1, step: 2, version: 2, node: 5, rowCount: 4, lossSum: 0.5, gradient: .float32([1, -2]))).encoded()

    static func goodbye(rawReason: [UInt8]) -> [UInt8] {
        [0x54, 0x52, 0x42, 0x57, 0x06, 0x00, 0x0D, 0x00] + patched([0, 0, 0, 0], at: 0, UInt32(rawReason.count)) + rawReason
    }

    static let cases: [Case] = [
        // truncated
        Case(name: "empty input", bytes: [], expected: .truncated(field: "magic", needed: 4, available: 0)),
        Case(name: "half a magic", bytes: [0x54, 0x52], expected: .truncated(field: "magic", needed: 4, available: 2)),
        Case(name: "header only", bytes: Array(heartbeat[0..<8]),
             expected: .truncated(field: "heartbeat.sequence", needed: 8, available: 0)),
        Case(name: "inside a u64", bytes: Array(heartbeat[0..<10]),
             expected: .truncated(field: "heartbeat.sequence", needed: 8, available: 2)),
        Case(name: "missing presence byte", bytes: Array(heartbeat.dropLast()),
             expected: .truncated(field: "heartbeat.currentStep.present", needed: 1, available: 0)),
        Case(name: "vector count without data", bytes: patched(emptyParameters, at: 25, UInt32(0x0FFF_FFFF)),
             expected: .truncated(field: "parameters.values", needed: 0x0FFF_FFFF * 4, available: 0)),
        Case(name: "string longer than the message", bytes: patched(goodbye(rawReason: [0x61]), at: 8, UInt32(5)),
             expected: .truncated(field: "goodbye.reason", needed: 5, available: 1)),
        // badMagic
        Case(name: "wrong magic", bytes: patched(heartbeat, at: 3, UInt8(0x58)), expected: .badMagic(found: [0x54, 0x52, 0x42, 0x58])),
        Case(name: "HTTP request", bytes: Array("GET / HTTP/1.1\r\n".utf8), expected: .badMagic(found: [0x47, 0x45, 0x54, 0x20])),
        // unsupportedVersion
        Case(name: "version 1 (not an error)", bytes: patched(heartbeat, at: 4, UInt16(1)), expected: .unsupportedVersion(found: 1)),
        Case(name: "version 2", bytes: patched(heartbeat, at: 4, UInt16(2)), expected: .unsupportedVersion(found: 2)),
        Case(name: "version 3", bytes: patched(heartbeat, at: 4, UInt16(3)), expected: .unsupportedVersion(found: 3)),
        Case(name: "version 7", bytes: patched(heartbeat, at: 4, UInt16(7)), expected: .unsupportedVersion(found: 7)),
        Case(name: "version 0", bytes: patched(heartbeat, at: 4, UInt16(0)), expected: .unsupportedVersion(found: 0)),
        Case(name: "version 512 (big-endian 2)", bytes: patched(heartbeat, at: 4, UInt16(0x0200)), expected: .unsupportedVersion(found: 512)),
        // unknownKind
        Case(name: "kind 0", bytes: patched(heartbeat, at: 6, UInt8(0)), expected: .unknownKind(found: 0)),
        Case(name: "kind 20", bytes: patched(heartbeat, at: 6, UInt8(20)), expected: .unknownKind(found: 20)),
        Case(name: "kind 255", bytes: patched(heartbeat, at: 6, UInt8(255)), expected: .unknownKind(found: 255)),
        // trailingBytes
        Case(name: "two extra bytes", bytes: heartbeat + [0, 0], expected: .trailingBytes(count: 2)),
        Case(name: "vector count one short", bytes: patched(gradient, at: 73, UInt32(1)), expected: .trailingBytes(count: 4)),
        // countTooLarge
        Case(name: "item count 0xFFFFFFFF", bytes: patched(assignment, at: 32, UInt32.max),
             expected: .countTooLarge(field: "assignment.items", count: Int(UInt32.max), limit: 65536)),
        Case(name: "vector count 0xFFFFFFFF", bytes: patched(emptyParameters, at: 25, UInt32.max),
             expected: .countTooLarge(field: "parameters.values", count: Int(UInt32.max), limit: 1 << 28)),
        Case(name: "string of 1025 bytes", bytes: goodbye(rawReason: Array(repeating: 0x61, count: 1025)),
             expected: .countTooLarge(field: "goodbye.reason", count: 1025, limit: 1024)),
        Case(name: "frame over the limit", bytes: heartbeat, expected: .countTooLarge(field: "frame", count: 21, limit: 16),
             limits: WireLimits(maxFrameBytes: 16)),
        // invalidUTF8
        Case(name: "invalid continuation", bytes: goodbye(rawReason: [0xC3, 0x28]), expected: .invalidUTF8(field: "goodbye.reason")),
        Case(name: "overlong NUL", bytes: goodbye(rawReason: [0xC0, 0x80]), expected: .invalidUTF8(field: "goodbye.reason")),
        Case(name: "surrogate", bytes: goodbye(rawReason: [0xED, 0xA0, 0x80]), expected: .invalidUTF8(field: "goodbye.reason")),
        Case(name: "above U+10FFFF", bytes: goodbye(rawReason: [0xF4, 0x90, 0x80, 0x80]), expected: .invalidUTF8(field: "goodbye.reason")),
        Case(name: "cut sequence", bytes: goodbye(rawReason: [0x61, 0xE6, 0xBC]), expected: .invalidUTF8(field: "goodbye.reason")),
        // nonFinite
        Case(name: "NaN in a gradient", bytes: patched(gradient, at: 81, Float.nan.bitPattern),
             expected: .nonFinite(field: "gradientResult.gradient", index: 1)),
        Case(name: "infinite loss", bytes: patched(gradient, at: 48, Double.infinity.bitPattern),
             expected: .nonFinite(field: "gradientResult.lossSum", index: nil)),
        // outOfRange
        Case(name: "reserved flags", bytes: patched(heartbeat, at: 7, UInt8(1)),
             expected: .outOfRange(field: "flags", value: "1", allowed: "0 (reserved)")),
        Case(name: "negative compute time", bytes: patched(gradient, at: 56, (-1.0).bitPattern),
             expected: .outOfRange(field: "gradientResult.computeSeconds", value: "-1.0", allowed: "finite, at least 0")),
        Case(name: "dtype 3", bytes: patched(gradient, at: 72, UInt8(3)),
             expected: .outOfRange(field: "gradientResult.gradient.dtype", value: "3", allowed: "1 (float32) or 2 (float64)")),
        Case(name: "presence byte 2", bytes: patched(heartbeat, at: 20, UInt8(2)),
             expected: .outOfRange(field: "heartbeat.currentStep.present", value: "2", allowed: "0 or 1")),
        Case(name: "zero rows", bytes: patched(gradient, at: 40, UInt64(0)),
             expected: .outOfRange(field: "gradientResult.rowCount", value: "0", allowed: "at least 1")),
        Case(name: "empty assignment", bytes: Array(patched(assignment, at: 32, UInt32(0))[0..<36]),
             expected: .outOfRange(field: "assignment.items.count", value: "0", allowed: "1...65536")),
        Case(name: "zero liveness",
             bytes: WireMessage.welcome(.init(workerID: 1, workerInstance: 2, coordinatorInstance: 3,
                                              heartbeatIntervalMilliseconds: 1000, heartbeatLiveness: 0)).encoded(),
             expected: .outOfRange(field: "welcome.heartbeatLiveness", value: "0", allowed: "1...1000")),
        // inconsistent
        Case(name: "rows × dimension mismatch",
             bytes: WireMessage.shardRows(.init(jobID: 1, shard: 0, firstPosition: 0, rowCount: 2, dimension: 3,
                                                values: .float64([1, 2, 3, 4, 5]))).encoded(),
             expected: .inconsistent(field: "shardRows.values", reason: "has 5 elements, expected 2 rows × 3 = 6")),
        Case(name: "item listed twice",
             bytes: WireMessage.assignment(.init(jobID: 1, step: 0, version: 0, items: [4, 9, 4])).encoded(),
             expected: .inconsistent(field: "assignment.items", reason: "item 4 is listed twice")),
        Case(name: "ok row without a finite log-prob",
             bytes: WireMessage.scoreResult(.init(jobID: 1, chunk: 0, firstRow: 0, rowCount: 2, statuses: [.ok, .ok],
                                                  logProbs: .float32([-1, .nan]), latent: nil)).encoded(),
             expected: .inconsistent(field: "scoreResult.logProbs[1]", reason: "is not finite but the row's status is ok")),
        Case(name: "failed row with a number",
             bytes: WireMessage.scoreResult(.init(jobID: 1, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.nonFiniteInput],
                                                  logProbs: .float32([-1]), latent: nil)).encoded(),
             expected: .inconsistent(field: "scoreResult.logProbs[0]", reason: "is finite but the row's status is non-finite input")),
    ]

    @Test(arguments: WireErrorTests.cases)
    func craftedInputThrowsTheExpectedReason(_ c: Case) {
        let error = decodeError(c.bytes, limits: c.limits)
        #expect(error == c.expected, "\(c.name): \(hex(c.bytes.prefix(64)))")
        #expect(error?.reasonName == c.expected.reasonName)
    }

    /// Every reason is exercised above.
    @Test func everyReasonHasACase() {
        let reasons = Set(Self.cases.map(\.expected.reasonName))
        #expect(reasons == [
            "truncated", "badMagic", "unsupportedVersion", "unknownKind", "trailingBytes", "countTooLarge",
            "invalidUTF8", "nonFinite", "outOfRange", "inconsistent",
        ])
    }

    /// Semantic checks of messages whose bytes are awkward to craft, through `validate()` (the
    /// same function the decoder ends with) and through a decode of their encoding.
    @Test(arguments: [
        ("hello instance 0",
         WireMessage.hello(.init(instance: 0, processID: 1, name: "w", host: "h",
                                 capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "", maxMicroBatchRows: 1))),
         WireError.outOfRange(field: "hello.instance", value: "0", allowed: "at least 1")),
        ("hello without dtypes",
         WireMessage.hello(.init(instance: 9, processID: 1, name: "w", host: "h",
                                 capabilities: .init(dtypes: [], blasThreads: 1, blasKernel: "", maxMicroBatchRows: 1))),
         WireError.outOfRange(field: "hello.dtypes", value: "0", allowed: "1...3 (bit 0 float32, bit 1 float64)")),
        ("hello from a version-7-only worker",
         WireMessage.hello(.init(minimumVersion: 7, maximumVersion: 8, instance: 9, processID: 1, name: "w", host: "h",
                                 capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "", maxMicroBatchRows: 1))),
         WireError.inconsistent(field: "hello.minimumVersion", reason: "versions 7...8 do not include the message's version 6")),
        ("hello with an empty name",
         WireMessage.hello(.init(instance: 9, processID: 1, name: "", host: "h",
                                 capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: "", maxMicroBatchRows: 1))),
         WireError.outOfRange(field: "hello.name", value: "empty", allowed: "1 or more bytes")),
        ("batch not a multiple of the micro-batch",
         WireErrorTests.jobSpec(mode: .training(.init(seed: 0, rowCount: 10, shardCount: 4, microBatchSize: 3, batchSize: 8, sync: .gradients))),
         WireError.inconsistent(field: "jobSpec.batchSize", reason: "batch size 8 is not a multiple of the micro-batch size 3")),
        ("beta 1",
         WireErrorTests.jobSpec(mode: .training(.init(seed: 0, rowCount: 10, shardCount: 4, microBatchSize: 2, batchSize: 8,
                                       sync: .parameters(.init(localSteps: 4, beta1: 1))))),
         WireError.outOfRange(field: "jobSpec.beta1", value: "1.0", allowed: "[0, 1)")),
        ("NaN learning rate",
         WireErrorTests.jobSpec(mode: .training(.init(seed: 0, rowCount: 10, shardCount: 4, microBatchSize: 2, batchSize: 8,
                                       sync: .parameters(.init(localSteps: 4, learningRate: .nan))))),
         WireError.nonFinite(field: "jobSpec.learningRate", index: nil)),
        ("repeated permutation entry",
         WireErrorTests.jobSpec(permutations: [[0, 0, 2]]),
         WireError.inconsistent(field: "jobSpec.permutations[0]", reason: "repeats 0: not a permutation of 0..<3")),
        ("permutation entry out of range",
         WireErrorTests.jobSpec(permutations: [[0, 1, 3]]),
         WireError.outOfRange(field: "jobSpec.permutations[0]", value: "3", allowed: "0...2")),
        ("permutation count",
         WireErrorTests.jobSpec(permutations: []),
         WireError.inconsistent(field: "jobSpec.permutations", reason: "0 permutations for 1 couplings")),
        ("standardization in the wrong dtype",
         WireErrorTests.jobSpec(standardization: .init(mean: .float64([0, 0, 0]), std: .float64([1, 1, 1]))),
         WireError.inconsistent(field: "jobSpec.standardization.mean", reason: "is float64, the job's dtype is float32")),
        ("zero standard deviation",
         WireErrorTests.jobSpec(standardization: .init(mean: .float32([0, 0, 0]), std: .float32([1, 0, 1]))),
         WireError.outOfRange(field: "jobSpec.standardization.std[1]", value: "0.0", allowed: "greater than 0")),
        ("dimension 1",
         WireErrorTests.jobSpec(dimension: 1, permutations: [[0]]),
         WireError.outOfRange(field: "jobSpec.dimension", value: "1", allowed: "2...1048576")),
        ("scoring chunk of 0 rows",
         WireErrorTests.jobSpec(mode: .scoring(.init(chunkRows: 0, wantLatent: false))),
         WireError.outOfRange(field: "jobSpec.chunkRows", value: "0", allowed: "at least 1")),
        ("latent of the wrong size",
         WireMessage.scoreResult(.init(jobID: 1, chunk: 0, firstRow: 0, rowCount: 1, statuses: [.ok], logProbs: .float32([-1]),
                                       latent: .init(dimension: 2, values: .float32([1, 2, 3])))),
         WireError.inconsistent(field: "scoreResult.latent.values", reason: "has 3 elements, expected 1 rows × 2 = 2")),
        ("row range past 2^64",
         WireMessage.scoreChunk(.init(jobID: 1, chunk: 0, firstRow: UInt64.max, rowCount: 1, dimension: 2, values: .float32([1, 2]))),
         WireError.inconsistent(field: "scoreChunk.firstRow", reason: "rows 18446744073709551615 + 1 run past 2^64 − 1")),
        ("non-finite training rows",
         WireMessage.shardRows(.init(jobID: 1, shard: 0, firstPosition: 0, rowCount: 1, dimension: 2, values: .float64([1, -.infinity]))),
         WireError.nonFinite(field: "shardRows.values", index: 1)),
        ("non-finite local parameters",
         WireMessage.localResult(.init(jobID: 1, round: 0, baseVersion: 0, rowCount: 1, lossSum: 1, parameters: .float32([.nan]))),
         WireError.nonFinite(field: "localResult.parameters", index: 0)),
    ] as [(String, WireMessage, WireError)])
    func semanticChecks(name: String, message: WireMessage, expected: WireError) {
        let validation = Result { () throws(WireError) in try message.validate() }
        #expect(validation.errorValue == expected, "\(name) (validate)")
        #expect(decodeError(message.encoded()) == expected, "\(name) (decode)")
    }

    static func jobSpec(
        dimension: UInt32 = 3, permutations: [[UInt32]] = [[2, 1, 0]],
        standardization: WireMessage.JobSpec.Standardization? = nil,
        mode: WireMessage.JobSpec.Mode = .scoring(.init(chunkRows: 10, wantLatent: true))
    ) -> WireMessage {
        .jobSpec(.init(
            jobID: 1, dtype: .float32,
            architecture: .init(dimension: dimension, couplings: 1, hidden: 4, depth: 1, permutations: permutations),
            standardization: standardization, mode: mode))
    }

    @Test func descriptionsNameTheFieldAndTheProblem() {
        #expect(WireError.truncated(field: "x.y", needed: 8, available: 1).description
            == "truncated message: x.y needs 8 bytes, only 1 left")
        #expect(WireError.badMagic(found: [0x47, 0x45, 0x54, 0x20]).description
            == "not a Tributary message: expected magic bytes 54 52 42 57 \"TRBW\", found 47 45 54 20")
        #expect(WireError.unsupportedVersion(found: 4).description
            == "protocol version 4 is not supported (this side speaks version 6)")
        #expect(WireError.nonFinite(field: "g", index: 3).description == "g[3] is not finite (NaN or infinity)")
        #expect(WireError.countTooLarge(field: "f", count: 9, limit: 8).description == "f: count 9 exceeds the limit 8")
        #expect(WireErrorCode.nonFinite.description == "nonFinite")
        #expect(WireErrorCode(rawValue: 999).description == "code 999")
    }
}

extension Result {
    /// The error, or `nil` on success.
    var errorValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
