import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// What a coordinator does with an existing checkpoint directory: refuse it without
    /// `--resume`, refuse a checkpoint of other data or another architecture naming the field,
    /// and continue a finished run to more steps with the bytes of a straight run.
    @Suite struct ClusterResumeCheckTests {
        /// Trains 200 steps with checkpoints on one worker (the checkpoint ends at step 200).
        static func checkpointedRun(_ h: ClusterHarness, steps: Int, _ extra: [String] = [], tag: String) throws {
            let endpoint = "ipc://\(h.dir.path)/\(tag).ipc"
            let coordinator = try h.start("coordinator-\(tag)", ClusterCommand.coordinator(endpoint, steps: steps, [
                "--checkpoint-dir", "checkpoints", "--checkpoint-every", "50",
            ] + extra))
            let worker = try h.start("worker-\(tag)", ClusterCommand.worker(endpoint, name: "w-\(tag)"))
            h.expectSuccess(coordinator, timeout: 120)
            h.expectSuccess(worker, timeout: 20)
        }

        @Test func resumingToMoreStepsGivesTheBytesOfAStraightRun() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try Self.checkpointedRun(h, steps: 200, tag: "200")
            // Not resumed: the directory holds a checkpoint, so a fresh run is refused at once.
            let refused = try CLI.run(
                ClusterCommand.coordinator("ipc://\(h.dir.path)/x.ipc", steps: 400, ["--checkpoint-dir", "checkpoints"]),
                in: h.dir.path, timeout: 30)
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.contains("holds a checkpoint") && refused.stderr.contains("--resume")
                    && refused.stderr.contains("--overwrite-checkpoints"), "\(refused)")
            // Resumed with --steps 400: the same bytes as one process trained 400 steps.
            try Self.checkpointedRun(h, steps: 400, ["--resume"], tag: "400")
            let second = try String(contentsOfFile: h.dir.file("coordinator-400.log"), encoding: .utf8)
            #expect(second.contains("resuming from") && second.contains("at step 200"), "\(second)")
            try ClusterFaultTests.expectReferenceModel(h, steps: 400)
        }

        @Test(arguments: [
            (["--data-seed", "9"], "--data-seed differs: checkpoint 7, command line 9"),
            (["--rows", "3000"], "--rows differs: checkpoint 4000, command line 3000"),
            (["--validation", "0.2"], "--validation differs: checkpoint 0.1, command line 0.2"),
            (["--hidden", "64"], "--hidden differs: checkpoint 32, command line 64"),
            (["--lr", "0.01"], "--lr differs: checkpoint 0.001, command line 0.01"),
            (["--steps", "20"], "the checkpoint is at step 40, beyond --steps 20"),
        ])
        func aCheckpointOfAnotherRunIsRefusedNamingTheField(change: [String], message: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            try Self.checkpointedRun(h, steps: 40, tag: "first")
            // The later option wins with swift-argument-parser: the change overrides the fixture.
            let result = try CLI.run(
                ClusterCommand.coordinator("ipc://\(h.dir.path)/x.ipc", steps: 40, ["--checkpoint-dir", "checkpoints", "--resume"] + change),
                in: h.dir.path, timeout: 30)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
            #expect(result.stderr.contains("checkpoints/checkpoint.safetensors"), "\(result)")
        }
    }
}
