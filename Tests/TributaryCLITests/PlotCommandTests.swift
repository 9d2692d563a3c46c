import Foundation
import Testing

/// `tributary plot`: metrics files in, an SVG chart out; bad lines named by file and line.
struct PlotCommandTests {
    static let metrics = """
        {"step":1,"loss":2.5,"samples_per_s":1000,"elapsed_s":0.01,"grad_norm":3.3,"workers":1}
        {"step":2,"loss":2.25,"samples_per_s":1000,"elapsed_s":0.02,"workers":1}
        {"step":3,"loss":2.0,"val_nll":2.1,"samples_per_s":1000,"elapsed_s":0.03,"workers":1}
        {"step":4,"loss":null,"samples_per_s":1000,"elapsed_s":0.04,"workers":1}
        {"step":5,"loss":1.5,"val_nll":1.75,"samples_per_s":1000,"elapsed_s":0.05,"workers":1}

        """

    /// The point lists of the chart's polylines, in order.
    static func polylines(_ svg: String) -> [[Substring]] {
        svg.split(separator: "\n").filter { $0.hasPrefix("<polyline") }.map { line in
            let start = line.range(of: "points=\"")!.upperBound
            return line[start...].prefix { $0 != "\"" }.split(separator: " ")
        }
    }

    @Test func eachFieldOfEachFileIsOneLineWithItsPoints() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(Self.metrics, to: "a.jsonl")
        try dir.write(Self.metrics, to: "b.jsonl")
        let result = try CLI.succeed(["plot", "--metrics", "a.jsonl", "--metrics", "b.jsonl", "--out", "c.svg"], in: dir.path)
        #expect(result.stdout.contains("wrote 4 curve(s) to c.svg"))
        let svg = try String(contentsOfFile: dir.file("c.svg"), encoding: .utf8)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        #expect(svg.hasSuffix("</svg>\n"))
        // loss has 4 finite points (step 4 is null), val_nll 2; per file.
        #expect(Self.polylines(svg).map(\.count) == [4, 2, 4, 2])
        for label in ["loss (a.jsonl)", "val_nll (a.jsonl)", "loss (b.jsonl)", "val_nll (b.jsonl)"] {
            #expect(svg.contains(">\(label)</text>"), "no legend entry \(label)")
        }
        // The first loss point (step 1, the largest loss) is at the left edge, at the top.
        #expect(Self.polylines(svg)[0].first == "80.0,50.0")
    }

    @Test func anotherXAxisAndALogScale() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(Self.metrics, to: "a.jsonl")
        try CLI.succeed(["plot", "--metrics", "a.jsonl", "--fields", "loss", "--x", "elapsed_s", "--log-y", "--out", "c.svg"], in: dir.path)
        let svg = try String(contentsOfFile: dir.file("c.svg"), encoding: .utf8)
        #expect(Self.polylines(svg).map(\.count) == [4])
        #expect(svg.contains("(log scale)") && svg.contains(">elapsed_s</text>"))
    }

    @Test func aTornLastLineIsIgnoredWithAWarning() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(Self.metrics + "{\"step\":6,\"lo", to: "a.jsonl")
        let result = try CLI.succeed(["plot", "--metrics", "a.jsonl", "--out", "c.svg"], in: dir.path)
        #expect(result.stderr.contains("a.jsonl: the last line is cut short"), "\(result)")
    }

    @Test func badInputIsNamed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        try dir.write(Self.metrics.replacingOccurrences(of: "{\"step\":2,", with: "{\"step\":2 "), to: "bad.jsonl")
        let bad = try CLI.run(["plot", "--metrics", "bad.jsonl", "--out", "c.svg"], in: dir.path)
        #expect(bad.status != 0 && bad.stderr.contains("bad.jsonl line 2: not a JSON object"), "\(bad)")
        try dir.write("{\"loss\":1}\n", to: "nostep.jsonl")
        let noStep = try CLI.run(["plot", "--metrics", "nostep.jsonl", "--out", "c.svg"], in: dir.path)
        #expect(noStep.status != 0 && noStep.stderr.contains("nostep.jsonl line 1: no numeric \"step\" field"), "\(noStep)")
        try dir.write(Self.metrics, to: "a.jsonl")
        let field = try CLI.run(["plot", "--metrics", "a.jsonl", "--fields", "accuracy", "--out", "c.svg"], in: dir.path)
        #expect(field.status != 0 && field.stderr.contains("a.jsonl: no field \"accuracy\""), "\(field)")
        let png = try CLI.run(["plot", "--metrics", "a.jsonl", "--out", "c.png"], in: dir.path)
        #expect(png.status != 0 && png.stderr.contains("--out must end in .svg"), "\(png)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("c.svg")))
    }
}
