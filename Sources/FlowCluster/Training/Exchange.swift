/// How the workers' partial gradients of a step are combined (`--exchange`; docs/operations.md).
///
/// Both give the bits of one process; they differ in who carries the bytes.
public enum Exchange: String, Sendable, CaseIterable {
    /// Every worker sends its pre-reduced partials to the coordinator, which folds them, applies
    /// Adam and sends the parameters back: the coordinator's link carries 2·P per worker and step.
    case star
    /// Workers send each parameter segment of their partials to the segment's owner (another
    /// worker); owners fold and send the step's gradient segment to every worker; every worker
    /// applies Adam. Each worker sends about 2·P·(W−1)/W per step, the coordinator only control
    /// messages (`sync=sharded`).
    case sharded
}
