import FlowRandom
import Foundation
import Testing
@testable import Flows

/// Model files (DESIGN §5, docs/model.md): save → load gives the same model bit for bit,
/// writing is deterministic, the metadata is complete, and every malformed file is rejected
/// with a message that names the file and the problem.
struct ModelFileTests {
    // MARK: Fixtures

    /// A fresh directory; `remove()` it in a `defer` (a deinit could run before the last use of
    /// a path inside it, since Swift may end an object's lifetime after its last use).
    struct TemporaryDirectory {
        let path: String
        init() throws {
            path = FileManager.default.temporaryDirectory
                .appendingPathComponent("tributary-modelfile-\(getpid())-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        func file(_ name: String) -> String { path + "/" + name }
        func remove() { try? FileManager.default.removeItem(atPath: path) }
    }

    // MARK: Round trips

    struct RoundTripCase: Sendable, CustomTestStringConvertible {
        var dimension: Int
        var couplings: Int
        var standardize: Bool
        var shuffled: Bool
        var testDescription: String {
            "D=\(dimension) K=\(couplings)\(standardize ? " standardised" : "")\(shuffled ? " random permutations" : "")"
        }
    }

    static let roundTripCases: [RoundTripCase] = [
        .init(dimension: 2, couplings: 1, standardize: false, shuffled: false),
        .init(dimension: 2, couplings: 4, standardize: true, shuffled: false),
        .init(dimension: 5, couplings: 3, standardize: false, shuffled: true),
        .init(dimension: 5, couplings: 3, standardize: true, shuffled: true),
        .init(dimension: 8, couplings: 2, standardize: true, shuffled: false),
    ]

    static func roundTrip<S: FlowScalar>(_: S.Type, _ c: RoundTripCase) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = c.shuffled
            ? try shuffledFlow(S.self, dimension: c.dimension, couplings: c.couplings, standardize: c.standardize, seed: 31)
            : try randomFlow(S.self, dimension: c.dimension, couplings: c.couplings, hidden: 6, standardize: c.standardize, seed: 31)
        if c.couplings > 1 {
            #expect(model.configuration.permutations != FlowConfiguration(dimension: c.dimension, couplings: c.couplings, hidden: 6).permutations)
        }
        let path = dir.file("m.safetensors")
        let info = ModelFileInfo(step: 1234, seed: 0xFEED_FACE_CAFE_BEEF, metadata: ["note": "round trip"])
        try ModelFile.write(model, to: path, info: info)

        let (loaded, loadedInfo) = try ModelFile.read(S.self, from: path)
        #expect(loaded == model, "model differs after save → load (\(c.testDescription))")
        #expect(bits(loaded.parameters) == bits(model.parameters))
        #expect(loaded.configuration == model.configuration)
        #expect(loaded.standardization == model.standardization)
        #expect(loadedInfo.step == 1234)
        #expect(loadedInfo.seed == 0xFEED_FACE_CAFE_BEEF)
        #expect(loadedInfo.metadata["note"] == "round trip")

        let x = randomRows(S.self, rows: 257, dimension: c.dimension, seed: 3, scale: 1.5)
        let before = try model.logProbability(x)
        let after = try loaded.logProbability(x)
        #expect(bits(before) == bits(after), "log p differs after save → load (\(c.testDescription))")
        #expect(before.allSatisfy { $0.isFinite })
        // Sampling (the inverse path) is the same too.
        #expect(bits(model.sample(count: 64, seed: 2).data) == bits(loaded.sample(count: 64, seed: 2).data))

        // The untyped reader returns the file's own precision.
        let (any, _) = try ModelFile.read(from: path)
        switch any {
        case .float32(let m):
            #expect(S.self == Float.self)
            #expect(m.parameters.map { S($0) } == model.parameters)
        case .float64(let m):
            #expect(S.self == Double.self)
            #expect(m.parameters.map { S($0) } == model.parameters)
        }
        #expect(any.configuration == model.configuration)
    }

    @Test(arguments: roundTripCases)
    func saveThenLoadGivesBitIdenticalLogProbabilityFloat(_ c: RoundTripCase) throws {
        try Self.roundTrip(Float.self, c)
    }

    @Test(arguments: roundTripCases)
    func saveThenLoadGivesBitIdenticalLogProbabilityDouble(_ c: RoundTripCase) throws {
        try Self.roundTrip(Double.self, c)
    }

    @Test func depthOneAndDeeperNetworksRoundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        for depth in [1, 3] {
            let model = try randomFlow(Float.self, dimension: 3, couplings: 2, hidden: 5, depth: depth, seed: 8)
            let path = dir.file("depth\(depth).safetensors")
            try ModelFile.write(model, to: path, info: ModelFileInfo(step: 0, seed: 0))
            let (loaded, _) = try ModelFile.read(Float.self, from: path)
            #expect(loaded == model)
            let archive = try SafeTensorsArchive.read(from: path)
            #expect(archive.tensors.count == 2 * 2 * (depth + 1))
            #expect(archive.metadata["depth"] == String(depth))
        }
    }

    // MARK: Determinism and contents

    @Test func writingIsDeterministic() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try shuffledFlow(Float.self, dimension: 5, couplings: 3, standardize: true, seed: 4)
        let info = ModelFileInfo(step: 7, seed: 9, metadata: ["b": "2", "a": "1"])
        try ModelFile.write(model, to: dir.file("a.safetensors"), info: info)
        try ModelFile.write(model, to: dir.file("b.safetensors"), info: info)
        // An equal model built separately (a different value, same numbers) writes the same bytes.
        let copy = try RealNVP<Float>(configuration: model.configuration, parameters: model.parameters, standardization: model.standardization)
        try ModelFile.write(copy, to: dir.file("c.safetensors"), info: ModelFileInfo(step: 7, seed: 9, metadata: ["a": "1", "b": "2"]))
        let a = try Data(contentsOf: URL(fileURLWithPath: dir.file("a.safetensors")))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir.file("b.safetensors")))
        let c = try Data(contentsOf: URL(fileURLWithPath: dir.file("c.safetensors")))
        #expect(a == b)
        #expect(a == c)
        #expect(Array(a) == (try ModelFile.archive(of: model, info: info).encoded()))
        // Reading and re-writing reproduces the file byte for byte.
        let (loaded, loadedInfo) = try ModelFile.read(Float.self, from: dir.file("a.safetensors"))
        try ModelFile.write(loaded, to: dir.file("d.safetensors"), info: loadedInfo)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("d.safetensors"))) == a)
        // A different step or seed changes the bytes.
        try ModelFile.write(model, to: dir.file("e.safetensors"), info: ModelFileInfo(step: 8, seed: 9, metadata: info.metadata))
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.file("e.safetensors"))) != a)
    }

    /// Every key of DESIGN §5, with its value, as strings.
    @Test(arguments: [false, true])
    func metadataHoldsTheConfiguration(standardize: Bool) throws {
        let model = try shuffledFlow(Double.self, dimension: 5, couplings: 3, standardize: standardize, seed: 5)
        let archive = ModelFile.archive(of: model, info: ModelFileInfo(step: 250, seed: 77, metadata: ["run": "nightly", "dimension": "999"]))
        let m = archive.metadata
        #expect(m["format"] == "tributary-realnvp")
        #expect(m["format_version"] == "1")
        #expect(m["dimension"] == "5")  // a colliding user entry does not override the configuration
        #expect(m["couplings"] == "3")
        #expect(m["hidden"] == "6")
        #expect(m["depth"] == "2")
        #expect(m["activation"] == "relu")
        #expect(m["scale_function"] == "exp_tanh")
        #expect(m["standardize"] == (standardize ? "true" : "false"))
        #expect(m["dtype"] == "float64")
        #expect(m["step"] == "250")
        #expect(m["seed"] == "77")
        #expect(m["run"] == "nightly")
        #expect(m["tributary_version"] == TributaryVersion.current)
        let keys: Set<String> = [
            "format", "format_version", "dimension", "couplings", "hidden", "depth", "activation", "scale_function",
            "permutations", "standardize", "dtype", "step", "seed", "tributary_version", "run",
        ]
        #expect(Set(m.keys) == keys)
        // Permutations: a JSON array of arrays, exactly the configuration's.
        let text = try #require(m["permutations"])
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [[Int]]
        #expect(parsed == model.configuration.permutations, "permutations metadata \(text)")
        #expect(!text.contains(" "), "compact JSON expected: \(text)")

        let f32 = ModelFile.archive(of: try randomFlow(Float.self, dimension: 2, couplings: 1), info: ModelFileInfo(step: 0, seed: 0))
        #expect(f32.metadata["dtype"] == "float32")
        #expect(f32.metadata["permutations"] == "[[1,0]]")
    }

    /// Tensor names, order, shapes and dtype follow DESIGN §5, and the data section is the
    /// flat parameter vector followed by the standardisation.
    @Test func tensorsArePyTorchNamedViewsOfTheFlatVector() throws {
        let model = try randomFlow(Float.self, dimension: 5, couplings: 2, hidden: 6, standardize: true, seed: 6)
        let archive = ModelFile.archive(of: model, info: ModelFileInfo(step: 0, seed: 0))
        var names: [String] = []
        var shapes: [[Int]] = []
        for l in 0..<2 {
            for (k, shape) in [[6, 2], [6, 6], [6, 6]].enumerated() {
                names += ["couplings.\(l).net.\(k).weight", "couplings.\(l).net.\(k).bias"]
                shapes += [shape, [shape[0]]]
            }
        }
        names += ["standardize.mean", "standardize.std"]
        shapes += [[5], [5]]
        #expect(archive.tensors.map(\.name) == names)
        #expect(archive.tensors.map(\.shape) == shapes)
        #expect(archive.tensors.allSatisfy { $0.dtype == .F32 })

        let flat = try archive.tensors.dropLast(2).flatMap { try $0.floats() }
        #expect(bits(flat) == bits(model.parameters))
        #expect(try archive["standardize.mean"]!.floats() == model.standardization!.mean)
        #expect(try archive["standardize.std"]!.floats() == model.standardization!.std)
        // Row-major [out, in]: weight[o, i] of Linear 0 of coupling 1 sits at weightOffset + o·in + i.
        let linear = model.layout.layers[1][0]
        let w = try archive["couplings.1.net.0.weight"]!.floats()
        #expect(w[1 * linear.input + 1] == model.parameters[linear.weightOffset + 1 * linear.input + 1])
        // The data section after the header is exactly those bytes, in that order.
        let bytes = try archive.encoded()
        var headerLength = 0
        for i in 0..<8 { headerLength |= Int(bytes[i]) << (8 * i) }
        #expect((8 + headerLength) % 8 == 0)
        let values = model.parameters + model.standardization!.mean + model.standardization!.std
        let expected = values.flatMap { v in (0..<4).map { UInt8(truncatingIfNeeded: v.bitPattern >> (8 * $0)) } }
        #expect(Array(bytes[(8 + headerLength)...]) == expected)
    }

    // MARK: Precision

    @Test func float32FileLoadsExactlyAsDouble() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try shuffledFlow(Float.self, dimension: 4, couplings: 3, standardize: true, seed: 10)
        let path = dir.file("f32.safetensors")
        try ModelFile.write(model, to: path, info: ModelFileInfo(step: 3, seed: 4))
        let (wide, info) = try ModelFile.read(Double.self, from: path)
        #expect(wide.configuration == model.configuration)
        #expect(wide.parameters == model.parameters.map { Double($0) })
        #expect(wide.standardization?.mean == model.standardization!.mean.map { Double($0) })
        #expect(wide.standardization?.std == model.standardization!.std.map { Double($0) })
        #expect(info.step == 3 && info.seed == 4)
        #expect(info.metadata["dtype"] == "float32")
        // The widened model computes the same density, to float32 accuracy.
        let x = randomRows(Float.self, rows: 64, dimension: 4, seed: 1)
        let narrow = try model.logProbability(x)
        let widened = try wide.logProbability(x.map { Double($0) })
        for (a, b) in zip(narrow, widened) { #expect(abs(Double(a) - b) <= 1e-4 * max(1, abs(b)), "\(a) vs \(b)") }
    }

    @Test func float64FileIsRefusedAsFloat() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try randomFlow(Double.self, dimension: 3, couplings: 2, seed: 11)
        let path = dir.file("f64.safetensors")
        try ModelFile.write(model, to: path, info: ModelFileInfo(step: 0, seed: 0))
        do {
            _ = try ModelFile.read(Float.self, from: path)
            Issue.record("a float64 model file was loaded as Float")
        } catch let error as FlowError {
            guard case .invalidModelFile(let file, let reason) = error else {
                Issue.record("unexpected error \(error)")
                return
            }
            #expect(file == path)
            #expect(reason.contains("float64") && reason.contains("round"), "\(reason)")
            #expect("\(error)".hasPrefix(path + ": "), "\(error)")
        }
        // As Double it loads exactly.
        #expect(try ModelFile.read(Double.self, from: path).model == model)
    }

    // MARK: Rejections

    /// A way to spoil a valid model file, and the words the error must contain.
    struct Corruption: Sendable, CustomTestStringConvertible {
        var name: String
        /// Start from a flow with a standardisation layer.
        var standardized = true
        /// Every fragment must appear in the error message (besides the path).
        var mentions: [String]
        var mutate: @Sendable (inout SafeTensorsArchive) -> Void
        var testDescription: String { name }

        init(_ name: String, standardized: Bool = true, mentions: [String], _ mutate: @escaping @Sendable (inout SafeTensorsArchive) -> Void) {
            self.name = name
            self.standardized = standardized
            self.mentions = mentions
            self.mutate = mutate
        }

        static func metadata(_ key: String, _ value: String?, mentions: [String], standardized: Bool = true) -> Corruption {
            Corruption("metadata \(key) = \(value.map { "\"\($0)\"" } ?? "missing")", standardized: standardized, mentions: mentions) {
                $0.metadata[key] = value
            }
        }

        static func tensor(_ name: String, _ description: String, mentions: [String], standardized: Bool = true,
                           _ change: @escaping @Sendable (inout SafeTensorsTensor) -> Void) -> Corruption {
            Corruption("tensor \(name): \(description)", standardized: standardized, mentions: mentions) { archive in
                guard let i = archive.tensors.firstIndex(where: { $0.name == name }) else {
                    Issue.record("the fixture has no tensor \(name)")
                    return
                }
                change(&archive.tensors[i])
            }
        }
    }

    /// The valid fixture: D = 3, 3 couplings, hidden 4, depth 2, F32; with or without standardisation.
    static func fixture(standardized: Bool) throws -> SafeTensorsArchive {
        let model = try randomFlow(Float.self, dimension: 3, couplings: 3, hidden: 4, standardize: standardized, seed: 12)
        return ModelFile.archive(of: model, info: ModelFileInfo(step: 5, seed: 6))
    }

    static let requiredKeys = [
        "format_version", "dimension", "couplings", "hidden", "depth", "activation", "scale_function",
        "permutations", "standardize", "dtype", "step", "seed",
    ]

    static let corruptions: [Corruption] = {
        var c: [Corruption] = requiredKeys.map { key in
            .metadata(key, nil, mentions: ["metadata lacks \"\(key)\""])
        }
        c += [
            // Format and version.
            .metadata("format", "safetensors-llm", mentions: ["\"format\"", "safetensors-llm", "tributary-realnvp"]),
            .metadata("format_version", "2", mentions: ["format_version 2 is not supported"]),
            .metadata("format_version", "0", mentions: ["format_version 0 is not supported"]),
            .metadata("format_version", "1.0", mentions: ["\"format_version\"", "\"1.0\"", "not an integer"]),
            .metadata("format_version", "v1", mentions: ["\"format_version\"", "not an integer"]),
            // Unsupported architecture choices.
            .metadata("activation", "tanh", mentions: ["activation \"tanh\" is not supported"]),
            .metadata("activation", "ReLU", mentions: ["activation \"ReLU\" is not supported"]),
            .metadata("scale_function", "exp", mentions: ["scale_function \"exp\" is not supported"]),
            .metadata("scale_function", "sigmoid", mentions: ["scale_function \"sigmoid\" is not supported"]),
            .metadata("standardize", "yes", mentions: ["\"standardize\"", "\"yes\"", "\"true\" or \"false\""]),
            .metadata("standardize", "True", mentions: ["\"standardize\"", "\"True\""]),
            // Integers that are not integers.
            .metadata("dimension", "three", mentions: ["\"dimension\"", "\"three\"", "not an integer"]),
            .metadata("dimension", "3.0", mentions: ["\"dimension\"", "\"3.0\"", "not an integer"]),
            .metadata("dimension", "", mentions: ["\"dimension\"", "not an integer"]),
            .metadata("couplings", "3e0", mentions: ["\"couplings\"", "not an integer"]),
            .metadata("hidden", "four", mentions: ["\"hidden\"", "not an integer"]),
            .metadata("depth", "2.5", mentions: ["\"depth\"", "not an integer"]),
            .metadata("depth", "99999999999999999999999", mentions: ["\"depth\"", "not an integer"]),
            .metadata("step", "many", mentions: ["\"step\"", "not an integer"]),
            .metadata("step", "-3", mentions: ["\"step\" is \"-3\", not an integer"]),
            .metadata("seed", "-1", mentions: ["\"seed\"", "\"-1\"", "not an unsigned integer"]),
            .metadata("seed", "18446744073709551616", mentions: ["\"seed\"", "not an unsigned integer"]),
            // Integers out of range.
            .metadata("dimension", "1", mentions: ["dimension must be at least 2, found 1"]),
            .metadata("dimension", "-3", mentions: ["\"dimension\" is \"-3\", not an integer"]),
            .metadata("dimension", "2000000", mentions: ["dimension must be at most 1048576"]),
            .metadata("couplings", "0", mentions: ["couplings must be in 1...10000, found 0"]),
            .metadata("couplings", "10001", mentions: ["couplings must be in 1...10000, found 10001"]),
            .metadata("hidden", "0", mentions: ["hidden must be in 1...65536, found 0"]),
            .metadata("hidden", "-4", mentions: ["\"hidden\" is \"-4\", not an integer"]),
            .metadata("depth", "0", mentions: ["depth must be in 1...64, found 0"]),
            .metadata("depth", "65", mentions: ["depth must be in 1...64, found 65"]),
            // Integers in range that contradict the tensors.
            .metadata("dimension", "4", mentions: ["permutations[0]", "has 3 entries, expected 4"]),
            .metadata("couplings", "2", mentions: ["permutations", "3 permutations for 2 couplings"]),
            .metadata("hidden", "5", mentions: ["tensor \"couplings.0.net.0.weight\"", "shape [4, 1], expected [5, 1]"]),
            .metadata("depth", "1", mentions: ["unexpected tensor \"couplings.0.net.2.", "depth 1"]),
            // D = 3 makes the last layer [4, 4], like a hidden one, so depth 3 finds a layer missing.
            .metadata("depth", "3", mentions: ["tensor \"couplings.0.net.3.weight\" is missing"]),
            // Permutations.
            .metadata("permutations", "[[2,1,0],[0,0,1],[2,1,0]]", mentions: ["permutations[1]", "is not a permutation of 0..<3"]),
            .metadata("permutations", "[[2,1,0],[0,1,3],[2,1,0]]", mentions: ["permutations[1]", "is not a permutation of 0..<3 (entry 3)"]),
            .metadata("permutations", "[[2,1,0],[0,1],[2,1,0]]", mentions: ["permutations[1]", "has 2 entries, expected 3"]),
            .metadata("permutations", "[[2,1,0],[0,1,2,3],[2,1,0]]", mentions: ["permutations[1]", "has 4 entries, expected 3"]),
            .metadata("permutations", "[[2,1,0],[2,1,0]]", mentions: ["2 permutations for 3 couplings"]),
            .metadata("permutations", "[]", mentions: ["0 permutations for 3 couplings"]),
            .metadata("permutations", "[[2,1,0],[2,1,0],[2,1,0]", mentions: ["\"permutations\"", "must be a JSON array of arrays"]),
            .metadata("permutations", "[[2,1,0],[2,1,0],[2,1,0]]]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "[[2,1,0],[2,1,0],[2,1,0],]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "[[2,1,0],[2,1,-0],[2,1,0]]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "[[2,1,0],[2.0,1,0],[2,1,0]]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "[[2,1,0] [2,1,0] [2,1,0]]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "[2,1,0]", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "{\"0\": [2,1,0]}", mentions: ["\"permutations\"", "must be a JSON array"]),
            .metadata("permutations", "reverse", mentions: ["\"permutations\"", "\"reverse\""]),
            .metadata("permutations", "", mentions: ["\"permutations\"", "must be a JSON array"]),
            // dtype.
            .metadata("dtype", "float16", mentions: ["dtype \"float16\" is not supported"]),
            .metadata("dtype", "F32", mentions: ["dtype \"F32\" is not supported"]),
            .metadata("dtype", "float64", mentions: ["tensor \"couplings.0.net.0.weight\" has dtype F32, but the metadata says float64"]),
            .tensor("couplings.1.net.1.weight", "stored as F64 in a float32 file",
                    mentions: ["tensor \"couplings.1.net.1.weight\" has dtype F64, but the metadata says float32"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: t.shape, doubles: try! t.doubles())
            },
            .tensor("couplings.0.net.2.bias", "stored as F16", mentions: ["couplings.0.net.2.bias", "dtype F16"]) { t in
                t = SafeTensorsTensor(name: t.name, dtype: .F16, shape: t.shape, bytes: Array(repeating: 0, count: t.shape.reduce(1, *) * 2))
            },
            // The set of tensors.
            Corruption("missing tensor couplings.2.net.2.bias", mentions: ["tensor \"couplings.2.net.2.bias\" is missing"]) {
                $0.tensors.removeAll { $0.name == "couplings.2.net.2.bias" }
            },
            Corruption("missing tensor couplings.0.net.0.weight", mentions: ["tensor \"couplings.0.net.0.weight\" is missing"]) {
                $0.tensors.removeAll { $0.name == "couplings.0.net.0.weight" }
            },
            Corruption("no tensors at all", mentions: ["is missing"]) { $0.tensors = [] },
            Corruption("extra tensor", mentions: ["unexpected tensor \"couplings.0.net.0.scale\""]) {
                $0.tensors.append(SafeTensorsTensor(name: "couplings.0.net.0.scale", shape: [1], floats: [1]))
            },
            Corruption("a fourth coupling", mentions: ["unexpected tensor \"couplings.3.net.0.weight\"", "3 couplings"]) {
                $0.tensors.append(SafeTensorsTensor(name: "couplings.3.net.0.weight", shape: [4, 1], floats: [1, 2, 3, 4]))
            },
            Corruption("standardisation tensors in a file without standardisation", standardized: false,
                       mentions: ["unexpected tensor \"standardize.", "without standardisation"]) {
                $0.tensors.append(SafeTensorsTensor(name: "standardize.mean", shape: [3], floats: [0, 0, 0]))
                $0.tensors.append(SafeTensorsTensor(name: "standardize.std", shape: [3], floats: [1, 1, 1]))
            },
            .metadata("standardize", "true", mentions: ["tensor \"standardize.mean\" is missing"], standardized: false),
            .metadata("standardize", "false", mentions: ["unexpected tensor \"standardize.", "without standardisation"]),
            Corruption("standardize=true without std", mentions: ["tensor \"standardize.std\" is missing"]) {
                $0.tensors.removeAll { $0.name == "standardize.std" }
            },
            Corruption("standardize=true without mean", mentions: ["tensor \"standardize.mean\" is missing"]) {
                $0.tensors.removeAll { $0.name == "standardize.mean" }
            },
            // Shapes.
            .tensor("couplings.0.net.0.weight", "transposed", mentions: ["tensor \"couplings.0.net.0.weight\" has shape [1, 4], expected [4, 1]"]) {
                $0.shape = [1, 4]
            },
            .tensor("couplings.1.net.1.weight", "flattened", mentions: ["tensor \"couplings.1.net.1.weight\" has shape [16], expected [4, 4]"]) {
                $0.shape = [16]
            },
            .tensor("couplings.2.net.2.bias", "too long", mentions: ["tensor \"couplings.2.net.2.bias\" has shape [5], expected [4]"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: [5], floats: try! t.floats() + [0])
            },
            .tensor("couplings.0.net.1.bias", "a row vector", mentions: ["tensor \"couplings.0.net.1.bias\" has shape [1, 4], expected [4]"]) {
                $0.shape = [1, 4]
            },
            .tensor("standardize.std", "too short", mentions: ["tensor \"standardize.std\" has shape [2], expected [3]"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: [2], floats: [1, 1])
            },
            // Values.
            .tensor("couplings.1.net.0.weight", "NaN", mentions: ["tensor \"couplings.1.net.0.weight\" element 3 is not finite (nan)"]) { t in
                var v = try! t.floats()
                v[3] = .nan
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: v)
            },
            .tensor("couplings.2.net.2.bias", "+infinity", mentions: ["tensor \"couplings.2.net.2.bias\" element 0 is not finite (inf)"]) { t in
                var v = try! t.floats()
                v[0] = .infinity
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: v)
            },
            .tensor("standardize.mean", "NaN", mentions: ["tensor \"standardize.mean\" element 2 is not finite"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: [0, 0, .nan])
            },
            .tensor("standardize.std", "zero", mentions: ["standardize.std[1]", "must be finite and positive, found 0.0"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: [1, 0, 1])
            },
            .tensor("standardize.std", "negative", mentions: ["standardize.std[0]", "must be finite and positive, found -2.0"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: [-2, 1, 1])
            },
            .tensor("standardize.std", "-0", mentions: ["standardize.std[2]", "must be finite and positive"]) { t in
                t = SafeTensorsTensor(name: t.name, shape: t.shape, floats: [1, 1, -0.0])
            },
        ]
        return c
    }()

    /// Writes the spoiled archive and checks `ModelFile.read` (both entry points) rejects it with
    /// `FlowError.invalidModelFile` naming the file and every expected fragment.
    @Test(arguments: corruptions)
    func malformedModelFileIsRejected(_ corruption: Corruption) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var archive = try Self.fixture(standardized: corruption.standardized)
        corruption.mutate(&archive)
        let path = dir.file("bad.safetensors")
        try archive.write(to: path)
        for reader in ["untyped", "Float", "Double"] {
            do {
                switch reader {
                case "untyped": _ = try ModelFile.read(from: path)
                case "Float": _ = try ModelFile.read(Float.self, from: path)
                default: _ = try ModelFile.read(Double.self, from: path)
                }
                Issue.record("\(corruption.name): the \(reader) reader accepted the file")
            } catch let error as FlowError {
                guard case .invalidModelFile(let file, let reason) = error else {
                    Issue.record("\(corruption.name): expected invalidModelFile, got \(error)")
                    continue
                }
                #expect(file == path)
                let message = "\(error)"
                #expect(message.hasPrefix(path + ": "), "\(message)")
                for fragment in corruption.mentions {
                    #expect(reason.contains(fragment), "\(corruption.name): \"\(reason)\" does not mention \"\(fragment)\"")
                }
            } catch {
                Issue.record("\(corruption.name): expected FlowError.invalidModelFile, got \(type(of: error)): \(error)")
            }
        }
    }

    /// The fixture itself is valid, so every rejection above is due to its corruption only.
    @Test(arguments: [false, true])
    func theUnspoiledFixtureLoads(standardized: Bool) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("good.safetensors")
        try Self.fixture(standardized: standardized).write(to: path)
        let (model, info) = try ModelFile.read(Float.self, from: path)
        #expect(model.configuration.standardize == standardized)
        #expect(info.step == 5 && info.seed == 6)
    }

    /// Hand-written files may lay out tensors in any order and omit `format` (the crosscheck
    /// script's writer uses Python's dict order); extra metadata entries are kept.
    @Test func tensorOrderInTheFileDoesNotMatter() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try randomFlow(Float.self, dimension: 3, couplings: 3, hidden: 4, standardize: true, seed: 12)
        var archive = ModelFile.archive(of: model, info: ModelFileInfo(step: 5, seed: 6))
        archive.tensors.reverse()
        archive.metadata["comment"] = "written by hand"
        let path = dir.file("reordered.safetensors")
        try archive.write(to: path)
        let (loaded, info) = try ModelFile.read(Float.self, from: path)
        #expect(loaded == model)
        #expect(info.metadata["comment"] == "written by hand")
    }

    /// Whitespace inside a number is not JSON; `[[1 0, …]]` must not be read as 10.
    @Test func permutationsWithSpaceInsideANumberAreRejected() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let model = try randomFlow(Float.self, dimension: 11, couplings: 1, hidden: 2, seed: 1)
        var archive = ModelFile.archive(of: model, info: ModelFileInfo(step: 0, seed: 0))
        archive.metadata["permutations"] = "[[1 0,0,1,2,3,4,5,6,7,8,9]]"  // JSON parsers reject this
        let path = dir.file("spaces.safetensors")
        try archive.write(to: path)
        do {
            let (loaded, _) = try ModelFile.read(from: path)
            Issue.record("accepted, read as permutations \(loaded.configuration.permutations)")
        } catch {
            #expect("\(error)".contains("permutations"), "\(error)")
        }
    }

    // MARK: Container-level failures surface with the path

    @Test(arguments: [
        ("truncated by one byte", -1),
        ("truncated inside the data", -40),
        ("truncated inside the header", 30),
        ("only the length prefix", 8),
        ("shorter than the length prefix", 5),
        ("empty", 0),
    ])
    func truncatedFileIsRejectedWithThePath(_ name: String, _ keep: Int) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let bytes = try Self.fixture(standardized: true).encoded()
        let count = keep < 0 ? bytes.count + keep : keep
        let path = dir.file("truncated.safetensors")
        try Data(bytes[0..<count]).write(to: URL(fileURLWithPath: path))
        do {
            _ = try ModelFile.read(from: path)
            Issue.record("\(name): accepted")
        } catch let error as SafeTensorsError {
            #expect(error.file == path, "\(name): \(error)")
            #expect("\(error)".hasPrefix(path + ": "), "\(name): \(error)")
            switch error.problem {
            case .fileTooShort, .headerExceedsFile, .dataOffsetsBeyondBuffer, .headerNotJSON, .headerNotObject, .hole, .trailingBytes:
                break
            default:
                Issue.record("\(name): unexpected problem \(error.problem)")
            }
        } catch {
            Issue.record("\(name): expected SafeTensorsError, got \(type(of: error)): \(error)")
        }
    }

    @Test func trailingGarbageIsRejectedWithThePath() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("trailing.safetensors")
        try Data(try Self.fixture(standardized: false).encoded() + [0, 0, 0, 0]).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SafeTensorsError.self) { try ModelFile.read(from: path) }
        #expect(error?.file == path)
        guard case .trailingBytes = error?.problem else {
            Issue.record("expected trailingBytes, got \(String(describing: error))")
            return
        }
    }

    @Test func missingFileIsAnIOErrorNamingThePath() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("does-not-exist.safetensors")
        let error = #expect(throws: SafeTensorsError.self) { try ModelFile.read(from: path) }
        #expect(error?.file == path)
        #expect(error?.problem == .io(operation: "open", errno: ENOENT))
        #expect(error.map { "\($0)" }?.contains("No such file") == true, "\(String(describing: error))")
    }

    @Test func notASafetensorsFileIsRejectedWithThePath() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("text.safetensors")
        try Data("dimension,couplings\n2,8\n".utf8).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: SafeTensorsError.self) { try ModelFile.read(from: path) }
        #expect(error?.file == path)
        #expect(error.map { "\($0)" }?.hasPrefix(path + ": ") == true)
    }
}

/// A random non-identity flow whose every permutation is random (not only the reverse).
private func shuffledFlow<S: FlowScalar>(
    _: S.Type, dimension: Int, couplings: Int, standardize: Bool, seed: UInt64
) throws -> RealNVP<S> {
    let base = try randomFlow(S.self, dimension: dimension, couplings: couplings, hidden: 6, standardize: standardize, seed: seed)
    var config = base.configuration
    var rng = SeededGenerator(seed: seed, stream: 1234)
    for l in 0..<couplings where l % 2 == 0 { config.permutations[l] = rng.permutation(dimension) }
    return try RealNVP(configuration: config, parameters: base.parameters, standardization: base.standardization)
}

/// The values' bit patterns (widened to Double, which is exact), for bitwise comparisons.
private func bits<S: FlowScalar>(_ values: [S]) -> [UInt64] {
    values.map { Double($0).bitPattern }  // exact for Float and Double
}
