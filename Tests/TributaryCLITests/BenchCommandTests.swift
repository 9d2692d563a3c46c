import Foundation
import Testing

/// `tributary bench --json` prints one JSON object with DESIGN §8's figures.
struct BenchCommandTests {
    @Test func jsonOutputHasTheRequiredKeys() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let result = try CLI.succeed(["bench", "--config", "toy2d", "--json", "--windows", "1", "--window-seconds", "0.05"], in: dir.path, timeout: 60)
        let lines = result.stdout.split(separator: "\n")
        try #require(lines.count == 1, "expected one line of JSON on standard output:\n\(result)")
        let parsed = try JSONSerialization.jsonObject(with: Data(lines[0].utf8))
        let object = try #require(parsed as? [String: Any], "not a JSON object: \(lines[0])")
        #expect(object["config"] as? String == "toy2d")
        #expect((object["threads"] as? NSNumber)?.intValue == 1)
        for key in ["train_samples_per_s", "logprob_rows_per_s", "sample_rows_per_s", "peak_rss_bytes"] {
            let value = (object[key] as? NSNumber)?.doubleValue
            #expect(value.map { $0.isFinite && $0 > 0 } == true, "\(key) = \(String(describing: object[key]))")
        }
        // Peak RSS is a byte count: more than a megabyte, less than the 2 GiB this toy could ever need.
        let rss = (object["peak_rss_bytes"] as? NSNumber)?.doubleValue ?? 0
        #expect(rss > 1_048_576 && rss < 2_147_483_648, "peak_rss_bytes \(rss)")
    }
}
