import Foundation
import Testing

@testable import FlowCluster

/// The launcher's signal-handler registry forgets a pid once the process is reaped, so a
/// SIGINT later never SIGKILLs a pid the system has handed to another process.
struct WorkerLauncherTests {
    /// Polls `running()` until it reports no process (bounded: the child exits at once).
    private static func waitUntilReaped(_ launcher: WorkerLauncher) {
        for _ in 0..<500 where launcher.running() > 0 { usleep(10_000) }
    }

    @Test(.timeLimit(.minutes(1)))
    func aReapedProcessLeavesTheRegistry() throws {
        let launcher = WorkerLauncher(executable: "/bin/sh")
        let pid = try launcher.start(arguments: ["-c", "exit 0"])
        #expect(WorkerLauncher.registeredPids.contains(pid))
        Self.waitUntilReaped(launcher)
        #expect(launcher.running() == 0)
        #expect(!WorkerLauncher.registeredPids.contains(pid), "pid \(pid) was reaped but is still registered")
    }

    @Test(.timeLimit(.minutes(1)))
    func terminateAllClearsTheRegistry() throws {
        let launcher = WorkerLauncher(executable: "/bin/sh")
        let pids = try (0..<3).map { _ in try launcher.start(arguments: ["-c", "sleep 30"]) }
        #expect(pids.allSatisfy { WorkerLauncher.registeredPids.contains($0) })
        launcher.terminateAll(grace: 0.2)
        #expect(launcher.pids.isEmpty)
        for pid in pids {
            #expect(!WorkerLauncher.registeredPids.contains(pid), "pid \(pid) was reaped but is still registered")
            #expect(Self.isNotOurChild(pid), "pid \(pid) was not reaped")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSlotIsReusedAfterItsProcessIsReaped() throws {
        let launcher = WorkerLauncher(executable: "/bin/sh")
        for _ in 0..<20 {
            try launcher.start(arguments: ["-c", "exit 0"])
            Self.waitUntilReaped(launcher)
        }
        // Twenty short-lived processes later, at most the other tests' live ones remain.
        #expect(WorkerLauncher.registeredPids.count < 20)
    }

    /// A pid that is not our child any more (reaped; possibly reused by someone else).
    private static func isNotOurChild(_ pid: pid_t) -> Bool {
        var status: Int32 = 0
        return waitpid(pid, &status, WNOHANG) == -1 && errno == ECHILD
    }
}
