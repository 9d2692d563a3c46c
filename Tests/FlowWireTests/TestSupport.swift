import FlowWire

/// SplitMix64: a small seeded generator, so every test input can be reproduced from its seed.
struct TestRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How big a sample message's arrays are.
enum SampleSize: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Arrays as short as the message allows (empty where allowed).
    case empty
    /// A few elements.
    case small
    /// Hundreds of thousands of elements.
    case large

    var description: String { rawValue }
}

/// Random valid messages of every kind.
struct Samples {
    var rng: TestRandom

    init(seed: UInt64) { rng = TestRandom(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &rng) }
    mutating func u32(_ range: ClosedRange<UInt32>) -> UInt32 { UInt32.random(in: range, using: &rng) }
    mutating func u64() -> UInt64 { rng.next() }
    mutating func bool() -> Bool { Bool.random(using: &rng) }
    mutating func maybe<T>(_ make: (inout Samples) -> T) -> T? { bool() ? make(&self) : nil }

    /// A finite value, sometimes a special one (±0, subnormal, huge).
    mutating func finite() -> Double {
        switch int(0...19) {
        case 0: return -0.0
        case 1: return 0.0
        case 2: return Double.leastNonzeroMagnitude
        case 3: return -3e38
        case 4: return Double(Float.leastNonzeroMagnitude)
        default: return Double.random(in: -10...10, using: &rng)
        }
    }

    /// Any value: finite most of the time, NaN (quiet, with payload, negative) or ±∞ otherwise.
    mutating func anyValue() -> Double {
        switch int(0...9) {
        case 0: return .nan
        case 1: return -.infinity
        case 2: return .infinity
        case 3: return Double(bitPattern: 0x7FF8_0000_DEAD_BEEF)
        case 4: return -Double.nan
        default: return finite()
        }
    }

    mutating func vector(_ dtype: WireDType, count: Int, finite: Bool = true) -> WireVector {
        var values: [Double] = []
        values.reserveCapacity(count)
        if count > 10_000 {
            // Large arrays: fast random values (the specials matter only in small ones).
            for _ in 0..<count { values.append(Double(Int64(bitPattern: rng.next()) >> 40) / 1e6) }
            if !finite { values[count / 2] = .nan }
        } else {
            for _ in 0..<count { values.append(finite ? self.finite() : anyValue()) }
        }
        switch dtype {
        case .float32: return .float32(values.map { Float($0) })
        case .float64: return .float64(values)
        }
    }

    mutating func count(_ size: SampleSize, minimum: Int = 0, large: Int = 300_000) -> Int {
        switch size {
        case .empty: return minimum
        case .small: return int(max(minimum, 1)...max(minimum, 12))
        case .large: return large
        }
    }

    /// A string of ASCII and multi-byte characters with at most `maxBytes` UTF-8 bytes.
    mutating func string(maxBytes: Int = 40, nonEmpty: Bool = false) -> String {
        let pieces = ["a", "Z", "0", " ", "-", "é", "ß", "漢", "字", "🙂", "\u{0}", "\n", "e\u{301}"]
        var text = ""
        let target = int((nonEmpty ? 1 : 0)...maxBytes)
        while text.utf8.count < target {
            let piece = pieces[int(0...(pieces.count - 1))]
            if text.utf8.count + piece.utf8.count > maxBytes { break }
            text += piece
        }
        if nonEmpty && text.isEmpty { text = "w" }
        return text
    }

    mutating func permutation(_ dimension: Int) -> [UInt32] {
        var p = (0..<UInt32(dimension)).map { $0 }
        p.shuffle(using: &rng)
        return p
    }

    // MARK: Messages

    mutating func message(_ kind: WireMessage.Kind, dtype: WireDType, size: SampleSize) -> WireMessage {
        switch kind {
        case .hello: return .hello(hello())
        case .welcome: return .welcome(welcome())
        case .jobSpec: return .jobSpec(jobSpec(dtype: dtype, size: size))
        case .shardRows: return .shardRows(shardRows(dtype: dtype, size: size))
        case .parameters:
            return .parameters(.init(jobID: u64(), version: u64(), values: vector(dtype, count: count(size))))
        case .assignment: return .assignment(assignment(size: size))
        case .gradientResult: return .gradientResult(gradientResult(dtype: dtype, size: size))
        case .localResult:
            return .localResult(.init(
                jobID: u64(), round: u64(), baseVersion: u64(), rowCount: UInt64(int(1...1 << 40)), lossSum: finite(),
                parameters: vector(dtype, count: count(size))))
        case .scoreChunk: return .scoreChunk(scoreChunk(dtype: dtype, size: size))
        case .scoreResult: return .scoreResult(scoreResult(dtype: dtype, size: size))
        case .heartbeat:
            return .heartbeat(.init(sequence: u64(), pendingWork: u32(0...UInt32.max), currentStep: maybe { $0.u64() }))
        case .error:
            return .error(.init(
                code: WireErrorCode(rawValue: UInt16(int(0...Int(UInt16.max)))), jobID: maybe { $0.u64() },
                step: maybe { $0.u64() }, item: maybe { $0.u64() },
                message: size == .large ? string(maxBytes: 1024) : string()))
        case .goodbye:
            return .goodbye(.init(reason: size == .empty ? "" : string(maxBytes: size == .large ? 1024 : 40)))
        case .roster: return .roster(roster(size: size))
        case .reduce:
            let n = count(size, minimum: 1, large: 65_536)
            return .reduce(.init(
                jobID: u64(), step: u64(), epoch: u64(), nodes: (0..<n).map { UInt64($0) << 6 | UInt64(int(0...5)) },
                sources: (0..<n).map { _ in u32(0...UInt32.max) }))
        case .segment:
            let first = u32(0...63)
            return .segment(.init(
                jobID: u64(), step: u64(), epoch: u64(), token: u64(), sender: u32(0...UInt32.max), isReduced: bool(), node: u64(),
                firstSegment: first, segmentCount: u32(1...(64 - first)), rowCount: max(1, u64()), lossSum: finite(),
                values: vector(dtype, count: count(size))))
        case .stepReady:
            return .stepReady(.init(
                jobID: u64(), step: u64(), epoch: u64(), rowCount: max(1, u64()), meanLoss: finite(), gradientNorm: abs(finite()),
                problem: size == .empty ? "" : string(), peerBytesSent: u64()))
        case .stateRequest: return .stateRequest(.init(jobID: u64(), version: u64()))
        case .state:
            let n = count(size)
            return .state(.init(
                jobID: u64(), version: u64(), optimizerStep: u64(), parameters: vector(dtype, count: n),
                firstMoment: vector(dtype, count: n), secondMoment: vector(dtype, count: n)))
        }
    }

    mutating func roster(size: SampleSize) -> WireMessage.Roster {
        let n = count(size, minimum: 1, large: 1024)
        let ids = (0..<n).map { UInt32($0 * 3 + 1) }
        return .init(
            jobID: u64(), epoch: u64(), version: u64(), token: u64(), workerIDs: ids, endpoints: ids.map { "tcp://10.0.0.\($0 % 250):\(7000 + $0)" },
            keys: ids.map { _ in bool() ? "" : String(repeating: "a", count: 40) })
    }

    mutating func hello() -> WireMessage.Hello {
        let dtypes: [WireDTypeSet] = [.float32, .float64, .all]
        return WireMessage.Hello(
            instance: u64() | 1, processID: u32(0...UInt32.max), name: string(nonEmpty: true), host: string(),
            capabilities: .init(
                dtypes: dtypes[int(0...2)], blasThreads: u32(1...64), blasKernel: string(),
                maxMicroBatchRows: u32(1...UInt32.max)), peerEndpoint: bool() ? "" : "tcp://127.0.0.1:\(int(1...65535))")
    }

    mutating func welcome() -> WireMessage.Welcome {
        WireMessage.Welcome(
            workerID: u32(0...UInt32.max), workerInstance: u64() | 1, coordinatorInstance: u64() | 1,
            heartbeatIntervalMilliseconds: u32(1...3_600_000), heartbeatLiveness: u32(1...1000))
    }

    mutating func jobSpec(dtype: WireDType, size: SampleSize) -> WireMessage.JobSpec {
        let dimension = size == .large ? 4096 : int(2...6)
        let couplings = size == .large ? 16 : int(1...4)
        let architecture = WireMessage.JobSpec.Architecture(
            dimension: UInt32(dimension), couplings: UInt32(couplings), hidden: u32(1...65_536), depth: u32(1...64),
            permutations: (0..<couplings).map { _ in permutation(dimension) })
        let standardization: WireMessage.JobSpec.Standardization? = size == .empty ? nil : maybe { s in
            let mean = s.vector(dtype, count: dimension)
            let std = s.vector(dtype, count: dimension)
            let positive: WireVector
            switch std {
            case .float32(let v): positive = .float32(v.map { abs($0) + 0.5 })
            case .float64(let v): positive = .float64(v.map { abs($0) + 0.5 })
            }
            return .init(mean: mean, std: positive)
        }
        let mode: WireMessage.JobSpec.Mode
        if bool() {
            let micro = u32(1...1024)
            let kind = int(0...2)
            let sync: WireMessage.JobSpec.Sync = kind == 0
                ? .gradients
                : .init(kind: kind, .init(
                    localSteps: kind == 2 ? 1 : u32(1...100), learningRate: Double.random(in: 1e-5...1, using: &rng),
                    beta1: Double.random(in: 0..<1, using: &rng), beta2: Double.random(in: 0..<1, using: &rng),
                    epsilon: 1e-8, clipNorm: maybe { Double.random(in: 0.1...10, using: &$0.rng) },
                    schedule: bool() ? .constant : .cosine, warmupSteps: UInt64(int(0...100)), totalSteps: UInt64(int(100...1_000_000)),
                    minimumLearningRate: 0, weightDecay: bool() ? 0 : Double.random(in: 0...0.9, using: &rng)))
            mode = .training(.init(
                seed: u64(), rowCount: UInt64(int(1...1 << 40)), shardCount: u32(1...UInt32(Int32.max)),
                microBatchSize: micro, batchSize: micro * u32(1...64), sync: sync, digestResults: kind == 2 && bool()))
        } else {
            mode = .scoring(.init(chunkRows: u32(1...UInt32.max), wantLatent: bool()))
        }
        return .init(jobID: u64(), dtype: dtype, architecture: architecture, standardization: standardization, mode: mode)
    }

    mutating func shardRows(dtype: WireDType, size: SampleSize) -> WireMessage.ShardRows {
        let dimension = int(2...8)
        let rows = count(size, minimum: 1, large: 40_000)
        return .init(
            jobID: u64(), shard: u32(0...63), firstPosition: UInt64(int(0...1 << 50)), rowCount: UInt32(rows),
            dimension: UInt32(dimension), values: vector(dtype, count: rows * dimension))
    }

    mutating func assignment(size: SampleSize) -> WireMessage.Assignment {
        let count = count(size, minimum: 1, large: 65_536)
        var seen = Set<UInt64>()
        var list: [UInt64] = []
        while list.count < count {
            let g = bool() ? UInt64(int(0...100_000)) : u64()
            if seen.insert(g).inserted { list.append(g) }
        }
        return .init(jobID: u64(), step: u64(), version: u64(), items: list)
    }

    mutating func gradientResult(dtype: WireDType, size: SampleSize) -> WireMessage.GradientResult {
        .init(
            jobID: u64(), step: u64(), version: u64(), node: u64(), rowCount: max(1, u64()),
            lossSum: finite(), gradient: vector(dtype, count: count(size)), digest: bool() ? 0 : u64())
    }

    mutating func scoreChunk(dtype: WireDType, size: SampleSize) -> WireMessage.ScoreChunk {
        let dimension = int(2...8)
        let rows = count(size, minimum: 1, large: 40_000)
        return .init(
            jobID: u64(), chunk: u64(), firstRow: UInt64(int(0...1 << 50)), rowCount: UInt32(rows),
            dimension: UInt32(dimension), values: vector(dtype, count: rows * dimension, finite: false))
    }

    mutating func scoreResult(dtype: WireDType, size: SampleSize) -> WireMessage.ScoreResult {
        let rows = count(size, minimum: 1, large: 100_000)
        var statuses: [WireRowStatus] = []
        var logProbs: [Double] = []
        for _ in 0..<rows {
            let status = int(0...3) == 0 ? WireRowStatus.allCases[int(1...3)] : .ok
            statuses.append(status)
            if status == .ok {
                var value = finite()
                if dtype == .float32 && !Float(value).isFinite { value = 1 }
                logProbs.append(value)
            } else {
                logProbs.append([Double.nan, -.infinity, .infinity][int(0...2)])
            }
        }
        let vector: WireVector = dtype == .float32 ? .float32(logProbs.map { Float($0) }) : .float64(logProbs)
        let latent: WireMessage.ScoreResult.Latent? = maybe { s in
            let dimension = s.int(2...6)
            return .init(dimension: UInt32(dimension), values: s.vector(dtype, count: rows * dimension, finite: false))
        }
        return .init(
            jobID: u64(), chunk: u64(), firstRow: UInt64(int(0...1 << 50)), rowCount: UInt32(rows), statuses: statuses,
            logProbs: vector, latent: latent)
    }
}

extension WireMessage.JobSpec.Sync {
    /// `parameters` (kind 1) or `sharded` (kind 2) with `optimizer`.
    init(kind: Int, _ optimizer: WireMessage.JobSpec.LocalOptimizer) {
        self = kind == 2 ? .sharded(optimizer) : .parameters(optimizer)
    }
}

/// `bytes` as hexadecimal pairs, for failure messages.
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { byte in
        let digits = String(byte, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }.joined(separator: " ")
}

/// Decodes, returning the error instead of throwing it.
func decodeResult(_ bytes: [UInt8], limits: WireLimits = .default) -> Result<WireMessage, WireError> {
    Result { () throws(WireError) -> WireMessage in try WireMessage.decode(bytes, limits: limits) }
}

/// The error decoding `bytes` throws, or `nil` when it decodes.
func decodeError(_ bytes: [UInt8], limits: WireLimits = .default) -> WireError? {
    if case .failure(let error) = decodeResult(bytes, limits: limits) { return error }
    return nil
}

/// `bytes` with the little-endian `value` written at `offset`.
func patched<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _ value: T) -> [UInt8] {
    var copy = bytes
    withUnsafeBytes(of: value.littleEndian) { raw in
        for (i, byte) in raw.enumerated() { copy[offset + i] = byte }
    }
    return copy
}
