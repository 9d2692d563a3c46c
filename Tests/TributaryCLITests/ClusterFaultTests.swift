import FlowRandom
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Arguments of the cluster commands used by the fault tests.
enum ClusterCommand {
    static func coordinator(_ endpoint: String, steps: Int = ClusterFixture.faultSteps, _ extra: [String] = []) -> [String] {
        ["coordinator"] + ClusterFixture.options(steps: steps)
            + ["--bind", endpoint, "--out", "model.safetensors", "--metrics", "metrics.jsonl"] + extra
    }

    static func worker(_ endpoint: String, name: String, _ extra: [String] = []) -> [String] {
        ["worker", "--connect", endpoint, "--name", name] + extra
    }
}

extension ClusterTests {
    /// Workers that crash, stall or join mid-run, with either exchange: the model file stays the
    /// same bytes as the single-process run's. (Under `sharded` every worker also owns parameter
    /// segments, so each of these deaths is an owner's, at whatever point of the step it falls.)
    @Suite struct ClusterFaultTests {
        /// Requires the run's model file to equal the single-process one.
        static func expectReferenceModel(_ h: ClusterHarness, steps: Int = ClusterFixture.faultSteps,
                                         sourceLocation: SourceLocation = #_sourceLocation) throws {
            let reference = try ClusterFixture.reference(steps: steps)
            guard let model = try? h.dir.bytes("model.safetensors") else {
                Issue.record("no model file was written\n\(h.report())", sourceLocation: sourceLocation)
                return
            }
            let (same, difference) = sameBytes(model, reference)
            #expect(same, "cluster run vs one process: \(difference)\n\(h.report())", sourceLocation: sourceLocation)
        }

        /// One worker SIGKILLed and one crashing by itself (the hidden test hook) mid-run; a
        /// replacement joins. The coordinator notices both deaths and hands their work on.
        @Test(arguments: ClusterFixture.exchanges)
        func workersKilledMidRunAreReplaced(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--exchange", exchange]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            let w3 = try h.start("w3", ClusterCommand.worker(endpoint, name: "w3", ["--test-crash-after-results", "1500"]))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            h.signal(w2, SIGKILL)
            let lost = h.waitUntil(timeout: 10) { !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty || !coordinator.isRunning }
            #expect(lost && !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty, "w2's death went unnoticed\n\(h.report())")
            let w4 = try h.start("w4", ClusterCommand.worker(endpoint, name: "w4"))

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w4] { h.expectSuccess(worker, timeout: 10) }
            w2.wait(timeout: 5)
            #expect(w2.terminatingSignal == SIGKILL, "\(w2)")
            w3.wait(timeout: 10)
            #expect(w3.exitCode == 3, "the --test-crash-after-results hook did not fire: \(w3)")
            let log = coordinator.stderr
            #expect(!lines(of: log, containing: "(w3) lost").isEmpty, "w3's crash went unnoticed\n\(coordinator)")
            #expect(!lines(of: log, containing: "(w4) joined").isEmpty, "the replacement never joined\n\(coordinator)")
            try Self.expectReferenceModel(h)
        }

        /// Workers SIGKILLed at random moments of their steps — computing, sending their partial,
        /// waiting while the coordinator folds and applies — six times over, each replaced: every
        /// partial lost is covered again by the survivors and the bits do not move. The moments
        /// come from a seed printed on failure.
        @Test(arguments: ClusterFixture.exchanges)
        func workersKilledAtRandomMomentsLeaveTheBitsAlone(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let seed = UInt64.random(in: 0...UInt64(UInt32.max))
            var generator = SeededGenerator(seed: seed)
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--exchange", exchange]))
            var live = try (1...3).map { try h.start("w\($0)", ClusterCommand.worker(endpoint, name: "w\($0)")) }
            guard h.waitForStep(100, metrics: "metrics.jsonl", while: coordinator) else { return }
            var killed: [ClusterProcess] = []
            for round in 0..<6 where coordinator.isRunning {
                usleep(UInt32(20_000 + generator.next() % 250_000))
                let victim = live.remove(at: Int(generator.next() % UInt64(live.count)))
                h.signal(victim, SIGKILL)
                killed.append(victim)
                live.append(try h.start("r\(round)", ClusterCommand.worker(endpoint, name: "r\(round)")))
            }
            h.expectSuccess(coordinator, timeout: 120)
            for worker in live { h.expectSuccess(worker, timeout: 10) }
            for victim in killed { victim.wait(timeout: 5) }
            h.note("seed \(seed); killed \(killed.count); exchange \(exchange)")
            #expect(killed.count >= 3, "the run ended before the kills (seed \(seed))\n\(h.report())")
            #expect(!lines(of: coordinator.stderr, containing: ") lost").isEmpty, "no death was noticed (seed \(seed))\n\(coordinator)")
            try Self.expectReferenceModel(h)
        }

        /// A worker SIGSTOPped past the heartbeat deadline (8 × 50 ms) is dropped and the job
        /// goes on without it; SIGCONTinued, it finds it was forgotten and joins again.
        @Test(arguments: ClusterFixture.exchanges)
        func aStalledWorkerIsDroppedAndRejoinsWhenContinued(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--exchange", exchange]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            h.signal(w2, SIGSTOP)
            // The stall is noticed while w2 is still stopped (the wait is only a bound).
            let lost = h.waitUntil(timeout: 30) { !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty || !coordinator.isRunning }
            #expect(lost && !lines(of: coordinator.stderr, containing: "(w2) lost").isEmpty, "w2's stall went unnoticed\n\(h.report())")
            // The job goes on with w1 alone (--min-workers gates only the first step).
            let step = h.lastStep(metrics: "metrics.jsonl")
            let progressed = h.waitForStep(step + 200, metrics: "metrics.jsonl", while: coordinator, timeout: 10)
            h.signal(w2, SIGCONT)
            guard progressed else { return }
            let rejoined = h.waitUntil(timeout: 10) {
                lines(of: coordinator.stderr, containing: "(w2) joined").count >= 2 || !coordinator.isRunning
            }
            #expect(rejoined && lines(of: coordinator.stderr, containing: "(w2) joined").count >= 2,
                    "w2 did not rejoin after SIGCONT\n\(h.report())")

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            #expect(!lines(of: w2.stderr, containing: "reconnecting").isEmpty, "\(w2)")
            try Self.expectReferenceModel(h)
        }

        /// A worker started after the job began gets shards and work.
        @Test(arguments: ClusterFixture.exchanges)
        func aWorkerJoiningMidRunTakesAShare(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--exchange", exchange]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            let joined = lines(of: coordinator.stderr, containing: "(w2) joined")
            #expect(joined.count == 1, "\(coordinator)")
            #expect(joined.first.map { !$0.contains("owns 0 shards") } ?? false, "w2 got no shards: \(joined)")
            // The last steps ran on two workers (the metrics count live workers).
            let metrics = (try? String(contentsOfFile: h.dir.file("metrics.jsonl"), encoding: .utf8)) ?? ""
            let last = metrics.split(separator: "\n").last.map(String.init) ?? ""
            #expect(last.contains("\"workers\":2"), "last metrics line: \(last)")
            try Self.expectReferenceModel(h)
        }
    }
}
