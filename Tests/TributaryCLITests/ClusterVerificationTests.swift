import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `coordinator --verify-fraction`: results are bit-exact by design, so computing
    /// micro-batches twice catches a worker that returns wrong bits (here one started with the
    /// test-only `--corrupt-results-every K`). The model file stays the single-process one. Under
    /// `sharded` the two sources' partials are compared by digest, the liar's segments never
    /// count, and its quarantine restarts the attempt without it.
    @Suite struct ClusterVerificationTests {
        @Test(arguments: ClusterFixture.exchanges)
        func aWorkerThatCorruptsResultsIsQuarantinedAndTheBitsAreRight(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(
                endpoint, ["--min-workers", "3", "--heartbeat-ms", "50", "--verify-fraction", "1", "--exchange", exchange]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            let liar = try h.start("liar", ClusterCommand.worker(endpoint, name: "liar", ["--corrupt-results-every", "5"]))

            h.expectSuccess(coordinator, timeout: 120)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            // Told it is quarantined, the liar leaves.
            h.expectSuccess(liar, timeout: 10)
            try ClusterFaultTests.expectReferenceModel(h)

            let log = coordinator.stderr
            let quarantined = lines(of: log, containing: "(liar) quarantined")
            #expect(quarantined.count == 1, "\(coordinator)")
            #expect(!lines(of: log, containing: "returned different bits; computing it here").isEmpty, "\(coordinator)")
            #expect(lines(of: log, containing: "(w1) quarantined").isEmpty && lines(of: log, containing: "(w2) quarantined").isEmpty, "\(coordinator)")
            #expect(!lines(of: liar.stderr, containing: "done: quarantined").isEmpty, "\(liar)")
        }

        /// Sharded, two workers, one of them the liar: both are suspects of every disagreement,
        /// so the coordinator computes the leaf with a state that both workers gave with the same
        /// bits; then the honest worker goes on alone, the coordinator the second source of every
        /// checked leaf (with the state fetched from that worker).
        @Test func shardedWithOnlyTwoWorkersTheCoordinatorSettlesWithAStateBothGave() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(
                endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--verify-fraction", "1", "--exchange", "sharded"]))
            let honest = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            // Its first lie comes after a few steps: the state is then the workers', not the start.
            let liar = try h.start("liar", ClusterCommand.worker(endpoint, name: "liar", ["--corrupt-results-every", "41"]))
            h.expectSuccess(coordinator, timeout: 120)
            h.expectSuccess(honest, timeout: 10)
            h.expectSuccess(liar, timeout: 10)
            try ClusterFaultTests.expectReferenceModel(h)
            let log = coordinator.stderr
            #expect(lines(of: log, containing: "(liar) quarantined").count == 1, "\(coordinator)")
            #expect(lines(of: log, containing: "(w1) quarantined").isEmpty, "\(coordinator)")
            #expect(lines(of: log, containing: "workers 1 and 2 gave the same training state").count == 1, "\(coordinator)")
            #expect(lines(of: log, containing: "did not send the training state").isEmpty, "\(coordinator)")
        }

        @Test(arguments: ClusterFixture.exchanges)
        func honestWorkersArePartiallyCheckedAtNoCostToTheBits(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(
                endpoint, ["--min-workers", "2", "--heartbeat-ms", "50", "--verify-fraction", "0.25", "--exchange", exchange]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            h.expectSuccess(coordinator, timeout: 120)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h)
            #expect(lines(of: coordinator.stderr, containing: "quarantined").isEmpty, "\(coordinator)")
            #expect(lines(of: coordinator.stderr, containing: "different bits").isEmpty, "\(coordinator)")
        }

        /// With CURVE the quarantine reaches the key: the liar's key is revoked, so the same key
        /// is refused by the ZAP handler even from a new process.
        @Test(arguments: ClusterFixture.exchanges)
        func withCURVEAQuarantinedWorkersKeyIsRevoked(exchange: String) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            typealias S = ClusterSecurityTests
            let keys = try S.keygen(h, ["coordinator", "w1", "w2", "liar"])
            try S.authorize(h, ["w1", "w2", "liar"])
            let endpoint = try h.tcpEndpoint()
            // Long enough (about 15 s) for the liar to be caught, leave and come back.
            let steps = 4 * ClusterFixture.faultSteps
            let coordinator = try h.start("coordinator", S.secureCoordinator(
                endpoint, steps: steps, ["--min-workers", "3", "--heartbeat-ms", "50", "--verify-fraction", "1", "--exchange", exchange]))
            let honest = try ["w1", "w2"].map { try h.start($0, S.secureWorker(endpoint, name: $0)) }
            let liar = try h.start("liar", S.secureWorker(endpoint, name: "liar") + ["--corrupt-results-every", "5"])
            let revoked = h.waitUntil(timeout: 60) { !lines(of: coordinator.stderr, containing: "revoked key").isEmpty || !coordinator.isRunning }
            #expect(revoked && coordinator.isRunning, "no revocation while the job ran\n\(h.report())")
            h.expectSuccess(liar, timeout: 10)
            // The liar again, as a new process with the same key.
            let again = try h.start("liar-again", ClusterCommand.worker(
                endpoint, name: "liar-again", ["--key", "keys/liar.key", "--server-key", "keys/coordinator.pub"]))
            let refused = h.waitUntil(timeout: 15) {
                !lines(of: coordinator.stderr, containing: "key \(keys["liar"]!.publicKey.z85) (\(keys["liar"]!.publicKey.fingerprint)) was revoked in this run").isEmpty
                    || !coordinator.isRunning
            }
            h.expectSuccess(coordinator, timeout: 120)
            for worker in honest { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h, steps: steps)
            #expect(refused, "the revoked key was not refused before the end\n\(h.report())")
            #expect(lines(of: coordinator.stderr, containing: "(liar-again) joined").isEmpty, "\(coordinator)")
            h.signal(again, SIGTERM)
            again.wait(timeout: 5)
        }
    }
}
