import Foundation
import Testing
@testable import FlowData

struct BuiltinDatasetTests {
    @Test(arguments: [
        ("moons", BuiltinDataset.moons), ("8gaussians", .eightGaussians), ("checkerboard", .checkerboard),
        ("rings", .rings), ("mixture:2", .mixture(dimension: 2)), ("mixture:16", .mixture(dimension: 16)),
        ("mixture:4096", .mixture(dimension: 4096)),
    ])
    func namesParseAndRoundTrip(name: String, dataset: BuiltinDataset) throws {
        #expect(try BuiltinDataset(name: name) == dataset)
        #expect(dataset.name == name)
        #expect(dataset.dimension == (name.hasPrefix("mixture:") ? Int(name.dropFirst(8))! : 2))
    }

    @Test func unknownNames() {
        for name in ["swissroll", "Moons", "", "mixture16", "8gaussian"] {
            let error = #expect(throws: DataError.self) { _ = try BuiltinDataset(name: name) }
            #expect(error == .unknownDataset(name: name))
        }
        #expect(DataError.unknownDataset(name: "swissroll").description
                == "unknown dataset \"swissroll\" (built-in: moons, 8gaussians, checkerboard, rings, mixture:D)")
    }

    @Test(arguments: [
        ("mixture", "give the dimension as mixture:D, for example mixture:16"),
        ("mixture:", "the dimension \"\" is not a positive integer"),
        ("mixture:x", "the dimension \"x\" is not a positive integer"),
        ("mixture:-3", "the dimension \"-3\" is not a positive integer"),
        ("mixture:+3", "the dimension \"+3\" is not a positive integer"),
        ("mixture:99999999999999999999", "the dimension \"99999999999999999999\" is not a positive integer"),
        ("mixture:1", "the dimension must be between 2 and 4096, got 1"),
        ("mixture:0", "the dimension must be between 2 and 4096, got 0"),
        ("mixture:4097", "the dimension must be between 2 and 4096, got 4097"),
    ])
    func badMixtureDimension(name: String, reason: String) {
        let error = #expect(throws: DataError.self) { _ = try BuiltinDataset(name: name) }
        #expect(error == .badDatasetParameter(name: name, reason: reason))
        #expect(error?.description == "dataset \"\(name)\": \(reason)")
    }

    @Test(arguments: [BuiltinDataset.moons, .eightGaussians, .checkerboard, .rings, .mixture(dimension: 5)])
    func deterministicForASeed(dataset: BuiltinDataset) {
        let a = dataset.generate(rows: 501, seed: 9)
        #expect(a.rows == 501 && a.columns == dataset.dimension)
        #expect(a == dataset.generate(rows: 501, seed: 9))
        #expect(a != dataset.generate(rows: 501, seed: 10))
        #expect(a.values.allSatisfy { $0.isFinite })
        #expect(dataset.generate(rows: 0, seed: 9).rows == 0)
        #expect(dataset.generate(rows: 1, seed: 9).rows == 1)
    }

    @Test func linspaceMatchesNumpy() {
        #expect(BuiltinDataset.linspace(0, 1, 5) == [0, 0.25, 0.5, 0.75, 1])
        #expect(BuiltinDataset.linspace(0, 1, 4, endpoint: false) == [0, 0.25, 0.5, 0.75])
        #expect(BuiltinDataset.linspace(0, .pi, 1) == [0])
        #expect(BuiltinDataset.linspace(0, .pi, 0) == [])
        #expect(BuiltinDataset.linspace(0, .pi, 3).last == .pi)
    }

    static func mean(_ t: Table, _ column: Int) -> Double {
        (0..<t.rows).reduce(0) { $0 + t[$1, column] } / Double(t.rows)
    }

    @Test func moonsLieOnTheTwoArcs() {
        let n = 20_001
        let t = BuiltinDataset.moons.generate(rows: n, seed: 1)
        // Without noise the means are (1/2, 1/4 + small discretisation terms) — here within 0.01.
        #expect(abs(Self.mean(t, 0) - 0.5) < 0.01)
        #expect(abs(Self.mean(t, 1) - 0.25) < 0.01)
        var outer = 0
        var squaredResidual = 0.0
        for i in 0..<n {
            let (x, y) = (t[i, 0], t[i, 1])
            // Distance to the upper half circle around (0, 0) and to the lower half circle
            // around (1, 0.5), both of radius 1 (beyond an arc's ends: to the nearer end).
            func arcDistance(_ cx: Double, _ cy: Double, upper: Bool) -> Double {
                let (dx, dy) = (x - cx, y - cy)
                if upper ? dy >= 0 : dy <= 0 {
                    return abs((dx * dx + dy * dy).squareRoot() - 1)
                }
                return min(((dx - 1) * (dx - 1) + dy * dy).squareRoot(), ((dx + 1) * (dx + 1) + dy * dy).squareRoot())
            }
            let outerResidual = arcDistance(0, 0, upper: true)
            let innerResidual = arcDistance(1, 0.5, upper: false)
            if outerResidual < innerResidual { outer += 1 }
            let r = min(abs(outerResidual), abs(innerResidual))
            squaredResidual += r * r
            #expect(r < 0.3, "row \(i): (\(x), \(y)) is far from both arcs")
        }
        #expect(abs(Double(outer) / Double(n) - 0.5) < 0.02)
        // The radial part of N(0, 0.05² I) noise has RMS 0.05.
        let rms = (squaredResidual / Double(n)).squareRoot()
        #expect(rms > 0.045 && rms < 0.055, "RMS distance to the arcs \(rms)")
        // Rows are shuffled: the first half is not all outer arc.
        let firstHalfOuter = (0..<(n / 2)).filter { t[$0, 1] > 0.5 }.count
        #expect(firstHalfOuter < n / 2 - 1000)
    }

    @Test func eightGaussiansStatistics() {
        let n = 40_000
        let t = BuiltinDataset.eightGaussians.generate(rows: n, seed: 2)
        let r = 1 / 2.0.squareRoot()
        let centers = [(1.0, 0.0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r)]
            .map { (4 * $0.0 / 1.414, 4 * $0.1 / 1.414) }
        var counts = [Int](repeating: 0, count: 8)
        var deviation = 0.0
        for i in 0..<n {
            let (x, y) = (t[i, 0], t[i, 1])
            let distances = centers.map { ($0.0 - x) * ($0.0 - x) + ($0.1 - y) * ($0.1 - y) }
            let k = distances.indices.min { distances[$0] < distances[$1] }!
            counts[k] += 1
            deviation += distances[k]
        }
        for c in counts {
            #expect(abs(Double(c) / Double(n) - 0.125) < 0.01, "component counts \(counts)")
        }
        // Per-coordinate standard deviation around the centre: 0.5 / 1.414.
        let sd = (deviation / Double(2 * n)).squareRoot()
        #expect(abs(sd - 0.5 / 1.414) < 0.01, "sd \(sd)")
        #expect(abs(Self.mean(t, 0)) < 0.05 && abs(Self.mean(t, 1)) < 0.05)
        let secondMoment = (0..<n).reduce(0.0) { $0 + t[$1, 0] * t[$1, 0] + t[$1, 1] * t[$1, 1] } / Double(n)
        #expect(abs(secondMoment - (16 + 0.5) / (1.414 * 1.414)) < 0.1)
    }

    @Test func checkerboardCoversTheBlackSquaresUniformly() {
        let n = 40_000
        let t = BuiltinDataset.checkerboard.generate(rows: n, seed: 3)
        var counts = [Int](repeating: 0, count: 16)
        for i in 0..<n {
            let (u, v) = (t[i, 0] / 2, t[i, 1] / 2)
            #expect(u >= -2 && u < 2 && v >= -2 && v < 2, "row \(i) outside the board")
            let (a, b) = (Int(floor(u)), Int(floor(v)))
            #expect((a + b) % 2 == 0, "row \(i): (\(u), \(v)) is on a white square")
            counts[(a + 2) * 4 + (b + 2)] += 1
        }
        #expect(counts.filter { $0 > 0 }.count == 8, "\(counts)")
        for c in counts where c > 0 {
            #expect(abs(Double(c) / Double(n) - 0.125) < 0.01, "\(counts)")
        }
        // Uniform on 8 squares of side 2: entropy log 32.
        #expect(abs(log(8.0 * 4.0) - 3.4657) < 1e-4)
    }

    @Test func ringsRadiiAndCounts() {
        let n = 10_002
        let t = BuiltinDataset.rings.generate(rows: n, seed: 4)
        let radii = [1.0, 0.75, 0.5, 0.25]
        var counts = [0, 0, 0, 0]
        var squaredResidual = 0.0
        for i in 0..<n {
            let r = (t[i, 0] * t[i, 0] + t[i, 1] * t[i, 1]).squareRoot() / 3
            let k = radii.indices.min { abs(radii[$0] - r) < abs(radii[$1] - r) }!
            counts[k] += 1
            squaredResidual += (r - radii[k]) * (r - radii[k])
        }
        #expect(counts == [2500, 2500, 2500, 2502])
        let rms = (squaredResidual / Double(n)).squareRoot() * 3
        #expect(rms > 0.072 && rms < 0.088, "radial RMS \(rms), noise sd 0.08")
        #expect(abs(Self.mean(t, 0)) < 0.03 && abs(Self.mean(t, 1)) < 0.03)
    }

    @Test func mixtureSampleMatchesItsDensity() throws {
        let dataset = BuiltinDataset.mixture(dimension: 4)
        let mixture = try #require(dataset.mixture(seed: 6))
        #expect(mixture == GaussianMixture.builtin(dimension: 4, seed: 6))
        #expect(BuiltinDataset.moons.mixture(seed: 6) == nil)
        let n = 50_000
        let t = dataset.generate(rows: n, seed: 6)
        for j in 0..<4 {
            let expectedMean = (0..<8).reduce(0.0) { $0 + mixture.weights[$1] * mixture.means[$1 * 4 + j] }
            let expectedSecond = (0..<8).reduce(0.0) {
                let (m, s) = (mixture.means[$1 * 4 + j], mixture.standardDeviations[$1 * 4 + j])
                return $0 + mixture.weights[$1] * (m * m + s * s)
            }
            let variance = expectedSecond - expectedMean * expectedMean
            let sampleMean = Self.mean(t, j)
            // 5 standard errors.
            #expect(abs(sampleMean - expectedMean) < 5 * (variance / Double(n)).squareRoot(), "column \(j)")
            let sampleSecond = (0..<n).reduce(0.0) { $0 + t[$1, j] * t[$1, j] } / Double(n)
            #expect(abs(sampleSecond - expectedSecond) < 0.05 * expectedSecond, "column \(j)")
        }
        // The sample's mean NLL under the true density is the entropy; under a different
        // mixture it is larger (Gibbs' inequality), by a clear margin here.
        let entropy = mixture.meanNegativeLogDensity(t)
        let other = GaussianMixture.builtin(dimension: 4, seed: 7).meanNegativeLogDensity(t)
        #expect(entropy.isFinite && other > entropy + 1)
    }
}
