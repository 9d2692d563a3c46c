import Flows
import Foundation

/// Makes sure OpenBLAS runs vectorised kernels.
///
/// OpenBLAS picks its CPU kernels when the library loads. Releases that predate a processor
/// model (Debian 12 ships 0.3.21) fall back to generic SSE3 kernels (`Prescott`) on it — two to
/// three times slower on AVX2 hardware. When that happened, the CPU reports AVX2 and FMA, and
/// the user has not chosen a kernel (`OPENBLAS_CORETYPE` unset), the process re-executes itself
/// once with `OPENBLAS_CORETYPE=Haswell` (the AVX2+FMA kernels, which every such CPU runs).
/// Set `TRIBUTARY_KEEP_BLAS_KERNEL=1` to disable this.
enum BLASKernelSelection {
    /// Generic kernels OpenBLAS uses for CPUs it does not recognise.
    static let genericKernels: Set<String> = ["prescott", "katmai", "coppermine", "northwood", "banias", "core2", "penryn", "dunnington", "nehalem", "atom", "generic", "unknown"]

    /// Re-executes the process with AVX2 kernels when appropriate; returns when it does not.
    static func upgradeIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["TRIBUTARY_KEEP_BLAS_KERNEL"] == nil else { return }
        guard genericKernels.contains(BLASThreads.coreName.lowercased()) else { return }
        guard let cpuinfo = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = cpuinfo.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        guard flags.contains("avx2"), flags.contains("fma") else { return }
        setenv("OPENBLAS_CORETYPE", "Haswell", 1)
        let arguments = CommandLine.arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        execv("/proc/self/exe", &cArguments)
        // execv returned: it failed; carry on with the kernels we have.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
