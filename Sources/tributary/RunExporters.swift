import FlowCluster
import FlowData
import Foundation

/// The exporters of one run (`MonitoringOptions`): a TensorBoard event file that gets every
/// reported step, and a Prometheus textfile rewritten at most every `prometheusInterval` seconds
/// and at the end. Failing to write either is logged once and never stops the run.
final class RunExporters {
    /// Seconds between two rewrites of the Prometheus file.
    static let prometheusInterval = 2.0

    private let events: TensorBoardEventFile?
    private let prometheusPath: String?
    private var lastPrometheus = -Double.infinity
    private var failed: Set<String> = []

    /// Opens the outputs (`--tensorboard DIR`, `--prometheus-textfile PATH`); `resumedAt` (a
    /// resumed run's checkpoint step) makes TensorBoard drop the earlier file's events after it.
    init(tensorboard: String?, prometheus: String?, resumedAt: Int? = nil) throws {
        events = try tensorboard.map { dir in
            do {
                return try TensorBoardEventFile(directory: dir, wallTime: Date().timeIntervalSince1970, resumingAt: resumedAt.map { $0 + 1 })
            } catch {
                throw CLIError("--tensorboard \(dir): \(error)")
            }
        }
        prometheusPath = prometheus
    }

    /// Whether the Prometheus file is due (or `final`).
    func prometheusDue(now: Double, final: Bool) -> Bool {
        prometheusPath != nil && (final || now - lastPrometheus >= Self.prometheusInterval)
    }

    /// Appends `scalars` at `step` to the event file.
    func tensorboard(step: Int, _ scalars: [(tag: String, value: Double)]) {
        guard let events else { return }
        events.write(step: step, wallTime: Date().timeIntervalSince1970, scalars: scalars.filter { $0.value.isFinite })
        do { try events.flush() } catch { once("tensorboard", "cannot write \(events.path): \(error); TensorBoard output stops here") }
    }

    /// Rewrites the Prometheus file with `metrics`.
    func prometheus(_ metrics: PrometheusTextFile, now: Double) {
        guard let prometheusPath else { return }
        lastPrometheus = now
        do { try metrics.write(to: prometheusPath) } catch { once("prometheus", "cannot write \(prometheusPath): \(error)") }
    }

    private func once(_ key: String, _ line: String) {
        if failed.insert(key).inserted { StandardErrorLog.write("warning: " + line) }
    }
}

extension PrometheusTextFile {
    /// The counters of a coordinator's run, as `tributary_*` families.
    mutating func add(_ c: ClusterCounters) {
        add("tributary_live_workers", .gauge, help: "Workers registered with the coordinator.", value: Double(c.liveWorkers))
        add("tributary_reassigned_total", .counter, help: "Work items (micro-batches or chunks) given to another worker after theirs was lost, left or stalled.", value: Double(c.reassigned))
        add("tributary_backups_total", .counter, help: "Backup copies of a slow worker's micro-batches sent to an idle worker.", value: Double(c.backups))
        add("tributary_quarantines_total", .counter, help: "Workers quarantined because their results disagreed.", value: Double(c.quarantines))
        add("tributary_invalid_messages_total", .counter, help: "Messages that did not decode or that no worker may send.", value: Double(c.invalidMessages))
        add("tributary_refused_hellos_total", .counter, help: "Hellos refused by the rate limit, the worker cap or a quarantine.", value: Double(c.refusedHellos))
        add("tributary_dropped_messages_total", .counter, help: "Valid messages dropped (duplicates, late results, unknown senders).", value: Double(c.droppedMessages))
        add("tributary_sent_bytes_total", .counter, help: "Message bytes the coordinator queued to workers.", value: Double(c.bytesSent))
        add("tributary_received_bytes_total", .counter, help: "Message bytes the coordinator received from workers.", value: Double(c.bytesReceived))
    }
}
