import ArgumentParser

/// Where a run reports besides its log and metrics file: TensorBoard event files and a
/// Prometheus textfile (docs/operations.md, "Watching a run").
struct MonitoringOptions: ParsableArguments {
    @Option(name: .customLong("tensorboard"), help: "Write TensorBoard event files into this directory (created if missing).")
    var tensorboard: String?

    @Option(name: .customLong("prometheus-textfile"), help: "Rewrite this file (atomically, every 2 s and at the end) with the run's figures in the Prometheus text format, for node_exporter's textfile collector; name it *.prom.")
    var prometheusTextfile: String?
}
