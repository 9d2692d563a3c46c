import Foundation
import Testing

/// `tributary simulate`: the projection printed for given costs, as a table and as JSON lines.
struct SimulateCommandTests {
    static func projections(_ arguments: [String]) throws -> [[String: Any]] {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(["simulate", "--json"] + arguments, in: dir.path, timeout: 60)
        return try result.stdout.split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    @Test func givenCostsTheProjectionFollowsTheModel() throws {
        // tab16 (P = 197,280: 0.79 MB messages), 16 micro-batches of 64 rows, 2 ms each; a
        // 10 Gbit/s link carries a message in 0.63 ms.
        let rows = try Self.projections([
            "--config", "tab16", "--micro-batch", "64", "--workers", "1,2,4,16,32", "--micro-batch-ms", "2", "--add-ms", "0",
            "--apply-ms", "0", "--latency-us", "0",
        ])
        #expect(rows.count == 5)
        let steps = rows.map { ($0["step_seconds"] as? NSNumber)?.doubleValue ?? .nan }
        let busy = rows.map { ($0["busy_workers"] as? NSNumber)?.intValue ?? -1 }
        #expect(busy == [1, 2, 4, 16, 16], "a step has only 16 micro-batches")
        // One worker: 16 × 2 ms of compute after the parameters arrive, the last result a transfer
        // later; 94 % of the link carries message bytes (--link-efficiency's default, 1448/1538).
        let transfer = 0.000631 * 1538 / 1448
        #expect(abs(steps[0] - (transfer + 0.032 + transfer)) < 2e-5, "\(steps[0])")
        #expect(steps[3] == steps[4], "workers without work change nothing")
        // Sixteen workers: the 16 results queue on the coordinator's link.
        #expect(steps[3] > 16 * 0.000631, "\(steps[3])")
        for row in rows {
            for key in ["train_samples_per_s", "speedup_vs_first", "comm_fraction", "link_utilisation"] {
                #expect((row[key] as? NSNumber)?.doubleValue.isFinite == true, "\(key) in \(row)")
            }
        }
    }

    @Test func theTableMeasuresCostsWhenNoneAreGiven() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(["simulate", "--config", "toy2d", "--workers", "1,2,8", "--sync", "parameters"], in: dir.path, timeout: 60)
        #expect(result.stdout.contains("sync=parameters, H = 8"), "\(result)")
        #expect(result.stdout.contains("(only 2 have work: B/m = 2)"), "\(result)")
        // Two lines of inputs, the column heads and one row per worker count.
        #expect(result.stdout.split(separator: "\n").count == 6, "\(result)")
    }

    @Test func badValuesAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let zero = try CLI.run(["simulate", "--workers", "1,0"], in: dir.path)
        #expect(zero.status != 0 && zero.stderr.contains("--workers"), "\(zero)")
        let link = try CLI.run(["simulate", "--bandwidth-gbit", "0"], in: dir.path)
        #expect(link.status != 0 && link.stderr.contains("--bandwidth-gbit"), "\(link)")
        let efficiency = try CLI.run(["simulate", "--link-efficiency", "1.5"], in: dir.path)
        #expect(efficiency.status != 0 && efficiency.stderr.contains("--link-efficiency must be in (0, 1], found 1.5"), "\(efficiency)")
    }

    @Test func everyExchangeIsProjectedFromTheSameCosts() throws {
        let rows = try Self.projections([
            "--config", "wide64", "--batch", "16384", "--workers", "1,64", "--exchange", "all", "--micro-batch-ms", "31.58",
            "--add-ms", "0.744", "--apply-ms", "6.219",
        ])
        let byExchange = Dictionary(grouping: rows) { $0["exchange"] as? String ?? "?" }
        #expect(Set(byExchange.keys) == ["micro-batch-star", "star", "sharded", "ring"], "\(byExchange.keys)")
        func speedUp(_ exchange: String, workers: Int) -> Double {
            let row = byExchange[exchange]?.first { ($0["workers"] as? NSNumber)?.intValue == workers }
            return (row?["speedup_vs_one_process"] as? NSNumber)?.doubleValue ?? .nan
        }
        // The issue's target for the sharded exchange (10 Gbit/s, 64 workers): at least 35× one process.
        #expect(speedUp("sharded", workers: 64) >= 35, "\(speedUp("sharded", workers: 64))")
        #expect(speedUp("sharded", workers: 64) > speedUp("ring", workers: 64))
        #expect(speedUp("micro-batch-star", workers: 64) < 3)
        let refused = try CLI.run(["simulate", "--exchange", "sharded", "--sync", "parameters"], in: FileManager.default.temporaryDirectory.path)
        #expect(refused.status != 0 && refused.stderr.contains("--exchange sharded models sync=gradients"), "\(refused)")
    }
}
