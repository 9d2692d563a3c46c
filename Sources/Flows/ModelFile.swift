import Foundation

/// A flow as stored in a model file, in the file's own precision.
public enum AnyRealNVP: Sendable {
    /// A model stored as F32 tensors.
    case float32(RealNVP<Float>)
    /// A model stored as F64 tensors.
    case float64(RealNVP<Double>)

    /// The architecture.
    public var configuration: FlowConfiguration {
        switch self {
        case .float32(let m): return m.configuration
        case .float64(let m): return m.configuration
        }
    }
}

/// The non-tensor facts a model file records besides the architecture.
public struct ModelFileInfo: Sendable, Equatable {
    /// Optimiser steps the parameters have seen.
    public var step: Int
    /// The seed of the run that produced the file.
    public var seed: UInt64
    /// Every metadata entry of the file, as stored.
    public var metadata: [String: String]

    /// Facts to record in a file being written.
    public init(step: Int, seed: UInt64, metadata: [String: String] = [:]) {
        self.step = step
        self.seed = seed
        self.metadata = metadata
    }
}

/// Model files: safetensors with PyTorch-style tensor names (DESIGN §5, docs/model.md).
///
/// Tensors: `couplings.{l}.net.{k}.weight` `[out, in]` and `couplings.{l}.net.{k}.bias` `[out]` for
/// coupling `l` and Linear layer `k` (0…depth), in the flat parameter order, then
/// `standardize.mean` and `standardize.std` `[D]` when the flow standardises. `__metadata__`
/// holds the configuration as strings (keys in `ModelFile.Key`).
public enum ModelFile {
    /// The metadata keys of a model file.
    public enum Key {
        public static let format = "format"
        public static let formatVersion = "format_version"
        public static let dimension = "dimension"
        public static let couplings = "couplings"
        public static let hidden = "hidden"
        public static let depth = "depth"
        public static let activation = "activation"
        public static let scaleFunction = "scale_function"
        public static let permutations = "permutations"
        public static let standardize = "standardize"
        public static let dtype = "dtype"
        public static let step = "step"
        public static let seed = "seed"
        /// The ``TributaryVersion`` of the program that wrote the file (informational: readers
        /// do not check it).
        public static let tributaryVersion = "tributary_version"
    }

    /// The value of `format`.
    public static let formatName = "tributary-realnvp"
    /// The value of `format_version` this build writes and reads.
    public static let formatVersion = 1

    /// The archive (tensors + metadata) describing `model`. `info.metadata` entries are added
    /// to the file's metadata unless they collide with a configuration key.
    public static func archive<S: FlowScalar>(of model: RealNVP<S>, info: ModelFileInfo) -> SafeTensorsArchive {
        let config = model.configuration
        var metadata = info.metadata
        let permutations = "[" + config.permutations.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
        let fixed: [String: String] = [
            Key.format: formatName,
            Key.formatVersion: String(formatVersion),
            Key.dimension: String(config.dimension),
            Key.couplings: String(config.couplings),
            Key.hidden: String(config.hidden),
            Key.depth: String(config.depth),
            Key.activation: "relu",
            Key.scaleFunction: "exp_tanh",
            Key.permutations: permutations,
            Key.standardize: config.standardize ? "true" : "false",
            Key.dtype: S.dtypeName,
            Key.step: String(info.step),
            Key.seed: String(info.seed),
            Key.tributaryVersion: TributaryVersion.current,
        ]
        metadata.merge(fixed) { _, new in new }
        var tensors: [SafeTensorsTensor] = []
        for (l, coupling) in model.layout.layers.enumerated() {
            for (k, linear) in coupling.enumerated() {
                let w = Array(model.parameters[linear.weightOffset..<(linear.weightOffset + linear.weightCount)])
                let b = Array(model.parameters[linear.biasOffset..<(linear.biasOffset + linear.output)])
                tensors.append(tensor(ParameterLayout.tensorName(coupling: l, linear: k, bias: false), [linear.output, linear.input], w))
                tensors.append(tensor(ParameterLayout.tensorName(coupling: l, linear: k, bias: true), [linear.output], b))
            }
        }
        if let s = model.standardization {
            tensors.append(tensor("standardize.mean", [config.dimension], s.mean))
            tensors.append(tensor("standardize.std", [config.dimension], s.std))
        }
        return SafeTensorsArchive(metadata: metadata, tensors: tensors)
    }

    /// Writes `model` to `path` atomically (temporary file, fsync, rename): a reader never sees
    /// a half-written model, and a crash leaves the previous file in place.
    public static func write<S: FlowScalar>(_ model: RealNVP<S>, to path: String, info: ModelFileInfo) throws {
        try archive(of: model, info: info).write(to: path)
    }

    /// Reads and fully validates a model file; the model comes back in the file's precision.
    public static func read(from path: String) throws -> (model: AnyRealNVP, info: ModelFileInfo) {
        let archive = try SafeTensorsArchive.read(from: path)
        return try decode(archive, file: path)
    }

    /// Reads a model file into `RealNVP<S>`: an F32 file loads exactly into `Double`; an F64 file
    /// into `Float` is refused (it would round every parameter).
    public static func read<S: FlowScalar>(_: S.Type, from path: String) throws -> (model: RealNVP<S>, info: ModelFileInfo) {
        let (any, info) = try read(from: path)
        switch any {
        case .float32(let m) where S.self == Float.self:
            return (m as! RealNVP<S>, info)
        case .float64(let m) where S.self == Double.self:
            return (m as! RealNVP<S>, info)
        case .float32(let m):
            let standardization = try m.standardization.map { s throws(FlowError) in
                try Standardization<S>(mean: s.mean.map { S($0) }, std: s.std.map { S($0) })
            }
            return (try RealNVP<S>(configuration: m.configuration, parameters: m.parameters.map { S($0) }, standardization: standardization), info)
        case .float64:
            throw FlowError.invalidModelFile(path: path, reason: "holds float64 parameters; loading them as \(S.dtypeName) would round them")
        }
    }

    /// Validates an archive as a model: metadata, the exact set of tensors, their dtypes and shapes.
    public static func decode(_ archive: SafeTensorsArchive, file: String) throws -> (model: AnyRealNVP, info: ModelFileInfo) {
        func bad(_ reason: String) -> FlowError { .invalidModelFile(path: file, reason: reason) }
        let meta = archive.metadata
        func string(_ key: String) throws(FlowError) -> String {
            guard let v = meta[key] else { throw bad("metadata lacks \"\(key)\"") }
            return v
        }
        func integer(_ key: String) throws(FlowError) -> Int {
            let v = try string(key)
            guard let i = strictInteger(v) else { throw bad("metadata \"\(key)\" is \"\(v)\", not an integer (decimal digits only, no sign or leading zeros)") }
            return i
        }
        if let f = meta[Key.format], f != formatName {
            throw bad("metadata \"format\" is \"\(f)\", expected \"\(formatName)\"")
        }
        let version = try integer(Key.formatVersion)
        guard version == formatVersion else {
            throw bad("format_version \(version) is not supported (this build reads version \(formatVersion))")
        }
        let activation = try string(Key.activation)
        guard activation == "relu" else { throw bad("activation \"\(activation)\" is not supported (only \"relu\")") }
        let scale = try string(Key.scaleFunction)
        guard scale == "exp_tanh" else { throw bad("scale_function \"\(scale)\" is not supported (only \"exp_tanh\")") }
        let standardizeText = try string(Key.standardize)
        guard standardizeText == "true" || standardizeText == "false" else {
            throw bad("metadata \"standardize\" is \"\(standardizeText)\", expected \"true\" or \"false\"")
        }
        var config = FlowConfiguration(
            dimension: try integer(Key.dimension), couplings: try integer(Key.couplings),
            hidden: try integer(Key.hidden), depth: try integer(Key.depth), standardize: standardizeText == "true")
        config.permutations = try parsePermutations(try string(Key.permutations), file: file)
        do { try config.validate() } catch { throw bad("\(error)") }
        let dtypeName = try string(Key.dtype)
        let dtype: SafeTensorsDType
        switch dtypeName {
        case "float32": dtype = .F32
        case "float64": dtype = .F64
        default: throw bad("dtype \"\(dtypeName)\" is not supported (float32 or float64)")
        }
        let step = try integer(Key.step)
        let seedText = try string(Key.seed)
        guard seedText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let seed = UInt64(seedText) else { throw bad("metadata \"seed\" is \"\(seedText)\", not an unsigned integer") }
        let info = ModelFileInfo(step: step, seed: seed, metadata: meta)

        // The exact set of tensors, each with the right dtype and shape.
        let layout = ParameterLayout(config)
        var expected: [(name: String, shape: [Int], offset: Int?)] = []
        for (l, coupling) in layout.layers.enumerated() {
            for (k, linear) in coupling.enumerated() {
                expected.append((ParameterLayout.tensorName(coupling: l, linear: k, bias: false), [linear.output, linear.input], linear.weightOffset))
                expected.append((ParameterLayout.tensorName(coupling: l, linear: k, bias: true), [linear.output], linear.biasOffset))
            }
        }
        if config.standardize {
            expected.append(("standardize.mean", [config.dimension], nil))
            expected.append(("standardize.std", [config.dimension], nil))
        }
        let expectedNames = Set(expected.map(\.name))
        if let extra = archive.tensors.first(where: { !expectedNames.contains($0.name) }) {
            throw bad("unexpected tensor \"\(extra.name)\" for a flow with \(config.couplings) couplings of depth \(config.depth)\(config.standardize ? "" : " without standardisation")")
        }
        // Every expected tensor present with its dtype and shape before anything is allocated:
        // the tensors' bytes are in the file, so the file's size then bounds the allocation.
        for item in expected {
            guard let t = archive[item.name] else { throw bad("tensor \"\(item.name)\" is missing") }
            guard t.dtype == dtype else {
                throw bad("tensor \"\(item.name)\" has dtype \(t.dtype.rawValue), but the metadata says \(dtypeName)")
            }
            guard t.shape == item.shape else {
                throw bad("tensor \"\(item.name)\" has shape \(t.shape), expected \(item.shape)")
            }
        }
        func load<S: FlowScalar>(_: S.Type) throws -> RealNVP<S> {
            var parameters = [S](repeating: 0, count: layout.count)
            var mean: [S] = [], std: [S] = []
            for item in expected {
                let t = archive[item.name]!
                let values: [S] = dtype == .F32 ? try t.floats().map { S($0) } : try t.doubles().map { S($0) }
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw bad("tensor \"\(item.name)\" element \(i) is not finite (\(values[i]))")
                }
                if let offset = item.offset {
                    parameters.withUnsafeMutableBufferPointer { p in
                        for (i, v) in values.enumerated() { p[offset + i] = v }
                    }
                } else if item.name == "standardize.mean" {
                    mean = values
                } else {
                    std = values
                }
            }
            do {
                let standardization = config.standardize ? try Standardization<S>(mean: mean, std: std) : nil
                return try RealNVP<S>(configuration: config, parameters: parameters, standardization: standardization)
            } catch {
                throw bad("\(error)")
            }
        }
        switch dtype {
        case .F32: return (.float32(try load(Float.self)), info)
        default: return (.float64(try load(Double.self)), info)
        }
    }

    /// Parses `[[3,2,1,0],[…]]` strictly: JSON arrays of non-negative decimal integers (no
    /// signs, no leading zeros), whitespace allowed between tokens only.
    static func parsePermutations(_ text: String, file: String) throws(FlowError) -> [[Int]] {
        let failure = FlowError.invalidModelFile(path: file, reason: "metadata \"permutations\" must be a JSON array of arrays of non-negative integers, found \"\(text.prefix(60))\"")
        let bytes = Array(text.utf8)
        var i = 0
        func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }
        func accept(_ c: Character) -> Bool {
            skipSpace()
            guard i < bytes.count, bytes[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        func number() throws(FlowError) -> Int {
            skipSpace()
            let start = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39, i - start < 10 { i += 1 }
            guard i > start, !(bytes[start] == 0x30 && i - start > 1) else { throw failure }
            return bytes[start..<i].reduce(0) { $0 * 10 + Int($1 - 0x30) }
        }
        var result: [[Int]] = []
        guard accept("[") else { throw failure }
        if !accept("]") {
            repeat {
                guard accept("[") else { throw failure }
                var perm: [Int] = []
                if !accept("]") {
                    repeat { perm.append(try number()) } while accept(",")
                    guard accept("]") else { throw failure }
                }
                result.append(perm)
            } while accept(",")
            guard accept("]") else { throw failure }
        }
        skipSpace()
        guard i == bytes.count else { throw failure }
        return result
    }

    /// A non-negative decimal integer without sign or leading zeros (at most 18 digits).
    static func strictInteger(_ text: String) -> Int? {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              !(bytes[0] == 0x30 && bytes.count > 1)
        else { return nil }
        return bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func tensor<S: FlowScalar>(_ name: String, _ shape: [Int], _ values: [S]) -> SafeTensorsTensor {
        if S.self == Float.self {
            return SafeTensorsTensor(name: name, shape: shape, floats: values as! [Float])
        }
        return SafeTensorsTensor(name: name, shape: shape, doubles: values.map { Double($0) })
    }
}
