#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reader of NPY files holding a two-dimensional, C-order, little-endian float32 or float64
/// array — the format `numpy.save` writes. The file is memory-mapped read-only, so it may be
/// larger than memory; rows are converted to `Double` on demand.
///
/// The preamble is validated strictly when the reader is created (see `docs/data.md`):
/// magic `\x93NUMPY`; version 1.0, 2.0 or 3.0; a header dictionary with exactly the keys
/// `'descr'`, `'fortran_order'` and `'shape'`; dtype `'<f4'` or `'<f8'` (also written `f4`,
/// `=f4`, `f8`, `=f8`); `fortran_order` False; a 2-D shape (1-D arrays are rejected: reshape
/// them to (n, 1) in numpy); and a file size of exactly header + rows·columns·itemsize.
///
/// The mapping assumes the file is not truncated by another process while it is read (that
/// would raise SIGBUS, as for any memory-mapped file).
public final class NPYReader: @unchecked Sendable {
    // @unchecked Sendable: every stored property is immutable after `init`, and the mapping is
    // read-only (PROT_READ), so concurrent `read(rows:)` calls only read shared memory.

    /// The file being read, as given.
    public let path: String
    /// Number of rows (the array's first dimension).
    public let rows: Int
    /// Number of columns (the array's second dimension).
    public let columns: Int
    /// The element type stored in the file.
    public let dtype: DataType
    /// The policy for NaN and infinity in ``read(rows:)``.
    public let nonFinite: NonFinitePolicy
    /// Byte offset of the first element in the file.
    public let dataOffset: Int

    private let mapping: UnsafeRawPointer
    private let mappedLength: Int

    /// Opens and maps `path` and validates its preamble and size.
    ///
    /// - Throws: ``DataError/ioError(file:operation:errno:)`` and every `npy…` case of
    ///   ``DataError``.
    public init(path: String, nonFinite: NonFinitePolicy = .reject) throws(DataError) {
        self.path = path
        self.nonFinite = nonFinite
        let file = try PosixFile.openForReading(path)
        defer { file.close() }
        let size = try file.size()
        guard size > 0 else {
            throw DataError.npyBadMagic(file: path, found: [])
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, file.descriptor, 0),
              address != MAP_FAILED
        else {
            throw DataError.ioError(file: path, operation: "mmap", errno: errno)
        }
        let header: NPYHeader
        do throws(DataError) {
            header = try NPYHeader.parse(UnsafeRawBufferPointer(start: address, count: size), fileSize: size, path: path)
        } catch {
            munmap(address, size)
            throw error
        }
        mapping = UnsafeRawPointer(address)
        mappedLength = size
        rows = header.rows
        columns = header.columns
        dtype = header.dtype
        dataOffset = header.dataOffset
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), mappedLength)
    }

    /// Reads a whole NPY file into one table.
    public static func readAll(path: String, nonFinite: NonFinitePolicy = .reject) throws(DataError) -> Table {
        let reader = try NPYReader(path: path, nonFinite: nonFinite)
        return try reader.read(rows: 0..<reader.rows)
    }

    /// The rows in `range`, converted to `Double` (float32 values convert exactly).
    ///
    /// - Throws: ``DataError/nonFiniteValue(file:location:text:)`` with the 0-based row and
    ///   column of the first NaN or infinity, unless ``nonFinite`` is `.allow`.
    /// - Precondition: `range` lies within `0..<rows`.
    public func read(rows range: Range<Int>) throws(DataError) -> Table {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows,
                     "NPYReader.read: rows \(range) outside 0..<\(rows)")
        let count = range.count * columns
        let base = mapping + dataOffset + range.lowerBound * columns * dtype.itemSize
        var firstBad = -1
        let values: [Double]
        switch dtype {
        case .float32:
            values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
                for k in 0..<count {
                    let v = Double(Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 4 * k, as: UInt32.self))))
                    if !v.isFinite && firstBad < 0 { firstBad = k }
                    buffer[k] = v
                }
                initialized = count
            }
        case .float64:
            values = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
                for k in 0..<count {
                    let v = Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 8 * k, as: UInt64.self)))
                    if !v.isFinite && firstBad < 0 { firstBad = k }
                    buffer[k] = v
                }
                initialized = count
            }
        }
        if firstBad >= 0 && nonFinite == .reject {
            let value = values[firstBad]
            let text = dtype == .float32 ? Float(value).description : value.description
            throw DataError.nonFiniteValue(
                file: path,
                location: .npy(row: range.lowerBound + firstBad / columns, column: firstBad % columns),
                text: text)
        }
        return Table(rows: range.count, columns: columns, values: values)
    }

    /// Drops the mapped pages that lie wholly inside rows `range` from this process's resident
    /// set (`madvise(MADV_DONTNEED)` on a read-only mapping: the next access reads the file
    /// again). For streaming over files larger than memory.
    public func releasePages(rows range: Range<Int>) {
        guard !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = dataOffset + range.lowerBound * columns * dtype.itemSize
        let end = min(mappedLength, dataOffset + range.upperBound * columns * dtype.itemSize)
        let first = (start + page - 1) / page * page
        let last = end / page * page
        guard last > first else { return }
        madvise(UnsafeMutableRawPointer(mutating: mapping) + first, last - first, MADV_DONTNEED)
    }
}
