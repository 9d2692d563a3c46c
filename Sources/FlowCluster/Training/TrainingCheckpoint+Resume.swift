import Flows

/// Why a checkpoint cannot continue the run a command line describes.
public enum ResumeMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    /// One field differs: the option (or quantity), the checkpoint's value and the command line's.
    case field(path: String, field: String, checkpoint: String, commandLine: String)
    /// `--steps` is below the steps the checkpoint has already done.
    case stepsBelowCheckpoint(path: String, checkpointStep: Int, steps: Int)
    /// `sync=parameters` checkpoint written after a short last round: extending it would not
    /// give the rounds of a straight run.
    case shortRound(path: String, checkpointStep: Int, localSteps: Int, steps: Int)

    public var description: String {
        switch self {
        case .field(let path, let field, let recorded, let given):
            return "\(path): \(field) differs: checkpoint \(recorded), command line \(given); resume with the options of the run that wrote it, or start over in another --checkpoint-dir"
        case .stepsBelowCheckpoint(let path, let done, let steps):
            return "\(path): the checkpoint is at step \(done), beyond --steps \(steps); give --steps \(done) or more"
        case .shortRound(let path, let done, let h, let steps):
            return "\(path): the checkpoint ends with a short round at step \(done) (not a multiple of --local-steps \(h)), so --steps cannot grow beyond \(done) with --sync parameters (a straight \(steps)-step run averages other rounds); rerun with --steps \(done)"
        }
    }
}

extension TrainingCheckpoint {
    /// Checks that this checkpoint continues the run described by `options`, `configuration`
    /// and `data`, naming the first field that differs with both values and `path`.
    ///
    /// `options.steps` may be larger than the checkpoint's: the batch plan, a constant learning
    /// rate (with or without warm-up) and Adam's state do not depend on the total step count, so
    /// a run of S steps resumed to S′ gives the same bits as a straight S′-step run (with
    /// `sync=parameters` only when the checkpoint ends on a full round). A cosine schedule does
    /// depend on it: then `--steps` must be the checkpoint's. A checkpoint written before the data's identity was
    /// recorded cannot be checked against the data: `warn` is called and it is accepted.
    public func checkResumable(
        options given: TrainingOptions, configuration: FlowConfiguration, data: TrainingDataIdentity,
        path: String, warn: (String) -> Void
    ) throws(ResumeMismatch) {
        func differ(_ field: String, _ recorded: some Equatable & CustomStringConvertible, _ now: some Equatable & CustomStringConvertible) throws(ResumeMismatch) {
            if recorded.description != now.description {
                throw .field(path: path, field: field, checkpoint: recorded.description, commandLine: now.description)
            }
        }
        func text<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "none" }
        let o = options
        try differ("--seed", o.seed, given.seed)
        try differ("--batch", o.batch, given.batch)
        try differ("--micro-batch", o.microBatch, given.microBatch)
        try differ("--lr", o.learningRate, given.learningRate)
        try differ("--clip-norm", text(o.clipNorm), text(given.clipNorm))
        try differ("--shards", o.shardCount, given.shardCount)
        try differ("--eval-every", o.evaluateEvery, given.evaluateEvery)
        try differ("--sync", o.localSteps == nil ? "gradients" : "parameters", given.localSteps == nil ? "gradients" : "parameters")
        try differ("--local-steps", text(o.localSteps), text(given.localSteps))
        try differ("--lr-schedule", o.scheduleKind.rawValue, given.scheduleKind.rawValue)
        try differ("--warmup", o.warmupSteps, given.warmupSteps)
        try differ("--min-lr", o.minimumLearningRate, given.minimumLearningRate)
        try differ("--weight-decay", o.weightDecay, given.weightDecay)
        try differ("--keep-best", o.keepBest, given.keepBest)
        try differ("--early-stop", text(o.earlyStop), text(given.earlyStop))
        if o.schedule.dependsOnTotalSteps {
            // The cosine's length is --steps: another total gives other rates from step 0 on.
            try differ("--steps (the cosine schedule spans them)", o.steps, given.steps)
        }
        let c = model.configuration
        try differ("D (columns of the data)", c.dimension, configuration.dimension)
        try differ("--couplings", c.couplings, configuration.couplings)
        try differ("--hidden", c.hidden, configuration.hidden)
        try differ("--depth", c.depth, configuration.depth)
        try differ("--standardize", c.standardize, configuration.standardize)
        if c != configuration {
            throw .field(path: path, field: "the permutations", checkpoint: "\(c.permutations)", commandLine: "\(configuration.permutations)")
        }
        if let recorded = self.data {
            if let d = recorded.firstDifference(from: data) {
                throw .field(path: path, field: d.field, checkpoint: d.recorded, commandLine: d.given)
            }
        } else {
            warn("warning: \(path) was written before checkpoints recorded their data; it is resumed without checking that --data, --rows, --data-seed and --validation are those of the run that wrote it")
        }
        guard given.steps >= step else { throw .stepsBelowCheckpoint(path: path, checkpointStep: step, steps: given.steps) }
        if let h = o.localSteps, given.steps > step, step % h != 0 {
            throw .shortRound(path: path, checkpointStep: step, localSteps: h, steps: given.steps)
        }
    }
}
