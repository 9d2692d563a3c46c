/// Per-worker figures for progress lines, metrics files and exporters: each live worker's own
/// compute rate (rows per busy second, from the compute times its results report), its share of
/// the rows since the last report, and whether it is a straggler.
///
/// A worker is marked a *straggler* when it is demoted by the straggler policy, or when, with at
/// least two workers measured, its rate is below half the median rate. The rate is measured
/// over the rows since the previous `figures` call (the last report) when the worker computed
/// any, else over the whole run.
public struct WorkerFigures: Sendable {
    /// One worker's figures.
    public struct Figure: Sendable, Equatable {
        public var id: UInt32
        public var name: String
        /// Rows per busy second (nil before the worker reported compute time).
        public var rowsPerSecond: Double?
        /// The worker's part of the rows accepted since the last report (0...1).
        public var share: Double
        /// Demoted, or below half the median rate.
        public var straggler: Bool
        /// Rows accepted from it in the run (this machine's start).
        public var rows: Int
        /// Seconds it reported computing since the previous report.
        public var busySeconds: Double
    }

    private var previous: [UInt32: WorkerActivity] = [:]

    public init() {}

    /// The figures of the workers in `activity` that are in `live` (sorted ids), with their
    /// `names`; `demoted` workers are stragglers.
    public mutating func figures(
        live: [UInt32], activity: [UInt32: WorkerActivity], names: [UInt32: String], demoted: Set<UInt32> = []
    ) -> [Figure] {
        let windows = live.map { id -> WorkerActivity in
            let now = activity[id] ?? WorkerActivity()
            return now.since(previous[id] ?? WorkerActivity())
        }
        let total = windows.reduce(0) { $0 + $1.rows }
        var figures = live.enumerated().map { i, id -> Figure in
            let window = windows[i], all = activity[id] ?? WorkerActivity()
            let rate = window.rows > 0 ? window.rowsPerSecond : all.rowsPerSecond
            return Figure(
                id: id, name: names[id] ?? "w\(id)", rowsPerSecond: rate, share: total > 0 ? Double(window.rows) / Double(total) : 0,
                straggler: demoted.contains(id), rows: all.rows, busySeconds: window.computeSeconds)
        }
        let rates = figures.compactMap(\.rowsPerSecond).sorted()
        if rates.count >= 2 {
            let median = rates.count % 2 == 1 ? rates[rates.count / 2] : (rates[rates.count / 2 - 1] + rates[rates.count / 2]) / 2
            for i in figures.indices where (figures[i].rowsPerSecond ?? .infinity) < median / 2 { figures[i].straggler = true }
        }
        previous = activity
        return figures
    }
}
