import FlowData
import Flows
import Foundation
import Testing
@testable import FlowCluster

/// `TrainingCheckpoint.checkResumable`: which differences `--resume` refuses, with the field,
/// both values and the path, and the data identity a checkpoint round-trips.
struct TrainingCheckpointResumeTests {
    static let options = TrainingOptions(steps: 100, batch: 64, microBatch: 32, seed: 3)
    static let configuration = FlowConfiguration(dimension: 2, couplings: 2, hidden: 8)
    static let data = TrainingDataIdentity(
        source: "moons", rows: 1000, dataSeed: 3, validationFraction: 0.1, standardize: false,
        trainCount: 900, validationCount: 100, trainDigest: "0123456789abcdef")

    static func checkpoint(step: Int = 100, options: TrainingOptions = options, data: TrainingDataIdentity? = data) throws -> TrainingCheckpoint<Float> {
        let model = try RealNVP<Float>(configuration: configuration, seed: 3)
        return TrainingCheckpoint(
            model: model, optimizer: AdamOptimizer(parameterCount: model.parameters.count, learningRate: 1e-3),
            step: step, options: options, data: data)
    }

    func check(_ c: TrainingCheckpoint<Float>, options: TrainingOptions = Self.options, configuration: FlowConfiguration = Self.configuration,
               data: TrainingDataIdentity = Self.data) throws(ResumeMismatch) -> [String] {
        var warnings: [String] = []
        try c.checkResumable(options: options, configuration: configuration, data: data, path: "ck/checkpoint.safetensors") { warnings.append($0) }
        return warnings
    }

    @Test func aCheckpointOfAnEarlierPlanIsRefusedWhenRead() throws {
        let dir = NSTemporaryDirectory() + "ckplan-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/checkpoint.safetensors"
        try Self.checkpoint().write(to: path)
        #expect(try TrainingCheckpoint<Float>.read(from: path).step == 100)
        // The same file as 0.3.0 wrote it: no batch_plan key.
        var archive = try SafeTensorsArchive.read(from: path)
        archive.metadata["batch_plan"] = nil
        try archive.write(to: path)
        let error = #expect(throws: FlowError.self) { try TrainingCheckpoint<Float>.read(from: path) }
        #expect(error?.description.contains("written by Tributary before 0.4.0") == true, "\(String(describing: error))")
        #expect(error?.description.contains(path) == true)
    }

    @Test func theSameRunAndMoreStepsAreAccepted() throws {
        let c = try Self.checkpoint()
        #expect(try check(c).isEmpty)
        var more = Self.options
        more.steps = 400
        #expect(try check(c, options: more).isEmpty)
    }

    @Test func eachDifferenceIsNamedWithBothValuesAndThePath() throws {
        let c = try Self.checkpoint()
        var seed = Self.data
        seed.dataSeed = 9
        #expect(throws: ResumeMismatch.field(path: "ck/checkpoint.safetensors", field: "--data-seed", checkpoint: "3", commandLine: "9")) {
            try check(c, data: seed)
        }
        var digest = Self.data
        digest.trainDigest = "fedcba9876543210"
        #expect(throws: ResumeMismatch.field(path: "ck/checkpoint.safetensors", field: "digest of the training rows", checkpoint: "0123456789abcdef", commandLine: "fedcba9876543210")) {
            try check(c, data: digest)
        }
        let wider = FlowConfiguration(dimension: 2, couplings: 2, hidden: 128)
        #expect(throws: ResumeMismatch.field(path: "ck/checkpoint.safetensors", field: "--hidden", checkpoint: "8", commandLine: "128")) {
            try check(c, configuration: wider)
        }
        var batch = Self.options
        batch.batch = 128
        do {
            _ = try check(c, options: batch)
            Issue.record("accepted another --batch")
        } catch {
            #expect(error.description.hasPrefix("ck/checkpoint.safetensors: --batch differs: checkpoint 64, command line 128"), "\(error)")
        }
        var fewer = Self.options
        fewer.steps = 50
        #expect(throws: ResumeMismatch.stepsBelowCheckpoint(path: "ck/checkpoint.safetensors", checkpointStep: 100, steps: 50)) {
            try check(c, options: fewer)
        }
    }

    @Test func aShortLastRoundCannotBeExtended() throws {
        var local = Self.options
        local.localSteps = 8
        let c = try Self.checkpoint(step: 100, options: local)  // 100 = 12 × 8 + 4
        local.steps = 200
        #expect(throws: ResumeMismatch.shortRound(path: "ck/checkpoint.safetensors", checkpointStep: 100, localSteps: 8, steps: 200)) {
            try check(c, options: local)
        }
    }

    @Test func anOldCheckpointWithoutDataIsAcceptedWithAWarning() throws {
        let warnings = try check(try Self.checkpoint(data: nil))
        #expect(warnings.count == 1 && warnings[0].contains("written before checkpoints recorded their data"), "\(warnings)")
    }

    @Test func theDataIdentityRoundTripsThroughTheFile() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("resume-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = TrainingCheckpoint<Float>.path(in: directory)
        try Self.checkpoint().write(to: path)
        #expect(try TrainingCheckpoint<Float>.read(from: path).data == Self.data)
        try Self.checkpoint(data: nil).write(to: path)
        #expect(try TrainingCheckpoint<Float>.read(from: path).data == nil)
    }

    @Test func theDigestSeesEveryByte() {
        #expect(TrainingDataIdentity.digest([Float(1), 2]) != TrainingDataIdentity.digest([Float(1), 2.0000002]))
        #expect(TrainingDataIdentity.digest([Float(1), 2]) == TrainingDataIdentity.digest([Float(1), 2]))
        #expect(TrainingDataIdentity.digest([Float]()).count == 16)
    }
}
