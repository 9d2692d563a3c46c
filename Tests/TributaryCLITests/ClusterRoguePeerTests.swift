import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// Hostile bytes on the coordinator's endpoint: a peer streaming garbage, truncated and
    /// mutated messages, bogus hellos and results for steps nobody asked for, and one that
    /// registers and then goes silent. The job finishes with the right bits and the coordinator
    /// logs one line per misbehaving peer.
    @Suite struct ClusterRoguePeerTests {
        /// Whether `python3` can `import zmq` (pyzmq).
        static let pythonHasZMQ: Bool = {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", "import zmq"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            guard (try? process.run()) != nil else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }()

        /// Where python3 is (for posix_spawn, which does not search PATH).
        static var python3: String? {
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            return path.split(separator: ":").map { "\($0)/python3" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        }

        @Test(.enabled(if: pythonHasZMQ, "needs python3 with pyzmq (pip install pyzmq); skipped"))
        func aRoguePeerDoesNotDisturbTheRun() throws {
            let python = try #require(Self.python3)
            let h = try ClusterHarness()
            defer { h.finish() }
            try h.dir.write(Self.rogueScript, to: "rogue.py")
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2", "--heartbeat-ms", "50"]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(200, metrics: "metrics.jsonl", while: coordinator) else { return }
            let rogue = try h.start("rogue", executable: python, [h.dir.file("rogue.py"), endpoint, "1.5", "12345"])
            #expect(rogue.wait(timeout: 20), "the rogue peer hung\n\(rogue)")
            #expect(rogue.exitCode == 0, "\(rogue)")

            h.expectSuccess(coordinator, timeout: 90)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            try ClusterFaultTests.expectReferenceModel(h)

            // One log line per misbehaving peer, however many invalid messages it sent.
            let log = coordinator.stderr
            let invalid = lines(of: log, containing: "invalid message from peer")
            var perPeer: [String: Int] = [:]
            for line in invalid {
                let after = line.components(separatedBy: "invalid message from peer ").last ?? ""
                perPeer[String(after.prefix { $0 != ":" }), default: 0] += 1
            }
            #expect(perPeer.count >= 3, "expected invalid-message lines for the garbage, hello and result sockets: \(invalid)\n\(coordinator)")
            #expect(perPeer.values.allSatisfy { $0 == 1 }, "a peer was logged more than once: \(perPeer)\n\(invalid.joined(separator: "\n"))")
            // The peer that registered and went silent was dropped like a dead worker.
            #expect(!lines(of: log, containing: "(rogue-silent) joined").isEmpty, "\(coordinator)")
            #expect(!lines(of: log, containing: "(rogue-silent) lost").isEmpty, "\(coordinator)")

            // The rogue saw the coordinator's answers: "say hello first" and "wrong dtype".
            let summary = rogue.stdout
            #expect(summary.contains("\"notRegistered\""), "\(rogue)")
            #expect(summary.contains("\"unsupportedDType\""), "\(rogue)")
        }

        /// The rogue: four DEALER sockets, each misbehaving in its own way for `duration` seconds;
        /// prints a JSON summary of what came back.
        static let rogueScript = #"""
            import json, os, random, struct, sys, time
            import zmq

            endpoint, duration, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
            rng = random.Random(seed)

            def header(kind, version=6, flags=0):
                return b"TRBW" + struct.pack("<HBB", version, kind, flags)

            def text(s):
                b = s.encode()
                return struct.pack("<I", len(b)) + b

            def hello(instance, dtypes=1, name="rogue", minv=6, maxv=6):
                return (header(1) + struct.pack("<HHQI", minv, maxv, instance, os.getpid())
                        + struct.pack("<BII", dtypes, 1, 1 << 20) + text(name) + text("nowhere") + text("none")
                        + text("tcp://127.0.0.1:9"))  # a peer endpoint nobody listens at

            def result(job, step, microbatch, values):
                return (header(7) + struct.pack("<QQQQQddQ", job, step, step, microbatch, 64, 1.5, 0.25, 0)
                        + struct.pack("<BI", 1, len(values)) + struct.pack("<%df" % len(values), *values))

            def heartbeat(sequence):
                return header(11) + struct.pack("<QIB", sequence, 0, 0)

            def welcome():
                return header(2) + struct.pack("<IQQII", 1, 5, 6, 250, 8)

            def mutate(message):
                b = bytearray(message)
                for _ in range(rng.randint(1, 3)):
                    b[rng.randrange(8, len(b))] = rng.randrange(256)
                return bytes(b)

            # The real job's id (seed 7, 3600 training rows), so some results look plausible.
            job = (7 * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF) ^ 3600

            context = zmq.Context()
            def dealer():
                s = context.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(endpoint)
                return s
            garbage, hellos, results, silent = dealer(), dealer(), dealer(), dealer()
            names = {garbage: "garbage", hellos: "hellos", results: "results", silent: "silent"}

            # Registers like a worker, then never answers: the coordinator must drop it.
            silent.send(hello(rng.randrange(1, 1 << 63), name="rogue-silent"))

            def garbage_message(i):
                choice = i % 12
                if choice == 0: return [os.urandom(rng.randrange(0, 300))]
                if choice == 1: return [b"TRBW" + os.urandom(rng.randrange(0, 100))]
                if choice == 2: return [header(7) + os.urandom(60)]
                if choice == 3: return [header(0x2A) + os.urandom(20)]
                if choice == 4: return [heartbeat(i) + b"\x07"]                      # a trailing byte
                if choice == 5:
                    valid = hello(rng.randrange(1, 1 << 63))
                    return [valid[:rng.randrange(0, len(valid))]]                  # truncated hello
                if choice == 6: return [welcome()]                                 # not a worker's message
                if choice == 7: return [heartbeat(i), os.urandom(10)]              # two frames
                if choice == 8: return [os.urandom(5) for _ in range(6)]           # too many frames
                if choice == 9: return [b""]
                if choice == 10:
                    valid = result(job, rng.randrange(1 << 40), rng.randrange(1 << 20), [1.0, -2.0])
                    return [valid[:rng.randrange(8, len(valid))]]                  # truncated result
                return [hello(rng.randrange(1, 1 << 63)) + b"\x00"]                 # trailing byte

            def bogus_hello(i):
                choice = i % 5
                if choice == 0: return hello(rng.randrange(1, 1 << 63), dtypes=2)  # float64 only: refused
                if choice == 1: return hello(0)                                    # instance 0
                if choice == 2: return hello(rng.randrange(1, 1 << 63), name="")   # empty name
                if choice == 3: return hello(rng.randrange(1, 1 << 63), minv=3, maxv=4)
                return hello(rng.randrange(1, 1 << 63), dtypes=0x80)

            def stray_result(i):
                choice = i % 5
                if choice == 0: return result(job, 10**9 + i, i % 8, [0.5] * 4744)          # unknown step
                if choice == 1: return result(rng.randrange(1 << 64), i, 0, [0.5, 0.25])   # unknown job
                if choice == 2: return mutate(result(job, 10**9, 3, [0.5] * 16))           # mutated
                if choice == 3: return heartbeat(i)                                        # unregistered heartbeat
                return header(13) + text("bye from nobody")                                # unregistered goodbye

            replies = {}
            codes = {}
            CODES = {1: "badMessage", 2: "unsupportedVersion", 3: "unknownJob", 9: "unsupportedDType", 11: "notRegistered"}
            KINDS = {1: "hello", 2: "welcome", 3: "jobSpec", 4: "shardRows", 5: "parameters", 6: "assignment",
                     11: "heartbeat", 12: "error", 13: "goodbye"}
            def drain(socket):
                if socket is silent:
                    return  # never reads: a stalled peer
                while True:
                    try:
                        frames = socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        return
                    body = frames[-1]
                    kind = KINDS.get(body[6], str(body[6])) if len(body) >= 8 and body[:4] == b"TRBW" else "undecodable"
                    key = names[socket] + "." + kind
                    replies[key] = replies.get(key, 0) + 1
                    if kind == "error" and len(body) >= 10:
                        code = CODES.get(struct.unpack_from("<H", body, 8)[0], "other")
                        codes[code] = codes.get(code, 0) + 1

            sent = 0
            end = time.monotonic() + duration
            i = 0
            while time.monotonic() < end:
                garbage.send_multipart(garbage_message(i))
                if i % 3 == 0: hellos.send(bogus_hello(i // 3))
                if i % 2 == 0: results.send(stray_result(i // 2))
                sent += 1
                i += 1
                for s in (garbage, hellos, results):
                    drain(s)
                time.sleep(0.002)
            time.sleep(0.2)
            for s in (garbage, hellos, results):
                drain(s)
            print(json.dumps({"iterations": sent, "replies": replies, "errorCodes": codes}, sort_keys=True))
            context.destroy(linger=0)
            """#
    }
}
