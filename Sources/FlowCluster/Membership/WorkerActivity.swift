/// What one worker has done in a job, for monitoring: the rows of its accepted results and the
/// seconds it reported computing them (`computeSeconds` of each result). Its compute rate —
/// rows per busy second — is the worker's own speed, whatever the network or its share.
/// Never an input to a decision of the machines, nor to the model's bits.
public struct WorkerActivity: Sendable, Equatable {
    /// Rows of accepted results.
    public var rows = 0
    /// Seconds the worker reported computing them.
    public var computeSeconds = 0.0

    public init(rows: Int = 0, computeSeconds: Double = 0) {
        self.rows = rows
        self.computeSeconds = computeSeconds
    }

    /// Adds one accepted result.
    public mutating func add(rows: Int, seconds: Double) {
        self.rows += rows
        computeSeconds += seconds
    }

    /// Rows per busy second (nil before any busy time).
    public var rowsPerSecond: Double? { computeSeconds > 0 ? Double(rows) / computeSeconds : nil }

    /// The activity since `earlier` (the same worker's figures at an earlier time).
    public func since(_ earlier: WorkerActivity) -> WorkerActivity {
        WorkerActivity(rows: rows - earlier.rows, computeSeconds: computeSeconds - earlier.computeSeconds)
    }
}
