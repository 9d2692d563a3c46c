extension WireMessage {
    /// `jobSpec` (kind 0x03, coordinator → worker): everything a worker needs to take part in a
    /// job except the rows and the parameters — the dtype, the flow's architecture (with its
    /// fitted standardisation), and the training plan or scoring settings.
    ///
    /// A worker rebuilds the model as `FlowConfiguration(dimension:couplings:hidden:depth:)`
    /// with these ``Architecture/permutations`` and the `BatchPlan` from ``Training``'s fields,
    /// and must still run their own validation (this module checks ranges, not the math).
    public struct JobSpec: Sendable, Equatable {
        /// The job's id (any value; new jobs get new ids).
        public var jobID: UInt64
        /// The dtype the job computes in; every array of the job travels in it.
        public var dtype: WireDType
        /// The flow's shape.
        public var architecture: Architecture
        /// The fitted standardisation, when the flow has one.
        public var standardization: Standardization?
        /// Training or scoring, with the settings of each.
        public var mode: Mode

        /// A job specification with the given fields.
        public init(jobID: UInt64, dtype: WireDType, architecture: Architecture, standardization: Standardization?, mode: Mode) {
            self.jobID = jobID
            self.dtype = dtype
            self.architecture = architecture
            self.standardization = standardization
            self.mode = mode
        }

        /// The shape of a RealNVP flow (`FlowConfiguration`'s fields, with the same ranges).
        public struct Architecture: Sendable, Equatable {
            /// Data dimension D, 2...2^20.
            public var dimension: UInt32
            /// Coupling layers K, 1...10 000.
            public var couplings: UInt32
            /// Hidden width H, 1...65 536.
            public var hidden: UInt32
            /// Hidden layers per coupling MLP, 1...64.
            public var depth: UInt32
            /// K permutations of `0..<D` (output column j of layer l is input column `permutations[l][j]`).
            public var permutations: [[UInt32]]

            /// An architecture with the given fields.
            public init(dimension: UInt32, couplings: UInt32, hidden: UInt32, depth: UInt32, permutations: [[UInt32]]) {
                self.dimension = dimension
                self.couplings = couplings
                self.hidden = hidden
                self.depth = depth
                self.permutations = permutations
            }

            /// An architecture with the default permutation (reversal `j ↦ D−1−j`) after every coupling.
            public init(dimension: UInt32, couplings: UInt32, hidden: UInt32, depth: UInt32) {
                let reversal = dimension <= CheckedRanges.dimension.upperBound ? Array((0..<dimension).reversed()) : []
                let count = couplings <= CheckedRanges.couplings.upperBound ? Int(couplings) : 0
                self.init(
                    dimension: dimension, couplings: couplings, hidden: hidden, depth: depth,
                    permutations: Array(repeating: reversal, count: count))
            }
        }

        /// The standardisation `x ↦ (x − μ)/σ`: D means and D standard deviations in the job's dtype.
        public struct Standardization: Sendable, Equatable {
            /// μ, D finite values.
            public var mean: WireVector
            /// σ, D finite values > 0.
            public var std: WireVector

            /// A standardisation with the given statistics.
            public init(mean: WireVector, std: WireVector) {
                self.mean = mean
                self.std = std
            }
        }

        /// What the job does.
        public enum Mode: Sendable, Equatable {
            /// Train (mode byte 1).
            case training(Training)
            /// Score (mode byte 2).
            case scoring(Scoring)
        }

        /// The training plan: the `BatchPlan` inputs and how results are combined.
        public struct Training: Sendable, Equatable {
            /// The shuffling seed.
            public var seed: UInt64
            /// N, rows in the training-row list (≥ 1).
            public var rowCount: UInt64
            /// S, shards (1...2^31 − 1; the plan uses min(S, N)).
            public var shardCount: UInt32
            /// m, rows per micro-batch (≥ 1).
            public var microBatchSize: UInt32
            /// B, rows per step: a positive multiple of m.
            public var batchSize: UInt32
            /// How the coordinator combines the workers' work.
            public var sync: Sync
            /// `sync=sharded` (protocol version 5): every `gradientResult` carries the ``XXH64``
            /// digest of its partial (`--verify-fraction`: checked leaves are compared by it).
            /// Encoded only with sync byte 3; false with the other modes.
            public var digestResults: Bool

            /// A training plan with the given fields.
            public init(
                seed: UInt64, rowCount: UInt64, shardCount: UInt32, microBatchSize: UInt32, batchSize: UInt32, sync: Sync,
                digestResults: Bool = false
            ) {
                self.digestResults = digestResults
                self.seed = seed
                self.rowCount = rowCount
                self.shardCount = shardCount
                self.microBatchSize = microBatchSize
                self.batchSize = batchSize
                self.sync = sync
            }
        }

        /// The synchronisation mode of a training job.
        public enum Sync: Sendable, Equatable {
            /// Workers return per-micro-batch gradients; the coordinator sums them in order and
            /// applies the optimiser (sync byte 1; bit-identical to one process).
            case gradients
            /// Workers take local optimiser steps and return parameters; the coordinator
            /// averages them weighted by rows (sync byte 2; local SGD).
            case parameters(LocalOptimizer)
            /// Gradients as with ``gradients``, but exchanged among the workers (sync byte 3,
            /// protocol version 4): each sends every segment of its partials to the segment's
            /// owner, owners fold them in tree order and send the step's gradient segment to every
            /// worker, and every worker applies the same Adam update (the optimiser's settings are
            /// these, with `localSteps` 1). Bit-identical to one process.
            case sharded(LocalOptimizer)
        }

        /// The learning-rate shape of a ``LocalOptimizer`` (protocol version 2).
        public enum Schedule: UInt8, Sendable, Equatable {
            /// The base rate after the warm-up (schedule byte 1).
            case constant = 1
            /// Half a cosine from the base rate to the floor over the steps after the warm-up (byte 2).
            case cosine = 2
        }

        /// The workers' local Adam (AdamW with a weight decay) in `sync=parameters` mode; the
        /// rate of local step t is the schedule's value at the plan step t (docs/model.md).
        public struct LocalOptimizer: Sendable, Equatable {
            /// H, local optimiser steps per round (≥ 1).
            public var localSteps: UInt32
            /// Adam's learning rate (finite, > 0).
            public var learningRate: Double
            /// Adam's β₁, in [0, 1).
            public var beta1: Double
            /// Adam's β₂, in [0, 1).
            public var beta2: Double
            /// Adam's ε (finite, > 0).
            public var epsilon: Double
            /// Gradient-norm clipping threshold (finite, > 0), or `nil` for none.
            public var clipNorm: Double?
            /// The schedule's shape after the warm-up.
            public var schedule: Schedule
            /// Linear warm-up steps W (≤ `totalSteps`).
            public var warmupSteps: UInt64
            /// The run's plan steps T (the cosine spans T − W of them).
            public var totalSteps: UInt64
            /// The cosine's floor (finite, in [0, learningRate]; 0 with `constant`).
            public var minimumLearningRate: Double
            /// AdamW's decoupled weight decay λ (finite, ≥ 0, λ·learningRate < 1).
            public var weightDecay: Double

            init(from reader: inout WireReader) throws(WireError) {
                localSteps = try reader.u32("jobSpec.localSteps")
                learningRate = try reader.f64("jobSpec.learningRate")
                beta1 = try reader.f64("jobSpec.beta1")
                beta2 = try reader.f64("jobSpec.beta2")
                epsilon = try reader.f64("jobSpec.epsilon")
                clipNorm = try reader.optional("jobSpec.clipNorm") { (reader) throws(WireError) in
                    try reader.f64("jobSpec.clipNorm")
                }
                let scheduleCode = try reader.u8("jobSpec.schedule")
                guard let schedule = Schedule(rawValue: scheduleCode) else {
                    throw .outOfRange(field: "jobSpec.schedule", value: String(scheduleCode), allowed: "1 (constant) or 2 (cosine)")
                }
                self.schedule = schedule
                warmupSteps = try reader.u64("jobSpec.warmupSteps")
                totalSteps = try reader.u64("jobSpec.totalSteps")
                minimumLearningRate = try reader.f64("jobSpec.minimumLearningRate")
                weightDecay = try reader.f64("jobSpec.weightDecay")
            }

            func write<Sink: WireSink>(to sink: inout Sink) {
                sink.u32(localSteps)
                sink.f64(learningRate)
                sink.f64(beta1)
                sink.f64(beta2)
                sink.f64(epsilon)
                sink.optional(clipNorm) { sink, clipNorm in sink.f64(clipNorm) }
                sink.u8(schedule.rawValue)
                sink.u64(warmupSteps)
                sink.u64(totalSteps)
                sink.f64(minimumLearningRate)
                sink.f64(weightDecay)
            }

            /// Local Adam settings; the defaults are DESIGN §1's (a constant rate, no decay).
            public init(
                localSteps: UInt32, learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999,
                epsilon: Double = 1e-8, clipNorm: Double? = nil, schedule: Schedule = .constant, warmupSteps: UInt64 = 0,
                totalSteps: UInt64 = 0, minimumLearningRate: Double = 0, weightDecay: Double = 0
            ) {
                self.schedule = schedule
                self.warmupSteps = warmupSteps
                self.totalSteps = totalSteps
                self.minimumLearningRate = minimumLearningRate
                self.weightDecay = weightDecay
                self.localSteps = localSteps
                self.learningRate = learningRate
                self.beta1 = beta1
                self.beta2 = beta2
                self.epsilon = epsilon
                self.clipNorm = clipNorm
            }
        }

        /// The settings of a scoring job.
        public struct Scoring: Sendable, Equatable {
            /// Rows per ``ScoreChunk`` (≥ 1).
            public var chunkRows: UInt32
            /// Whether results carry the latents z = f(x).
            public var wantLatent: Bool

            /// Scoring settings with the given fields.
            public init(chunkRows: UInt32, wantLatent: Bool) {
                self.chunkRows = chunkRows
                self.wantLatent = wantLatent
            }
        }

        /// The ranges this module checks, mirroring `FlowConfiguration.validate()`.
        enum CheckedRanges {
            static let dimension = WireCheck.dimensionRange
            static let couplings: ClosedRange<UInt32> = 1...10_000
            static let hidden: ClosedRange<UInt32> = 1...65_536
            static let depth: ClosedRange<UInt32> = 1...64
            static let shardCount: ClosedRange<UInt32> = 1...UInt32(Int32.max)
        }

        init(from reader: inout WireReader) throws(WireError) {
            jobID = try reader.u64("jobSpec.jobID")
            dtype = try reader.dtype("jobSpec.dtype")
            let dimension = try reader.u32("jobSpec.dimension")
            let couplings = try reader.u32("jobSpec.couplings")
            let hidden = try reader.u32("jobSpec.hidden")
            let depth = try reader.u32("jobSpec.depth")
            // Each permutation takes at least its 4-byte count, so the bytes left bound the
            // number of arrays allocated here.
            let permutationCount = try reader.count(
                "jobSpec.permutations", limit: Int(CheckedRanges.couplings.upperBound), elementSize: 4)
            var permutations: [[UInt32]] = []
            permutations.reserveCapacity(permutationCount)
            for _ in 0..<permutationCount {
                permutations.append(try reader.u32Array("jobSpec.permutations", limit: reader.limits.maxVectorElements))
            }
            architecture = Architecture(
                dimension: dimension, couplings: couplings, hidden: hidden, depth: depth, permutations: permutations)
            standardization = try reader.optional("jobSpec.standardization") { (reader) throws(WireError) in
                let mean = try reader.vector("jobSpec.standardization.mean")
                let std = try reader.vector("jobSpec.standardization.std")
                return Standardization(mean: mean, std: std)
            }
            let modeCode = try reader.u8("jobSpec.mode")
            switch modeCode {
            case 1:
                let seed = try reader.u64("jobSpec.seed")
                let rowCount = try reader.u64("jobSpec.rowCount")
                let shardCount = try reader.u32("jobSpec.shardCount")
                let microBatchSize = try reader.u32("jobSpec.microBatchSize")
                let batchSize = try reader.u32("jobSpec.batchSize")
                let syncCode = try reader.u8("jobSpec.sync")
                let sync: Sync
                var digestResults = false
                switch syncCode {
                case 1:
                    sync = .gradients
                case 2:
                    sync = .parameters(try LocalOptimizer(from: &reader))
                case 3:
                    sync = .sharded(try LocalOptimizer(from: &reader))
                    digestResults = try reader.bool("jobSpec.digestResults")
                default:
                    throw .outOfRange(field: "jobSpec.sync", value: String(syncCode), allowed: "1 (gradients), 2 (parameters) or 3 (sharded)")
                }
                mode = .training(Training(
                    seed: seed, rowCount: rowCount, shardCount: shardCount, microBatchSize: microBatchSize,
                    batchSize: batchSize, sync: sync, digestResults: digestResults))
            case 2:
                let chunkRows = try reader.u32("jobSpec.chunkRows")
                let wantLatent = try reader.bool("jobSpec.wantLatent")
                mode = .scoring(Scoring(chunkRows: chunkRows, wantLatent: wantLatent))
            default:
                throw .outOfRange(field: "jobSpec.mode", value: String(modeCode), allowed: "1 (training) or 2 (scoring)")
            }
        }

        func write<Sink: WireSink>(to sink: inout Sink) {
            sink.u64(jobID)
            sink.u8(dtype.rawValue)
            sink.u32(architecture.dimension)
            sink.u32(architecture.couplings)
            sink.u32(architecture.hidden)
            sink.u32(architecture.depth)
            sink.count(architecture.permutations.count, "jobSpec.permutations")
            for permutation in architecture.permutations {
                sink.u32Array(permutation, "jobSpec.permutations")
            }
            sink.optional(standardization) { sink, standardization in
                sink.vector(standardization.mean, "jobSpec.standardization.mean")
                sink.vector(standardization.std, "jobSpec.standardization.std")
            }
            switch mode {
            case .training(let training):
                sink.u8(1)
                sink.u64(training.seed)
                sink.u64(training.rowCount)
                sink.u32(training.shardCount)
                sink.u32(training.microBatchSize)
                sink.u32(training.batchSize)
                switch training.sync {
                case .gradients:
                    sink.u8(1)
                case .parameters(let optimizer):
                    sink.u8(2)
                    optimizer.write(to: &sink)
                case .sharded(let optimizer):
                    sink.u8(3)
                    optimizer.write(to: &sink)
                    sink.bool(training.digestResults)
                }
            case .scoring(let scoring):
                sink.u8(2)
                sink.u32(scoring.chunkRows)
                sink.bool(scoring.wantLatent)
            }
        }

        /// Checks the fields (see `docs/protocol.md`, `jobSpec`).
        public func validate(limits: WireLimits = .default) throws(WireError) {
            let a = architecture
            try WireCheck.range(a.dimension, CheckedRanges.dimension, "jobSpec.dimension")
            try WireCheck.range(a.couplings, CheckedRanges.couplings, "jobSpec.couplings")
            try WireCheck.range(a.hidden, CheckedRanges.hidden, "jobSpec.hidden")
            try WireCheck.range(a.depth, CheckedRanges.depth, "jobSpec.depth")
            guard a.permutations.count == Int(a.couplings) else {
                throw .inconsistent(
                    field: "jobSpec.permutations", reason: "\(a.permutations.count) permutations for \(a.couplings) couplings")
            }
            let dimension = Int(a.dimension)
            var seen = [Bool](repeating: false, count: dimension)
            for (l, permutation) in a.permutations.enumerated() {
                let field = "jobSpec.permutations[\(l)]"
                try WireCheck.count(permutation.count, limits.maxVectorElements, field)
                guard permutation.count == dimension else {
                    throw .inconsistent(field: field, reason: "has \(permutation.count) entries, expected \(dimension)")
                }
                for i in seen.indices { seen[i] = false }
                for entry in permutation {
                    guard entry < a.dimension else {
                        throw .outOfRange(field: field, value: String(entry), allowed: "0...\(a.dimension - 1)")
                    }
                    guard !seen[Int(entry)] else {
                        throw .inconsistent(field: field, reason: "repeats \(entry): not a permutation of 0..<\(dimension)")
                    }
                    seen[Int(entry)] = true
                }
            }
            if let s = standardization {
                for (vector, name) in [(s.mean, "jobSpec.standardization.mean"), (s.std, "jobSpec.standardization.std")] {
                    try WireCheck.vector(vector, name, limits)
                    guard vector.dtype == dtype else {
                        throw .inconsistent(field: name, reason: "is \(vector.dtype), the job's dtype is \(dtype)")
                    }
                    guard vector.count == dimension else {
                        throw .inconsistent(field: name, reason: "has \(vector.count) values, expected dimension \(dimension)")
                    }
                    try WireCheck.finite(vector, name)
                }
                for j in 0..<s.std.count where !(s.std.value(at: j) > 0) {
                    throw .outOfRange(
                        field: "jobSpec.standardization.std[\(j)]", value: "\(s.std.value(at: j))", allowed: "greater than 0")
                }
            }
            switch mode {
            case .training(let t):
                try WireCheck.positive(t.rowCount, "jobSpec.rowCount")
                try WireCheck.range(t.shardCount, CheckedRanges.shardCount, "jobSpec.shardCount")
                try WireCheck.positive(t.microBatchSize, "jobSpec.microBatchSize")
                try WireCheck.positive(t.batchSize, "jobSpec.batchSize")
                guard t.batchSize % t.microBatchSize == 0 else {
                    throw .inconsistent(
                        field: "jobSpec.batchSize",
                        reason: "batch size \(t.batchSize) is not a multiple of the micro-batch size \(t.microBatchSize)")
                }
                if t.digestResults, case .sharded = t.sync {} else if t.digestResults {
                    throw .inconsistent(field: "jobSpec.digestResults", reason: "digests are for sync=sharded only")
                }
                var optimizer: LocalOptimizer?
                switch t.sync {
                case .gradients: optimizer = nil
                case .parameters(let o): optimizer = o
                case .sharded(let o):
                    guard o.localSteps == 1 else {
                        throw .outOfRange(field: "jobSpec.localSteps", value: String(o.localSteps), allowed: "1 (sync=sharded takes one step per plan step)")
                    }
                    optimizer = o
                }
                if let o = optimizer {
                    try WireCheck.positive(o.localSteps, "jobSpec.localSteps")
                    try WireCheck.finitePositive(o.learningRate, "jobSpec.learningRate")
                    for (beta, name) in [(o.beta1, "jobSpec.beta1"), (o.beta2, "jobSpec.beta2")] {
                        try WireCheck.finite(beta, name)
                        guard beta >= 0 && beta < 1 else { throw .outOfRange(field: name, value: "\(beta)", allowed: "[0, 1)") }
                    }
                    try WireCheck.finitePositive(o.epsilon, "jobSpec.epsilon")
                    if let clipNorm = o.clipNorm { try WireCheck.finitePositive(clipNorm, "jobSpec.clipNorm") }
                    guard o.warmupSteps <= o.totalSteps else {
                        throw .inconsistent(field: "jobSpec.warmupSteps", reason: "\(o.warmupSteps) warm-up steps exceed the \(o.totalSteps) steps of the run")
                    }
                    try WireCheck.finite(o.minimumLearningRate, "jobSpec.minimumLearningRate")
                    guard o.minimumLearningRate >= 0, o.minimumLearningRate <= o.learningRate else {
                        throw .outOfRange(field: "jobSpec.minimumLearningRate", value: "\(o.minimumLearningRate)", allowed: "[0, learningRate]")
                    }
                    try WireCheck.finite(o.weightDecay, "jobSpec.weightDecay")
                    guard o.weightDecay >= 0, o.weightDecay * o.learningRate < 1 else {
                        throw .outOfRange(field: "jobSpec.weightDecay", value: "\(o.weightDecay)", allowed: "≥ 0 with weightDecay × learningRate < 1")
                    }
                }
            case .scoring(let s):
                try WireCheck.positive(s.chunkRows, "jobSpec.chunkRows")
            }
        }
    }
}
