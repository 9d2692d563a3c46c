import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// The coordinator dies (SIGKILL) after a checkpoint and is started again with `--resume`
    /// on the same endpoint; the workers stay up, reconnect, and the final model is the bytes of
    /// an uninterrupted run.
    @Suite struct ClusterCoordinatorRestartTests {
        @Test(arguments: ClusterFixture.exchanges)
        func aRestartedCoordinatorResumesFromItsCheckpoint(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let command = ClusterCommand.coordinator(endpoint, [
                "--min-workers", "2", "--checkpoint-dir", "checkpoints", "--checkpoint-every", "20", "--exchange", exchange,
            ])
            let first = try h.start("coordinator-1", command)
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: first) else { return }
            let checkpoint = h.dir.file("checkpoints/checkpoint.safetensors")
            #expect(h.waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: checkpoint) }, "no checkpoint\n\(h.report())")
            h.signal(first, SIGKILL)
            first.wait(timeout: 5)
            let killedAt = h.lastStep(metrics: "metrics.jsonl")
            #expect(killedAt < ClusterFixture.faultSteps, "the run ended before the coordinator was killed")
            // The workers outlive their coordinator: each notices the silence and starts to
            // reconnect (an event, not a pause) and is still running then.
            let noticed = h.waitUntil(timeout: 30) {
                [w1, w2].allSatisfy { !lines(of: $0.stderr, containing: "reconnecting").isEmpty || !$0.isRunning }
            }
            #expect(noticed, "the workers did not notice the coordinator's death\n\(h.report())")
            #expect(w1.isRunning && w2.isRunning, "a worker exited with its coordinator\n\(h.report())")

            let second = try h.start("coordinator-2", command + ["--resume"])
            h.expectSuccess(second, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }

            let resumed = lines(of: second.stderr, containing: "resuming from")
            #expect(resumed.count == 1, "\(second)")
            let words = resumed.first?.split(separator: " ") ?? []
            let resumedStep = words.firstIndex(of: "step").flatMap { words.index(after: $0) < words.endIndex ? Int(words[words.index(after: $0)]) : nil }
            if let resumedStep {
                #expect(resumedStep >= 20 && resumedStep % 20 == 0 && resumedStep <= killedAt, "resumed at \(resumedStep), killed at \(killedAt)")
            } else {
                Issue.record("no step in \(resumed)")
            }
            #expect(lines(of: second.stderr, containing: "joined").count >= 2, "the workers did not rejoin\n\(second)")
            for worker in [w1, w2] {
                #expect(!lines(of: worker.stderr, containing: "reconnecting").isEmpty, "\(worker)")
            }
            try ClusterFaultTests.expectReferenceModel(h)
            // The metrics file reads as one run: every step once, in order (the resumed run kept
            // the lines up to its checkpoint and appended the rest).
            let steps = h.metricSteps("metrics.jsonl")
            #expect(steps == Array(1...ClusterFixture.faultSteps),
                    "metrics steps after the resume: \(steps.count) lines, first out of place at \(steps.enumerated().first { $0.element != $0.offset + 1 }.map { "line \($0.offset + 1): \($0.element)" } ?? "-")")
        }
    }
}
