import Dispatch
import Flows

/// Computes several micro-batch gradients at once, one per thread ("lane"), each lane with its
/// own workspace and a single-threaded BLAS.
///
/// Parallelism comes from independent micro-batches, never from splitting one product over
/// threads, so every micro-batch's gradient has the same bits whatever the lane count — and the
/// caller adds them in the step's tree order (`reduce`). A worker process and the single-process trainer both
/// compute through lanes.
///
/// `@unchecked Sendable`: during `compute`, lane `i`'s buffers are touched only by iteration `i`
/// of `concurrentPerform`; outside it, only by the owning thread.
public final class GradientLanes<Scalar: FlowScalar>: @unchecked Sendable {
    /// Number of lanes (threads).
    public let count: Int
    /// Rows per micro-batch the lanes can hold.
    public let capacity: Int
    private let dimension: Int
    private let parameterCount: Int
    private let workspaces: [GradientWorkspace<Scalar>]
    private var rows: [[Scalar]]
    private var gradients: [[Scalar]]
    private var losses: [Double]

    /// Lanes for `configuration`, micro-batches of up to `capacity` rows. With more than one
    /// lane, BLAS is set to one thread.
    public init(configuration: FlowConfiguration, capacity: Int, lanes: Int) {
        count = max(1, lanes)
        self.capacity = capacity
        dimension = configuration.dimension
        parameterCount = configuration.parameterCount
        workspaces = (0..<count).map { _ in GradientWorkspace(configuration: configuration, capacity: capacity) }
        rows = Array(repeating: [Scalar](repeating: 0, count: capacity * configuration.dimension), count: count)
        gradients = Array(repeating: [Scalar](repeating: 0, count: configuration.parameterCount), count: count)
        losses = Array(repeating: 0, count: count)
    }

    /// Computes `batches.count ≤ count` micro-batches in parallel. Micro-batch `i` consists of the
    /// rows of `batches[i].rows` (row-major, `D` columns) at `batches[i].positions`. Afterwards
    /// `gradient(lane: i)` and `loss(lane: i)` hold its summed NLL gradient and loss.
    public func compute(model: RealNVP<Scalar>, batches: [(rows: [Scalar], positions: [Int])]) {
        precondition(batches.count <= count, "\(batches.count) micro-batches for \(count) lanes")
        let D = dimension
        let work: @Sendable (Int) -> Void = { lane in
            let (source, positions) = batches[lane]
            precondition(positions.count <= self.capacity, "micro-batch of \(positions.count) rows exceeds \(self.capacity)")
            source.withUnsafeBufferPointer { from in
                self.rows[lane].withUnsafeMutableBufferPointer { target in
                    for (i, p) in positions.enumerated() {
                        (target.baseAddress! + i * D).update(from: from.baseAddress! + p * D, count: D)
                    }
                }
            }
            let loss = self.rows[lane].withUnsafeBufferPointer { x in
                self.gradients[lane].withUnsafeMutableBufferPointer { g in
                    model.negativeLogLikelihoodGradient(
                        x.baseAddress!, rows: positions.count, parameterGradient: g.baseAddress!, inputGradient: nil,
                        workspace: self.workspaces[lane])
                }
            }
            self.losses[lane] = loss
        }
        if batches.count == 1 {
            work(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: batches.count, execute: work)
        }
    }

    /// The gradient computed by `lane` in the last `compute`.
    public func gradient(lane: Int) -> [Scalar] { gradients[lane] }

    /// The loss sum computed by `lane` in the last `compute`.
    public func loss(lane: Int) -> Double { losses[lane] }

    /// Adds lane `lane`'s result, a micro-batch of shard `shard`, to `sum` (call in tree order).
    /// The sum may take the lane's gradient array and leave it another (no copy): afterwards
    /// `gradient(lane:)` is unspecified until the next `compute`.
    public func add(lane: Int, shard: Int, rows: Int, to sum: inout GradientSum<Scalar>) {
        sum.add(microBatchOf: shard, taking: &gradients[lane], lossSum: losses[lane], rows: rows)
    }
}
