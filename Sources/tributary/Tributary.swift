import ArgumentParser
import Flows
import Foundation

/// `tributary`: train, score and sample RealNVP normalising flows — in one process or on a cluster.
@main
struct Tributary: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Train, score and sample RealNVP normalizing flows.",
        discussion: """
            Built-in datasets: moons, 8gaussians, checkerboard, rings, mixture:D.
            Model files are safetensors with PyTorch tensor names (see docs/model.md).
            """,
        version: TributaryVersion.current,
        subcommands: [
            TrainCommand.self, CoordinatorCommand.self, WorkerCommand.self, ScoreCommand.self, SampleCommand.self,
            DatasetCommand.self, PlotCommand.self, BenchCommand.self, SimulateCommand.self, KeygenCommand.self,
        ]
    )

    static func main() {
        AllocatorTuning.apply()
        BLASKernelSelection.upgradeIfNeeded()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            exit(withError: error)
        }
    }
}
