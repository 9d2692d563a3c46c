import Flows
import Foundation

/// An up-front estimate of the memory a training run needs, checked against what the machine
/// (or its cgroup) has, so that a model too large for it is refused with the figures before
/// any allocation rather than killed or trapped later.
///
/// The estimate is a lower bound: per process, the parameters, Adam's two moments, the step's
/// gradient sum and one gradient per lane (each `P` scalars), plus each lane's activations for a
/// micro-batch (K couplings × (depth + 6) buffers of m × H scalars) and the data; with
/// `--keep-best`, one more copy of the parameters in the training process.
struct MemoryBudget {
    /// Bytes the run needs at least.
    let neededBytes: Double
    /// What the estimate is made of, for the message.
    let breakdown: String

    init(
        configuration c: FlowConfiguration, scalarBytes: Int, microBatch: Int, lanes: Int, workerProcesses: Int, dataValues: Int,
        keepBest: Bool = false
    ) {
        let P = Double(c.parameterCount)
        let S = Double(scalarBytes)
        let activations = Double(c.couplings) * Double(c.depth + 6) * Double(microBatch) * Double(max(c.hidden, c.dimension)) * S
        let perProcess = S * P * Double(4 + lanes) + Double(lanes) * activations
        let processes = Double(1 + workerProcesses)
        neededBytes = perProcess * processes + Double(dataValues) * (8 + S) + (keepBest ? S * P : 0)
        breakdown = "\(c.parameterCount) parameters × \(scalarBytes) bytes × (\(4 + lanes) copies: parameters, Adam moments, gradients)"
            + (workerProcesses > 0 ? " in each of \(1 + workerProcesses) processes" : "")
            + (keepBest ? ", and the best parameters kept by --keep-best" : "")
    }

    /// Bytes this process may still allocate: `MemAvailable` of /proc/meminfo, lowered to the
    /// cgroup's limit less its usage when there is one; `nil` when neither can be read.
    static func available() -> Double? {
        var result: Double? = nil
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kB = Double(line.split(separator: " ")[1]) {
            result = kB * 1024
        }
        for (limitFile, usageFile) in [
            ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
            ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
        ] {
            guard let limit = number(limitFile), limit < 1e18 else { continue }
            let left = limit - (number(usageFile) ?? 0)
            result = min(result ?? left, left)
        }
        return result
    }

    private static func number(_ path: String) -> Double? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Throws `TooLarge` when the estimate exceeds `available`.
    func check(available: Double? = MemoryBudget.available()) throws {
        guard let available, neededBytes > available else { return }
        throw TooLarge(needed: neededBytes, available: available, breakdown: breakdown)
    }

    /// A run that would not fit in memory.
    struct TooLarge: Error, CustomStringConvertible {
        let needed: Double
        let available: Double
        let breakdown: String

        var description: String {
            "this run needs at least \(Self.gigabytes(needed)) of memory (\(breakdown)) but \(Self.gigabytes(available)) is available; "
                + "choose a smaller --hidden, --depth, --couplings or --micro-batch, fewer --threads or --workers, or --dtype float32"
        }

        static func gigabytes(_ bytes: Double) -> String { String(format: "%.1f GB", bytes / 1e9) }
    }
}
