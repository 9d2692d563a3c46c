import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ClusterTests {
    /// A worker that stays alive but crawls (SIGSTOP for 500 ms, SIGCONT for 25 ms, over and over:
    /// it heartbeats, so it is never declared dead) does not hold the job up: its micro-batches
    /// are backed up by the other worker, it is demoted for a while, and the model is the bytes
    /// of a single-process run.
    @Suite struct ClusterSlowWorkerTests {
        /// SIGSTOPs and SIGCONTs `pid` in a cycle until stopped; leaves it running.
        final class Throttle: @unchecked Sendable {
            private let lock = NSLock()
            private var running = true
            private let done = DispatchSemaphore(value: 0)

            init(pid: pid_t, stopped: useconds_t, running runFor: useconds_t) {
                Thread.detachNewThread { [self] in
                    while isRunning {
                        kill(pid, SIGSTOP)
                        usleep(stopped)
                        kill(pid, SIGCONT)
                        usleep(runFor)
                    }
                    kill(pid, SIGCONT)
                    done.signal()
                }
            }

            private var isRunning: Bool {
                lock.lock()
                defer { lock.unlock() }
                return running
            }

            /// Ends the cycle and waits until the process is left running.
            func stop() {
                lock.lock()
                running = false
                lock.unlock()
                done.wait()
            }
        }

        @Test func aSlowButLiveWorkerIsBackedUpAndDemotedNotWaitedFor() throws {
            let h = try ClusterHarness()
            defer { h.finish() }
            let endpoint = try h.tcpEndpoint()
            let coordinator = try h.start("coordinator", ClusterCommand.coordinator(endpoint, ["--min-workers", "2"]))
            let w1 = try h.start("w1", ClusterCommand.worker(endpoint, name: "w1"))
            let w2 = try h.start("w2", ClusterCommand.worker(endpoint, name: "w2"))
            guard h.waitForStep(300, metrics: "metrics.jsonl", while: coordinator) else { return }
            let throttle = Throttle(pid: w2.pid, stopped: 500_000, running: 25_000)
            let finished = h.waitUntil(timeout: 120) { !coordinator.isRunning }
            throttle.stop()
            #expect(finished, "the job did not finish in 120 s with a slow worker\n\(h.report())")
            h.expectSuccess(coordinator, timeout: 10)
            for worker in [w1, w2] { h.expectSuccess(worker, timeout: 10) }
            let log = coordinator.stderr
            #expect(!lines(of: log, containing: "is slow").isEmpty, "no backups\n\(coordinator)")
            #expect(!lines(of: log, containing: "(w2) was slower than its backups").isEmpty, "w2 was not demoted\n\(coordinator)")
            #expect(lines(of: log, containing: "lost").isEmpty, "a live worker was declared dead\n\(coordinator)")
            // What shows that the job did not wait for w2 is in the log, not in a stopwatch: its
            // micro-batches were backed up and it was demoted. (For scale: the 2,700 steps after
            // the throttle began took about 4 s here with backups, 47 s with backups switched off.)
            try ClusterFaultTests.expectReferenceModel(h)
        }
    }
}
