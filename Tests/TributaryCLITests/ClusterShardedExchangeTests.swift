import FlowWire
import Flows
import Foundation
import Testing
import ZeroMQ

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// `--exchange sharded`: workers send their partials' segments to each other and apply Adam
    /// themselves. The bits are those of one process for any worker count and plan, every
    /// optimiser setting the workers must reproduce is honoured, and what cannot work is refused
    /// at once. (The fault tests run with both exchanges: ClusterFaultTests,
    /// ClusterCoordinatorRestartTests.)
    @Suite struct ClusterShardedExchangeTests {
        /// Plans that do not line up with the workers or the segments — an odd row count, more
        /// micro-batches than shards, a prime shard count with few micro-batches, float64, two
        /// threads — with clipping, a cosine schedule after a warm-up and weight decay (the
        /// settings each worker's Adam must reproduce): 1, 2, 3 and 5 workers give the model bytes
        /// and the metrics of one process.
        @Test(arguments: [
            ["--shards", "7", "--batch", "240", "--micro-batch", "16"],
            ["--shards", "13", "--batch", "40", "--micro-batch", "8", "--threads", "2"],
            ["--shards", "5", "--batch", "96", "--micro-batch", "32", "--dtype", "float64"],
        ])
        func theBytesOfOneProcessForOneTwoThreeAndFiveWorkers(plan: [String]) throws {
            let options = ["--data", "moons", "--rows", "3001", "--couplings", "2", "--hidden", "16", "--seed", "11",
                           "--eval-every", "7", "--steps", "40", "--clip-norm", "0.5", "--lr-schedule", "cosine",
                           "--warmup", "5", "--min-lr", "0.0001", "--weight-decay", "0.01"] + plan
            let single = try TemporaryDirectory()
            defer { single.remove() }
            try CLI.succeed(["train"] + options + ["--out", "model.safetensors", "--metrics", "metrics.jsonl"], in: single.path, timeout: 60)
            let reference = try single.bytes("model.safetensors")
            let referenceNumbers = ClusterWorkerCountTests.numbers(single.file("metrics.jsonl"))
            #expect(referenceNumbers.count == 40)
            // Clipping did act (the run exercises it, not just the option): some step's norm
            // before clipping is above --clip-norm 0.5.
            let norms = referenceNumbers.compactMap { line -> Double? in
                guard let range = line.range(of: "\"grad_norm\":") else { return nil }
                return Double(line[range.upperBound...].prefix { "0123456789.eE+-".contains($0) })
            }
            #expect(norms.count == 40 && norms.contains { $0 > 0.5 }, "grad_norm values: \(norms.prefix(5))")
            for workers in [1, 2, 3, 5] {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train", ["train"] + options + [
                    "--workers", String(workers), "--exchange", "sharded", "--out", "model.safetensors", "--metrics", "metrics.jsonl",
                ])
                h.expectSuccess(train, timeout: 90)
                #expect(train.stderr.components(separatedBy: ") joined").count - 1 == workers, "\(train)")
                let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference)
                #expect(same, "\(plan) with \(workers) sharded workers vs one process: \(difference)\n\(h.report())")
                #expect(ClusterWorkerCountTests.numbers(h.dir.file("metrics.jsonl")) == referenceNumbers,
                        "\(plan) with \(workers) sharded workers: metrics differ")
            }
        }

        /// A model large enough that every owner's range goes out in several runs of segments
        /// (each at most `ParameterSegments.valuesPerMessage` values, folded and forwarded as it
        /// arrives): through real sockets, 2, 3 and 5 workers still give one process's bytes.
        @Test func runsOfSegmentsGiveTheBytesOfOneProcess() throws {
            let options = ["--data", "moons", "--rows", "3001", "--couplings", "4", "--hidden", "256", "--seed", "5",
                           "--shards", "5", "--batch", "96", "--micro-batch", "32", "--eval-every", "4", "--steps", "8",
                           "--clip-norm", "0.5"]
            let single = try TemporaryDirectory()
            defer { single.remove() }
            let run = try CLI.succeed(["train"] + options + ["--out", "model.safetensors"], in: single.path, timeout: 60)
            let reference = try single.bytes("model.safetensors")
            // P from the log line "… D=2, 267272 parameters, …": five owners still get two runs each.
            let parameters = run.stderr.components(separatedBy: " parameters").first?.split(separator: " ").last.flatMap { Int($0) }
            #expect((parameters ?? 0) / 5 > ParameterSegments.valuesPerMessage, "\(run.stderr)")
            for workers in [2, 3, 5] {
                let h = try ClusterHarness()
                defer { h.finish() }
                let train = try h.start("train", ["train"] + options + [
                    "--workers", String(workers), "--exchange", "sharded", "--out", "model.safetensors",
                ])
                h.expectSuccess(train, timeout: 90)
                let (same, difference) = sameBytes(try h.dir.bytes("model.safetensors"), reference)
                #expect(same, "\(workers) sharded workers vs one process: \(difference)\n\(h.report())")
            }
        }

        /// What cannot work is refused before anything is read, with the reason and a non-zero
        /// status: `--sync parameters`, a worker without a peer socket (refused at its hello,
        /// exit 77, not after a timeout), and a wildcard peer address (exit 64).
        @Test func whatCannotWorkIsRefusedAtOnce() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let local = try CLI.run(
                ["train"] + ClusterFixture.options(steps: 10) + ["--workers", "2", "--sync", "parameters", "--exchange", "sharded",
                                                                  "--out", "m.safetensors"],
                in: h.dir.path, timeout: 10)
            #expect(local.status != 0 && local.stderr.contains("--exchange sharded combines gradients"), "\(local)")
            #expect(!FileManager.default.fileExists(atPath: h.dir.file("m.safetensors")))

            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, steps: 200, ["--exchange", "sharded"]))
            let started = Date()
            let lonely = try h.start("lonely", ClusterCommand.worker(endpoint, name: "lonely", ["--peer-endpoint", "none"]))
            #expect(lonely.wait(timeout: 10), "a worker without a peer socket waited\n\(h.report())")
            #expect(lonely.exitCode == 77, "\(lonely)")
            #expect(Date().timeIntervalSince(started) < 5, "the refusal took \(Date().timeIntervalSince(started)) s")
            #expect(lonely.stderr.contains("refused this worker: this job uses the sharded exchange: start the worker with --peer-endpoint"),
                    "\(lonely)")
            let wildcard = try h.start("wildcard", ClusterCommand.worker(endpoint, name: "wildcard", ["--peer-endpoint", "tcp://0.0.0.0:0"]))
            #expect(wildcard.wait(timeout: 10) && wildcard.exitCode == 64, "\(wildcard)")
            #expect(wildcard.stderr.contains("a wildcard address cannot be reached by the other workers"), "\(wildcard)")
            // The coordinator is still there for a worker that can take part, and finishes the job.
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            h.expectSuccess(coordinator, timeout: 60)
            h.expectSuccess(w1, timeout: 10)
            try ClusterFaultTests.expectReferenceModel(h, steps: 200)
        }

        /// Every worker SIGKILLed at once in the middle of a run: the training state lived only on
        /// them, so the coordinator goes back to its last copy (fetched from a worker every 2 s,
        /// or the start) and, once new workers come, computes the steps after it again — the
        /// model is the bytes of one process and the metrics list every step once.
        @Test func losingEveryWorkerGoesBackToTheCopyAndTheBitsStay() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = h.ipcEndpoint
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, [
                "--min-workers", "2", "--heartbeat-ms", "50", "--exchange", "sharded",
            ]))
            let first = try (1...2).map { try h.start("w\($0)", ClusterCommand.worker(endpoint, name: "w\($0)")) }
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            for worker in first { h.signal(worker, SIGKILL) }
            let noticed = h.waitUntil(timeout: 10) { lines(of: coordinator.stderr, containing: ") lost").count >= 2 || !coordinator.isRunning }
            #expect(noticed, "the deaths went unnoticed\n\(h.report())")
            let second = try (3...4).map { try h.start("w\($0)", ClusterCommand.worker(endpoint, name: "w\($0)")) }
            h.expectSuccess(coordinator, timeout: 90)
            for worker in second { h.expectSuccess(worker, timeout: 10) }
            #expect(!lines(of: coordinator.stderr, containing: "going back to the copy of step").isEmpty, "\(coordinator)")
            try ClusterFaultTests.expectReferenceModel(h)
            let steps = h.metricSteps("metrics.jsonl")
            #expect(steps == Array(1...ClusterFixture.faultSteps), "metrics: \(steps.count) lines for \(ClusterFixture.faultSteps) steps")
        }

        /// A stranger sending to the workers' peer sockets: garbage, and well-formed segments
        /// claiming to be from a worker of the job, for the current step and the next, without the
        /// roster's token. Nothing of it reaches a step (the bits are one process's); the worker
        /// counts what it drops. Under CURVE (`curve`), the stranger's connections are refused by
        /// the workers' ZAP handlers before a byte is read.
        @Test(arguments: [false, true])
        func strangersAtThePeerSocketsChangeNothing(curve: Bool) throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            var coordinatorExtra = ["--min-workers", "2", "--exchange", "sharded"]
            var workerExtra: (String) -> [String] = { _ in [] }
            if curve {
                _ = try ClusterSecurityTests.keygen(h, ["coordinator", "w1", "w2"])
                try ClusterSecurityTests.authorize(h, ["w1", "w2"])
                coordinatorExtra += ["--key", "keys/coordinator.key", "--authorized-keys", "authorized_keys"]
                workerExtra = { name in ["--key", "keys/\(name).key", "--server-key", "keys/coordinator.pub"] }
            }
            let ports = try (0..<2).map { _ in try freeTCPPort() }
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, coordinatorExtra))
            let workers = try (1...2).map { i in
                try h.start("w\(i)", ClusterCommand.worker(endpoint, name: "w\(i)",
                                                           ["--peer-endpoint", "tcp://127.0.0.1:\(ports[i - 1])"] + workerExtra("w\(i)")))
            }
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            // The stranger: PUSH sockets to both peer endpoints, plain.
            let context = try ZMQContext()
            defer { context.terminate() }
            var sockets: [ZMQSocket] = []
            for port in ports {
                let socket = try ZMQSocket(context: context, type: .push)
                try socket.setLinger(0)
                try socket.setSendTimeout(100)
                try socket.connect("tcp://127.0.0.1:\(port)")
                sockets.append(socket)
            }
            defer { for socket in sockets { socket.close() } }
            let jobID: UInt64 = (7 &* 0x9E37_79B9_7F4A_7C15) ^ 3600
            var sent = 0
            for round in 0..<200 where coordinator.isRunning {
                let step = UInt64(h.lastStep(metrics: "metrics.jsonl"))
                let forged = Self.segment(jobID: jobID, step: step + UInt64(round % 3), epoch: 1, sender: UInt32(1 + round % 2),
                                          reduced: round % 2 == 0, count: 2372)
                let messages: [[UInt8]] = [forged, Array("TRBW".utf8) + [UInt8](repeating: 0xFF, count: 40), [UInt8](repeating: 0, count: 7)]
                for socket in sockets {
                    for message in messages where (try? socket.send([message], dontWait: true)) == true { sent += 1 }
                }
                usleep(5_000)
            }
            h.note("sent \(sent) stranger messages (curve: \(curve))")
            h.expectSuccess(coordinator, timeout: 90)
            for worker in workers { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h)
            if !curve {
                #expect(sent > 0)
                #expect(workers.contains { !lines(of: $0.stderr, containing: "dropped a peer message").isEmpty }, "\(h.report())")
            }
        }

        /// A well-formed `segment` (this protocol version, kind 0x10) of `count` float32 ones, with a
        /// guessed token.
        static func segment(jobID: UInt64, step: UInt64, epoch: UInt64, sender: UInt32, reduced: Bool, count: Int) -> [UInt8] {
            var bytes: [UInt8] = Array("TRBW".utf8) + [UInt8(WireMessage.protocolVersion), 0, 0x10, 0]
            func put<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
            put(jobID); put(step); put(epoch); put(UInt64.random(in: 1...UInt64.max)); put(sender)
            bytes.append(reduced ? 1 : 0)
            put(UInt64(0)); put(UInt32(0)); put(UInt32(32)); put(UInt64(64)); put(Double(1).bitPattern)
            bytes.append(1)
            put(UInt32(count))
            for _ in 0..<count { put(Float(1).bitPattern) }
            return bytes
        }
    }
}
