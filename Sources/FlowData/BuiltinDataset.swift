import FlowRandom

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The synthetic datasets built into Tributary, generated deterministically from a seed.
///
/// The 2-D sets follow the constructions of scikit-learn's `make_moons` and of the FFJORD
/// toy datasets exactly (see `docs/data.md` for the formulas); `mixture:D` is an 8-component
/// diagonal Gaussian mixture whose density is known (``GaussianMixture``). Every random
/// choice comes from a `SeededGenerator` stream of its own, so a dataset is a pure function
/// of (name, rows, seed).
public enum BuiltinDataset: Equatable, Sendable {
    /// Two interleaving half circles (`make_moons`, noise 0.05).
    case moons
    /// Eight Gaussians on a circle of radius 4/1.414 (FFJORD `8gaussians`).
    case eightGaussians
    /// Uniform on 8 of the 16 squares of a 4×4 board of side 8 (FFJORD `checkerboard`).
    case checkerboard
    /// Four noisy concentric circles (FFJORD `rings`).
    case rings
    /// An 8-component Gaussian mixture in `dimension` dimensions (`mixture:D`).
    case mixture(dimension: Int)

    /// Largest D accepted by `mixture:D`.
    public static let maximumMixtureDimension = 4096

    /// The names ``init(name:)`` accepts (`mixture:D` with D in 2…4096).
    public static let names = ["moons", "8gaussians", "checkerboard", "rings", "mixture:D"]

    /// Parses a dataset name: `moons`, `8gaussians`, `checkerboard`, `rings` or `mixture:D`.
    ///
    /// - Throws: ``DataError/unknownDataset(name:)`` for any other name;
    ///   ``DataError/badDatasetParameter(name:reason:)`` when D is missing, not a decimal
    ///   integer, or outside 2…``maximumMixtureDimension``.
    public init(name: String) throws(DataError) {
        switch name {
        case "moons": self = .moons
        case "8gaussians": self = .eightGaussians
        case "checkerboard": self = .checkerboard
        case "rings": self = .rings
        case "mixture":
            throw DataError.badDatasetParameter(name: name, reason: "give the dimension as mixture:D, for example mixture:16")
        default:
            guard name.hasPrefix("mixture:") else { throw DataError.unknownDataset(name: name) }
            let digits = name.dropFirst("mixture:".count)
            guard !digits.isEmpty, digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  digits.count <= 9, let d = Int(digits)
            else {
                throw DataError.badDatasetParameter(
                    name: name, reason: "the dimension \(DataError.quoted(String(digits))) is not a positive integer")
            }
            guard d >= 2 && d <= Self.maximumMixtureDimension else {
                throw DataError.badDatasetParameter(
                    name: name, reason: "the dimension must be between 2 and \(Self.maximumMixtureDimension), got \(d)")
            }
            self = .mixture(dimension: d)
        }
    }

    /// The dataset's name as ``init(name:)`` accepts it.
    public var name: String {
        switch self {
        case .moons: "moons"
        case .eightGaussians: "8gaussians"
        case .checkerboard: "checkerboard"
        case .rings: "rings"
        case let .mixture(d): "mixture:\(d)"
        }
    }

    /// Number of columns of the generated data.
    public var dimension: Int {
        switch self {
        case .moons, .eightGaussians, .checkerboard, .rings: 2
        case let .mixture(d): d
        }
    }

    /// `rows` points of the dataset, a pure function of `(self, rows, seed)`.
    ///
    /// - Precondition: `rows ≥ 0`.
    public func generate(rows: Int, seed: UInt64) -> Table {
        precondition(rows >= 0, "BuiltinDataset.generate: negative row count")
        switch self {
        case .moons: return Self.moons(rows, seed)
        case .eightGaussians: return Self.eightGaussians(rows, seed)
        case .checkerboard: return Self.checkerboard(rows, seed)
        case .rings: return Self.rings(rows, seed)
        case let .mixture(d):
            let mixture = GaussianMixture.builtin(dimension: d, seed: seed)
            var components = SeededGenerator(seed: seed, stream: RandomStream.mixtureComponent)
            var noise = SeededGenerator(seed: seed, stream: RandomStream.mixtureNoise)
            return mixture.sample(rows: rows, components: &components, noise: &noise)
        }
    }

    /// The exact density of `mixture:D` for `seed`, or nil for the 2-D sets.
    public func mixture(seed: UInt64) -> GaussianMixture? {
        guard case let .mixture(d) = self else { return nil }
        return GaussianMixture.builtin(dimension: d, seed: seed)
    }

    // MARK: - Generators

    /// numpy's `linspace(start, stop, count, endpoint:)`: `start + i·step`, and with the
    /// endpoint the last value is exactly `stop`.
    static func linspace(_ start: Double, _ stop: Double, _ count: Int, endpoint: Bool = true) -> [Double] {
        guard count > 0 else { return [] }
        let divisions = endpoint ? count - 1 : count
        guard divisions > 0 else { return [start] }
        let step = (stop - start) / Double(divisions)
        var values = (0..<count).map { start + Double($0) * step }
        if endpoint { values[count - 1] = stop }
        return values
    }

    private static func moons(_ n: Int, _ seed: UInt64) -> Table {
        let outer = n / 2
        let inner = n - outer
        var points = [Double]()
        points.reserveCapacity(2 * n)
        for t in linspace(0, .pi, outer) {
            points.append(cos(t))
            points.append(sin(t))
        }
        for t in linspace(0, .pi, inner) {
            points.append(1 - cos(t))
            points.append(1 - sin(t) - 0.5)
        }
        var noise = SeededGenerator(seed: seed, stream: RandomStream.moonsNoise)
        for k in points.indices {
            points[k] += 0.05 * noise.normal()
        }
        var shuffle = SeededGenerator(seed: seed, stream: RandomStream.moonsShuffle)
        return Table(rows: n, columns: 2, values: points).gather(rows: shuffle.permutation(n))
    }

    private static func eightGaussians(_ n: Int, _ seed: UInt64) -> Table {
        let r = 1 / 2.0.squareRoot()
        let centers: [(Double, Double)] = [
            (1, 0), (-1, 0), (0, 1), (0, -1), (r, r), (r, -r), (-r, r), (-r, -r),
        ]
        var choose = SeededGenerator(seed: seed, stream: RandomStream.gaussiansCenter)
        var noise = SeededGenerator(seed: seed, stream: RandomStream.gaussiansNoise)
        var points = [Double]()
        points.reserveCapacity(2 * n)
        for _ in 0..<n {
            let x = 0.5 * noise.normal()
            let y = 0.5 * noise.normal()
            let c = centers[choose.integer(below: 8)]
            points.append((x + 4 * c.0) / 1.414)
            points.append((y + 4 * c.1) / 1.414)
        }
        return Table(rows: n, columns: 2, values: points)
    }

    private static func checkerboard(_ n: Int, _ seed: UInt64) -> Table {
        var first = SeededGenerator(seed: seed, stream: RandomStream.checkerboardX1)
        var second = SeededGenerator(seed: seed, stream: RandomStream.checkerboardX2)
        var square = SeededGenerator(seed: seed, stream: RandomStream.checkerboardSquare)
        var points = [Double]()
        points.reserveCapacity(2 * n)
        for _ in 0..<n {
            let x1 = first.uniform() * 4 - 2
            let x2Base = second.uniform() - Double(square.integer(below: 2)) * 2
            // floor(x1) mod 2 with Python's sign convention (result in {0, 1}).
            let f = floor(x1)
            let parity = f - 2 * floor(f / 2)
            points.append(x1 * 2)
            points.append((x2Base + parity) * 2)
        }
        return Table(rows: n, columns: 2, values: points)
    }

    private static func rings(_ n: Int, _ seed: UInt64) -> Table {
        let n4 = n / 4
        let n1 = n - 3 * n4
        var points = [Double]()
        points.reserveCapacity(2 * n)
        for (count, radius) in [(n4, 1.0), (n4, 0.75), (n4, 0.5), (n1, 0.25)] {
            for t in linspace(0, 2 * .pi, count, endpoint: false) {
                points.append(3 * radius * cos(t))
                points.append(3 * radius * sin(t))
            }
        }
        var shuffle = SeededGenerator(seed: seed, stream: RandomStream.ringsShuffle)
        var table = Table(rows: n, columns: 2, values: points).gather(rows: shuffle.permutation(n))
        var noise = SeededGenerator(seed: seed, stream: RandomStream.ringsNoise)
        for i in 0..<n {
            table[i, 0] += 0.08 * noise.normal()
            table[i, 1] += 0.08 * noise.normal()
        }
        return table
    }
}
