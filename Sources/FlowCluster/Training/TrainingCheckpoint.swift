import Flows
import Foundation

/// The full state of a training run after some steps — parameters, Adam's moments and step,
/// and the options that define the run — so that a restarted coordinator finishes with the same
/// bits as an uninterrupted run. The batch plan is a pure function of the options, so the step
/// number is the whole shuffle state.
///
/// Stored as a model file (DESIGN §5; loadable as a model) plus two tensors,
/// `optimizer.first_moment` and `optimizer.second_moment`, and metadata `optimizer_step` and
/// `training_options` (JSON), `data_identity` (JSON, ``TrainingDataIdentity``) and `batch_plan`
/// (``planGeneration``: the plan and summation order the run follows); with
/// `--keep-best`/`--early-stop` also `validation_monitor` (JSON, ``ValidationMonitor/State``) and,
/// once there is a best, the tensor `keep_best.parameters` (P values). Written atomically, so the
/// best parameters and the state that refers to them change together.
public struct TrainingCheckpoint<Scalar: FlowScalar>: Sendable {
    /// The model after `step` steps.
    public var model: RealNVP<Scalar>
    /// The optimiser state after `step` steps.
    public var optimizer: AdamOptimizer<Scalar>
    /// Steps completed.
    public var step: Int
    /// The run's options (a resumed run must use the same ones, except a larger `steps`).
    public var options: TrainingOptions
    /// The training data's identity (`nil` in checkpoints written before it was recorded).
    public var data: TrainingDataIdentity?
    /// The keep-best / early-stop state after `step` steps (fresh when the run has none).
    public var monitor: ValidationMonitor<Scalar>

    /// The state after `step` steps; `monitor` defaults to a fresh one for `options`.
    public init(
        model: RealNVP<Scalar>, optimizer: AdamOptimizer<Scalar>, step: Int, options: TrainingOptions,
        data: TrainingDataIdentity? = nil, monitor: ValidationMonitor<Scalar>? = nil
    ) {
        self.model = model
        self.optimizer = optimizer
        self.step = step
        self.options = options
        self.data = data
        self.monitor = monitor ?? ValidationMonitor(options: options)
    }

    /// The batch plan and summation order of this version: "2", the plan spread over the shard
    /// space and the reduction tree (0.4.0). Checkpoints without it were written by earlier
    /// versions (consecutive shards, a left fold) and cannot continue with the same bits.
    public static var planGeneration: String { "2" }

    static var firstMoment: String { "optimizer.first_moment" }
    static var secondMoment: String { "optimizer.second_moment" }
    static var bestParameters: String { "keep_best.parameters" }

    /// The file name of the checkpoint in `directory`.
    public static func path(in directory: String) -> String {
        (directory as NSString).appendingPathComponent("checkpoint.safetensors")
    }

    /// Writes the checkpoint atomically (a crash leaves the previous checkpoint intact).
    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let optionsJSON = String(decoding: try encoder.encode(options), as: UTF8.self)
        var metadata = ["optimizer_step": String(optimizer.step), "training_options": optionsJSON, "batch_plan": Self.planGeneration]
        if let data { metadata["data_identity"] = String(decoding: try encoder.encode(data), as: UTF8.self) }
        if monitor.isActive { metadata["validation_monitor"] = String(decoding: try encoder.encode(monitor.state), as: UTF8.self) }
        var archive = ModelFile.archive(of: model, info: ModelFileInfo(step: step, seed: options.seed, metadata: metadata))
        let P = model.parameters.count
        archive.tensors.append(Self.tensor(Self.firstMoment, P, optimizer.firstMoment))
        archive.tensors.append(Self.tensor(Self.secondMoment, P, optimizer.secondMoment))
        if let best = monitor.bestParameters { archive.tensors.append(Self.tensor(Self.bestParameters, P, best)) }
        try archive.write(to: path)
    }

    /// Reads a checkpoint written by `write(to:)` for a model of precision `Scalar`.
    public static func read(from path: String) throws -> TrainingCheckpoint {
        var archive = try SafeTensorsArchive.read(from: path)
        func bad(_ reason: String) -> FlowError { .invalidModelFile(path: path, reason: reason) }
        guard let m = archive[firstMoment], let v = archive[secondMoment] else { throw bad("not a training checkpoint: no optimizer moments") }
        let bestTensor = archive[bestParameters]
        archive.tensors.removeAll { $0.name == firstMoment || $0.name == secondMoment || $0.name == bestParameters }
        guard let optionsText = archive.metadata["training_options"], let adamStepText = archive.metadata["optimizer_step"],
              let adamStep = Int(adamStepText), adamStep >= 0
        else { throw bad("not a training checkpoint: no training_options/optimizer_step metadata") }
        guard archive.metadata["batch_plan"] == planGeneration else {
            throw bad("written by Tributary before 0.4.0 (batch_plan \(archive.metadata["batch_plan"] ?? "absent"), this version follows \(planGeneration)): that version drew and summed a step's micro-batches in another order, so the run cannot continue with its bits; start it over, or finish it with the version that wrote it")
        }
        let options: TrainingOptions
        do {
            options = try JSONDecoder().decode(TrainingOptions.self, from: Data(optionsText.utf8))
        } catch {
            throw bad("training_options is not valid: \(error)")
        }
        var data: TrainingDataIdentity? = nil
        if let text = archive.metadata["data_identity"] {
            do {
                data = try JSONDecoder().decode(TrainingDataIdentity.self, from: Data(text.utf8))
            } catch {
                throw bad("data_identity is not valid: \(error)")
            }
        }
        var monitorState = ValidationMonitor<Scalar>.State()
        if let text = archive.metadata["validation_monitor"] {
            do {
                monitorState = try JSONDecoder().decode(ValidationMonitor<Scalar>.State.self, from: Data(text.utf8))
            } catch {
                throw bad("validation_monitor is not valid: \(error)")
            }
        }
        let (any, info) = try ModelFile.decode(archive, file: path)
        let model: RealNVP<Scalar>
        switch any {
        case .float32(let f) where Scalar.self == Float.self: model = f as! RealNVP<Scalar>
        case .float64(let d) where Scalar.self == Double.self: model = d as! RealNVP<Scalar>
        default: throw bad("holds \(any.configuration.parameterCount) parameters of another precision than \(Scalar.dtypeName)")
        }
        let P = model.parameters.count
        let first: [Scalar] = Scalar.self == Float.self ? try m.floats().map { Scalar($0) } : try m.doubles().map { Scalar($0) }
        let second: [Scalar] = Scalar.self == Float.self ? try v.floats().map { Scalar($0) } : try v.doubles().map { Scalar($0) }
        guard first.count == P, second.count == P else { throw bad("optimizer moments have \(first.count)/\(second.count) values for \(P) parameters") }
        var best: [Scalar]? = nil
        if let bestTensor {
            let values: [Scalar] = Scalar.self == Float.self ? try bestTensor.floats().map { Scalar($0) } : try bestTensor.doubles().map { Scalar($0) }
            guard values.count == P else { throw bad("\(bestParameters) has \(values.count) values for \(P) parameters") }
            best = values
        }
        var optimizer: AdamOptimizer<Scalar> = options.makeOptimizer(parameterCount: P)
        optimizer.firstMoment = first
        optimizer.secondMoment = second
        optimizer.step = adamStep
        return TrainingCheckpoint(
            model: model, optimizer: optimizer, step: info.step, options: options, data: data,
            monitor: ValidationMonitor(options: options, state: monitorState, bestParameters: best))
    }

    private static func tensor(_ name: String, _ count: Int, _ values: [Scalar]) -> SafeTensorsTensor {
        if let floats = values as? [Float] { return SafeTensorsTensor(name: name, shape: [count], floats: floats) }
        return SafeTensorsTensor(name: name, shape: [count], doubles: values.map { Double($0) })
    }
}
