#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// An error reading, validating, encoding or converting a safetensors archive.
///
/// Every error says where it happened and precisely what is wrong:
///
/// - ``file`` is the path (or the source name given to
///   ``SafeTensorsArchive/decode(_:file:)``) of the archive, or `nil` for errors
///   that concern an in-memory archive (encoding, element accessors).
/// - ``tensor`` is the name of the tensor (header entry) concerned, or `nil`.
/// - ``problem`` is the specific fault, with the values found and expected.
///
/// ``description`` joins the three, for example
/// `model.safetensors: tensor "couplings.0.net.0.weight": data_offsets [0, 96] hold 96 bytes
/// but shape [8, 4] of F32 needs 128`.
public struct SafeTensorsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The path or source name of the archive, or `nil` for an in-memory archive.
    public var file: String?
    /// The name of the tensor (header entry) concerned, or `nil` if the fault is not about one.
    public var tensor: String?
    /// What is wrong.
    public var problem: Problem

    /// Creates an error.
    ///
    /// - Parameters:
    ///   - file: The path or source name of the archive; `nil` for an in-memory archive.
    ///   - tensor: The tensor concerned, if any.
    ///   - problem: What is wrong.
    public init(file: String? = nil, tensor: String? = nil, problem: Problem) {
        self.file = file
        self.tensor = tensor
        self.problem = problem
    }

    /// An I/O failure on `path`: the system call or step `operation` (for example `"open"`,
    /// `"read"`, `"fsync"`, `"rename"`) failed with `errno`.
    public static func ioError(_ path: String, errno: Int32, operation: String) -> SafeTensorsError
    {
        SafeTensorsError(file: path, problem: .io(operation: operation, errno: errno))
    }

    /// The specific fault. Values that were found in a hostile header but are not representable
    /// as the expected type (a string where a number belongs, `2.5`, `true`, an integer beyond
    /// 2^53) are carried as their compact JSON rendering in a `found` string.
    public enum Problem: Equatable, Sendable {
        // MARK: Container

        /// The file holds `size` bytes, fewer than the 8-byte header-length prefix.
        case fileTooShort(size: Int)
        /// The header-length prefix announces `length` bytes, more than the `fileSize - 8`
        /// bytes that follow it.
        case headerExceedsFile(length: UInt64, fileSize: Int)
        /// The header-length prefix announces `length` bytes, more than the `limit`
        /// (``SafeTensorsArchive/maximumHeaderLength``) a reader accepts.
        case headerTooLarge(length: UInt64, limit: Int)
        /// The header bytes are not valid UTF-8.
        case headerNotUTF8
        /// The header does not start with `{` or does not parse to a JSON object.
        case headerNotObject
        /// The header is not valid JSON; `reason` is the parser's explanation.
        case headerNotJSON(reason: String)
        /// A JSON object in the header has the member `key` more than once (Swift string
        /// equality, so canonically equivalent Unicode spellings count as the same key).
        case duplicateKey(String)

        // MARK: Header entries

        /// The header entry is not a JSON object.
        case entryNotObject(found: String)
        /// The entry lacks the member `field` (`dtype`, `shape` or `data_offsets`).
        case missingField(String)
        /// The entry has a member other than `dtype`, `shape` and `data_offsets`.
        case unexpectedField(String)
        /// The member `field` has the wrong JSON type.
        case wrongFieldType(field: String, expected: String, found: String)
        /// The dtype string names no ``SafeTensorsDType``.
        case unknownDType(String)
        /// Shape entry `index` is not an integer in 0...2^53.
        case invalidDimension(index: Int, found: String)
        /// The product of the shape's dimensions, or that times the dtype size, overflows `Int`.
        case elementCountOverflow(shape: [Int], dtype: SafeTensorsDType)
        /// `data_offsets` is not an array of two integers in 0...2^53.
        case invalidDataOffsets(found: String)
        /// `data_offsets` has `begin > end`.
        case dataOffsetsReversed(begin: Int, end: Int)
        /// `data_offsets` ends beyond the `bufferSize`-byte data buffer.
        case dataOffsetsBeyondBuffer(begin: Int, end: Int, bufferSize: Int)
        /// `data_offsets` spans `end - begin` bytes but `shape` of `dtype` needs a different
        /// number.
        case dataOffsetsMismatch(begin: Int, end: Int, shape: [Int], dtype: SafeTensorsDType)
        /// The tensor's data starts at `begin`, inside the bytes of the tensor `previous`,
        /// which end at `previousEnd`.
        case overlap(begin: Int, previous: String, previousEnd: Int)
        /// Bytes `begin..<end` of the data buffer belong to no tensor; ``SafeTensorsError/tensor``
        /// is the tensor that starts at `end`.
        case hole(begin: Int, end: Int)
        /// Bytes `begin..<bufferSize` at the end of the data buffer belong to no tensor.
        case trailingBytes(begin: Int, bufferSize: Int)
        /// `__metadata__` is not a JSON object.
        case metadataNotObject(found: String)
        /// The `__metadata__` value for `key` is not a string.
        case metadataValueNotString(key: String, found: String)

        // MARK: Encoding and conversion

        /// Two tensors of the archive have the same name (Swift string equality).
        case duplicateTensorName
        /// A tensor is named `__metadata__`, the key reserved for the metadata map.
        case reservedTensorName
        /// The tensor holds `byteCount` bytes but `shape` of `dtype` needs a different number.
        case byteCountMismatch(byteCount: Int, shape: [Int], dtype: SafeTensorsDType)
        /// The tensor's dtype is `found`; the accessor reads only `expected`.
        case dtypeMismatch(expected: [SafeTensorsDType], found: SafeTensorsDType)

        // MARK: I/O

        /// The system call or step `operation` failed with `errno`.
        case io(operation: String, errno: Int32)
    }

    /// `file: tensor "name": problem`, leaving out the parts that are `nil`.
    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let tensor { parts.append("tensor \(SafeTensorsJSON.quoted(tensor))") }
        parts.append(problem.description)
        return parts.joined(separator: ": ")
    }
}

extension SafeTensorsError.Problem: CustomStringConvertible {
    /// A sentence fragment stating the fault with the values found and expected.
    public var description: String {
        switch self {
        case .fileTooShort(let size):
            return "file holds \(size) bytes, fewer than the 8-byte header length"
        case .headerExceedsFile(let length, let fileSize):
            return "header length \(length) exceeds the file size \(fileSize)"
                + " (\(max(fileSize - 8, 0)) bytes follow the 8-byte header length)"
        case .headerTooLarge(let length, let limit):
            return "header length \(length) exceeds the limit of \(limit) bytes"
        case .headerNotUTF8:
            return "header is not valid UTF-8"
        case .headerNotObject:
            return "header is not a JSON object (it must start with '{')"
        case .headerNotJSON(let reason):
            return "header is not valid JSON: \(reason)"
        case .duplicateKey(let key):
            return "header JSON repeats the key \(SafeTensorsJSON.quoted(key))"
        case .entryNotObject(let found):
            return "entry is \(found), not a JSON object"
        case .missingField(let field):
            return "entry lacks \"\(field)\""
        case .unexpectedField(let field):
            return "entry has the unexpected key \(SafeTensorsJSON.quoted(field))"
                + " (allowed: dtype, shape, data_offsets)"
        case .wrongFieldType(let field, let expected, let found):
            return "\(field) is \(found), expected \(expected)"
        case .unknownDType(let dtype):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "unknown dtype \(SafeTensorsJSON.quoted(dtype)) (known: \(known))"
        case .invalidDimension(let index, let found):
            return "shape[\(index)] is \(found), expected an integer in 0...2^53"
        case .elementCountOverflow(let shape, let dtype):
            return "shape \(shape) of \(dtype.rawValue) overflows a \(Int.bitWidth)-bit byte count"
        case .invalidDataOffsets(let found):
            return "data_offsets is \(found), expected [begin, end] with integers in 0...2^53"
        case .dataOffsetsReversed(let begin, let end):
            return "data_offsets [\(begin), \(end)] begin after they end"
        case .dataOffsetsBeyondBuffer(let begin, let end, let bufferSize):
            return
                "data_offsets [\(begin), \(end)] extend beyond the \(bufferSize)-byte data buffer"
        case .dataOffsetsMismatch(let begin, let end, let shape, let dtype):
            return "data_offsets [\(begin), \(end)] hold \(end - begin) bytes"
                + " but shape \(shape) of \(dtype.rawValue) needs \(Self.neededBytes(shape, dtype))"
        case .overlap(let begin, let previous, let previousEnd):
            return "data starting at \(begin) overlaps tensor \(SafeTensorsJSON.quoted(previous)),"
                + " which ends at \(previousEnd)"
        case .hole(let begin, let end):
            return
                "bytes \(begin)..<\(end) of the data buffer before this tensor belong to no tensor"
        case .trailingBytes(let begin, let bufferSize):
            return
                "bytes \(begin)..<\(bufferSize) at the end of the data buffer belong to no tensor"
        case .metadataNotObject(let found):
            return "__metadata__ is \(found), expected an object of strings"
        case .metadataValueNotString(let key, let found):
            return "__metadata__ value for \(SafeTensorsJSON.quoted(key)) is \(found),"
                + " expected a string"
        case .duplicateTensorName:
            return "name is used by more than one tensor"
        case .reservedTensorName:
            return "name \"__metadata__\" is reserved for the metadata map"
        case .byteCountMismatch(let byteCount, let shape, let dtype):
            return "holds \(byteCount) bytes but shape \(shape) of \(dtype.rawValue)"
                + " needs \(Self.neededBytes(shape, dtype))"
        case .dtypeMismatch(let expected, let found):
            let names = expected.map(\.rawValue).joined(separator: " or ")
            return "dtype is \(found.rawValue), expected \(names)"
        case .io(let operation, let code):
            return "\(operation) failed: \(String(cString: strerror(code))) (errno \(code))"
        }
    }

    /// The byte count `shape` of `dtype` needs, or a phrase if it overflows `Int`.
    private static func neededBytes(_ shape: [Int], _ dtype: SafeTensorsDType) -> String {
        if let count = SafeTensorsDType.byteCount(shape: shape, dtype: dtype) {
            return String(count)
        }
        return "more than \(Int.max)"
    }
}
