import COpenBLAS

/// Control of the BLAS library's own thread pool.
///
/// OpenBLAS parallelises one matrix product over its threads. Tributary's workers default to
/// one BLAS thread (parallelism comes from running micro-batches on separate processes), and
/// `tributary bench --threads T` measures 1 and 2.
public enum BLASThreads {
    /// The number of threads OpenBLAS currently uses for one product.
    public static var count: Int { Int(openblas_get_num_threads()) }

    /// Sets the number of OpenBLAS threads (values below 1 are treated as 1).
    public static func set(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    /// A one-line description of the BLAS build (library, version, kernel), for logs and benchmarks.
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "OpenBLAS" }
        return String(cString: c)
    }

    /// The CPU kernel family OpenBLAS selected at run time (e.g. `Haswell`, `Zen`).
    public static var coreName: String {
        guard let c = openblas_get_corename() else { return "unknown" }
        return String(cString: c)
    }
}
