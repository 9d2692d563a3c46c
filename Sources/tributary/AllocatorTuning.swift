#if canImport(Glibc)
    import Glibc
#endif

/// glibc's allocator settings for a process that allocates and frees many same-sized large
/// buffers (every gradient and parameter message of a cluster step is megabytes).
///
/// By default glibc serves such blocks with a fresh `mmap` and returns them with `munmap` (or
/// trims the heap) when they are freed, so every message pays for page faults and the kernel
/// zeroing its pages again — a tenth of a coordinator's CPU time at wide64 in a profile. Raising
/// the mmap threshold to its maximum (32 MiB on 64-bit) and the trim threshold keeps freed blocks
/// in the heap for the next message. Peak memory is unchanged; what is freed is kept for reuse
/// instead of being returned to the system at once.
enum AllocatorTuning {
    /// Applies the settings (call once, first thing in `main`). `mallopt` is looked up at run
    /// time: `<malloc.h>` is not part of Swift's Glibc module.
    static func apply() {
        #if canImport(Glibc)
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            guard let symbol = dlsym(nil, "mallopt") else { return }
            let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
            // <malloc.h>: M_TRIM_THRESHOLD = -1, M_MMAP_THRESHOLD = -3.
            _ = mallopt(-3, 32 << 20)
            _ = mallopt(-1, 256 << 20)
        #endif
    }
}
