import Flows
import Foundation

/// Makes sure OpenBLAS runs fast, correct kernels.
///
/// OpenBLAS picks its CPU kernels when the library loads. Releases that predate a processor
/// model (Debian 12 ships 0.3.21) fall back to generic SSE3 kernels (`Prescott`) on it — two to
/// four times slower on current hardware. When that happened and the user has not chosen a
/// kernel (`OPENBLAS_CORETYPE` unset), the process re-executes itself once with the best kernel
/// family the CPU's flags allow: `SkylakeX` (AVX-512), else `Haswell` (AVX2+FMA). The chosen
/// kernels are then checked against a reference product (`BLASSelfTest`); if they disagree, the
/// process re-executes with the next safer family, down to OpenBLAS's own choice.
/// Set `TRIBUTARY_KEEP_BLAS_KERNEL=1` to disable all of this.
///
/// Every process of a run (workers inherit the environment) uses the same kernels, which
/// matters because bit-for-bit reproducibility holds for a given kernel family.
enum BLASKernelSelection {
    /// Generic kernels OpenBLAS uses for CPUs it does not recognise.
    static let genericKernels: Set<String> = [
        "prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington", "nehalem", "atom", "generic", "unknown",
    ]
    /// Marks an `OPENBLAS_CORETYPE` that this selection set (as opposed to the user).
    static let marker = "TRIBUTARY_SELECTED_BLAS_KERNEL"

    /// Re-executes the process with better kernels when appropriate; returns when it does not.
    static func upgradeIfNeeded() {
        // Every command computes with one BLAS thread per compute thread (parallelism comes from
        // micro-batches and row chunks); extra OpenBLAS threads would only spin between calls.
        BLASThreads.set(1)
        let env = ProcessInfo.processInfo.environment
        guard env["TRIBUTARY_KEEP_BLAS_KERNEL"] == nil else { return }
        if let chosen = env[marker] {
            // We chose these kernels (here or in a parent process): verify them.
            guard let failure = BLASSelfTest.run() else { return }
            let next = fallback(after: chosen)
            StandardErrorLog.write("warning: OpenBLAS \(chosen) kernels failed a self-test (\(failure)); using \(next ?? "OpenBLAS's default") kernels")
            if let next {
                reexecute(with: next)
            } else {
                unsetenv("OPENBLAS_CORETYPE")
                setenv("TRIBUTARY_KEEP_BLAS_KERNEL", "1", 1)
                reexecute(with: nil)
            }
            return
        }
        guard env["OPENBLAS_CORETYPE"] == nil else { return }
        guard genericKernels.contains(BLASThreads.coreName.lowercased()) else { return }
        let flags = cpuFlags()
        if ["avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"].allSatisfy(flags.contains) {
            reexecute(with: "SkylakeX")
        } else if flags.contains("avx2"), flags.contains("fma") {
            reexecute(with: "Haswell")
        }
    }

    static func fallback(after kernel: String) -> String? {
        guard kernel == "SkylakeX", cpuFlags().contains("avx2"), cpuFlags().contains("fma") else { return nil }
        return "Haswell"
    }

    static func cpuFlags() -> Set<String> {
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return [] }
        return Set(line.split(separator: " ").map(String.init))
    }

    /// Replaces the process image with itself, `OPENBLAS_CORETYPE` set to `kernel` (or left
    /// unset). Returns only if `execv` fails, in which case the current kernels stay.
    static func reexecute(with kernel: String?) {
        if let kernel {
            setenv("OPENBLAS_CORETYPE", kernel, 1)
            setenv(marker, kernel, 1)
        }
        // Start without OpenBLAS's thread pool at all (the user's own setting wins).
        setenv("OPENBLAS_NUM_THREADS", "1", 0)
        var arguments: [UnsafeMutablePointer<CChar>?] = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        unsetenv("OPENBLAS_CORETYPE")
        unsetenv(marker)
    }
}
