import ArgumentParser
import FlowData
import FlowRandom
import Flows
import Foundation

/// `tributary sample`: draw rows from a trained flow.
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw samples x = f⁻¹(z), z ~ N(0, I), from a model.")

    @Option(help: "The model file (safetensors).")
    var model: String

    @Option(help: "Number of samples.")
    var count: Int

    @Option(help: "Where to write the samples (.npy, .csv or .tsv).")
    var output: String

    @Option(name: .customLong("log-prob"), help: "Also write log p of each sample (computed along the inverse path) to this file.")
    var logProb: String?

    @Option(help: "Seed of the base noise.")
    var seed: UInt64 = 0

    @Option(help: "Threads (chunks of 1,024 samples at once); the samples do not depend on it.")
    var threads: Int = 1

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
    }

    func run() throws {
        BLASThreads.set(1)
        try OutputPlan().reading("--model", model).writing("--output", output).writing("--log-prob", logProb).check()
        // A handled SIGINT/SIGTERM removes the outputs' temporary files.
        SignalCleanup.install()
        let (loaded, _) = try ModelFile.read(from: model)
        switch loaded {
        case .float32(let m): try sample(m)
        case .float64(let m): try sample(m)
        }
    }

    private func sample<S: FlowScalar>(_ flow: RealNVP<S>) throws {
        let D = flow.dimension
        let dtype: DataType = S.self == Float.self ? .float32 : .float64
        let names = (0..<D).map { "x\($0)" }
        for path in ([output] + (logProb.map { [$0] } ?? [])).flatMap({ TemporaryFiles.removeStale(for: $0) }) {
            StandardErrorLog.write("removed \(path), a temporary file an interrupted run left")
        }
        let writer = try DataFormat.writer(path: output, columns: D, header: names, dtype: dtype)
        let lpWriter = try logProb.map { try DataFormat.writer(path: $0, columns: 1, header: ["log_prob"], dtype: dtype) }
        var generator = SeededGenerator(seed: seed, stream: 0x5341_4D50)  // the stream RealNVP.sample(count:seed:) uses
        let chunk = 8192
        let workspaces = (0..<max(1, threads)).map { _ in InferenceWorkspace<S>(configuration: flow.configuration, capacity: 1024) }
        var x = [S](repeating: 0, count: chunk * D), lp = [S](repeating: 0, count: chunk)
        var done = 0
        while done < count {
            let n = min(chunk, count - done)
            flow.sample(rows: n, generator: &generator, into: &x, logProbability: &lp, workspaces: workspaces)
            try writer.append(values: x[0..<(n * D)].map { Double($0) }, rows: n)
            try lpWriter?.append(values: lp[0..<n].map { Double($0) }, rows: n)
            done += n
        }
        try writer.finish()
        try lpWriter?.finish()
        print("wrote \(count) samples to \(output)" + (logProb.map { " and their log p to \($0)" } ?? ""))
    }
}
