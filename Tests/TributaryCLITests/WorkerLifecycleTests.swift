import FlowCluster
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// How a worker starts and ends (issue 11, items 9, 12, 13): endpoints checked up front,
    /// IPv6, a bounded wait for a coordinator, a bounded number of refused handshakes, and a
    /// goodbye on SIGTERM.
    @Suite struct WorkerLifecycleTests {
        @Test func malformedEndpointsAreRefusedUpFrontWithExit64() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let cases: [([String], String)] = [
                (["worker", "--connect", "127.0.0.1:5609"], "has no scheme: write tcp://127.0.0.1:5609"),
                (["worker", "--connect", "http://127.0.0.1:5609"], "unknown scheme \"http://\""),
                (["worker", "--connect", "tcp://*:5609"], "only makes sense when binding"),
                (["coordinator", "--data", "moons", "--steps", "1", "--out", "m.safetensors", "--bind", "tcp://127.0.0.1:99999"],
                 "port \"99999\" is not a number in 1…65535"),
                (["coordinator", "--data", "moons", "--steps", "1", "--out", "m.safetensors", "--bind", "tcp://:5609"], "has an empty host"),
                (["score", "--model", "m.safetensors", "--input", "x.npy", "--output", "o.npy", "--bind", "127.0.0.1:5609"],
                 "has no scheme: write tcp://127.0.0.1:5609"),
            ]
            for (arguments, message) in cases {
                let run = try CLI.run(arguments, in: dir.path, timeout: 20)
                #expect(run.status == 64 && run.stderr.contains(message), "\(run)")
            }
        }

        @Test func aWorkerGivesUpWhenNoCoordinatorAnswers() throws {
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let endpoint = "tcp://127.0.0.1:\(try freeTCPPort())"
            let run = try CLI.run(["worker", "--connect", endpoint, "--name", "w", "--connect-timeout", "1.5"], in: dir.path, timeout: 30)
            #expect(run.status == 69, "\(run)")
            #expect(run.stderr.contains("no coordinator answered at \(endpoint) within 1.5 s"), "\(run)")
        }

        @Test func aClusterTrainsOverIPv6LoopbackToTheSameBits() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = "tcp://[::1]:\(try freeTCPPort())"
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, steps: 200, ["--min-workers", "2"]))
            let workers = try (1...2).map { try h.start("w\($0)", ClusterCommand.worker(endpoint, name: "w\($0)")) }
            h.expectSuccess(coordinator, timeout: 90)
            for worker in workers { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h, steps: 200)
        }

        @Test(.enabled(if: ZeroMQ.has("curve"), "libzmq built without CURVE"))
        func aRefusedWorkerGivesUpWithExit77AndAPlainOneIsToldAboutCURVE() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            _ = try ClusterSecurityTests.keygen(h, ["coordinator", "w1", "stranger"])
            try ClusterSecurityTests.authorize(h, ["w1"])
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", ClusterSecurityTests.secureCoordinator(endpoint, ["--min-workers", "1"]))
            let plain = try h.start("plain", ClusterCommand.worker(endpoint, name: "plain", ["--max-refusals", "3"]))
            let stranger = try h.start("stranger", ClusterCommand.worker(
                endpoint, name: "stranger", ["--key", "keys/stranger", "--server-key", "keys/coordinator", "--max-refusals", "3"]))
            // Refused before its --connect-timeout expires: still a refusal (77), not "no coordinator" (69).
            let impatient = try h.start("impatient", ClusterCommand.worker(
                endpoint, name: "impatient", ["--key", "keys/stranger.key", "--server-key", "keys/coordinator.pub", "--max-refusals", "0", "--connect-timeout", "3"]))
            for worker in [plain, stranger, impatient] {
                #expect(worker.wait(timeout: 60), "\(worker.name) did not give up:\n\(h.report())")
                #expect(worker.exitCode == 77, "\(worker.name):\n\(h.report())")
                #expect(worker.stderr.contains("refused this worker at the handshake"), "\(h.report())")
            }
            for worker in [plain, stranger] {
                #expect(worker.stderr.contains("refused this worker at the handshake 3 times in a row; giving up"), "\(h.report())")
            }
            #expect(plain.stderr.contains("it probably runs with CURVE"), "\(h.report())")
            #expect(stranger.stderr.contains("its public key must be in the coordinator's --authorized-keys"), "\(h.report())")
            h.signal(coordinator, SIGKILL)
            coordinator.wait(timeout: 10)
        }

        @Test func aWorkerStoppedWithSIGTERMSaysGoodbyeAndTheBitsAreRight() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2"]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            h.signal(w2, SIGTERM)
            #expect(w2.wait(timeout: 20), "w2 did not leave:\n\(h.report())")
            #expect(w2.exitCode == 143, "\(h.report())")
            #expect(w2.stderr.contains("stopped by SIGTERM; said goodbye to the coordinator"), "\(h.report())")
            h.expectSuccess(coordinator, timeout: 120)
            h.expectSuccess(w1, timeout: 10)
            try ClusterFaultTests.expectReferenceModel(h)
            let log = coordinator.stderr
            #expect(lines(of: log, containing: "(w2) left").count == 1, "\(coordinator)")
            #expect(lines(of: log, containing: "(w2) lost").isEmpty, "\(coordinator)")
            #expect(lines(of: log, containing: "demoted").isEmpty, "\(coordinator)")
            // Logs to files carry no terminal codes (item 11).
            for process in [coordinator, w1, w2] {
                #expect(!process.stderr.contains("\u{1B}"), "\(process.name) wrote an escape code to a file:\n\(process.stderr)")
            }
        }
    }
}
