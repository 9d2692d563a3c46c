import Dispatch
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns SIGINT and SIGTERM into a request a run loop polls, so the process can leave cleanly
/// (a worker says goodbye to its coordinator). A second signal while the first is being handled
/// exits at once with status 128 + signal, so a stuck process can still be stopped.
///
/// `@unchecked Sendable` invariant: `received` is read and written only under `lock` (the
/// signal sources run on their own queue, the run loop polls from its thread).
public final class StopSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var _received: Int32?
    private var sources: [DispatchSourceSignal] = []

    /// Starts catching `signals` for the life of this object.
    public init(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        let queue = DispatchQueue(label: "stop-signals")
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in
                // A signal that lands while the object goes away (the process is ending): exit.
                guard let self else { _exit(128 + number) }
                let first = self.lock.withLock { () -> Bool in
                    if self._received != nil { return false }
                    self._received = number
                    return true
                }
                if !first { _exit(128 + number) }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// The first signal received, nil while none was.
    public var received: Int32? { lock.withLock { _received } }

    deinit {
        for source in sources { source.cancel() }
    }
}
