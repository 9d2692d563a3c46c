import Foundation
import Testing
import FlowRandom
@testable import FlowData

struct NPYWriterTests {
    static func randomTable(rows: Int, columns: Int, seed: UInt64) -> Table {
        var g = SeededGenerator(seed: seed)
        let values = (0..<(rows * columns)).map { _ in g.normal() * pow(10, g.uniform(-20, 20)) }
        return Table(rows: rows, columns: columns, values: values)
    }

    @Test func headerIsNumpysExactBytesAndFixedLength() {
        let header = NPYHeader.encode(dtype: .float64, rows: 3, columns: 2)
        let expected = numpyStyleFile(
            dictionary: "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }", growthPadding: 20, payload: [])
        #expect(header == expected)
        #expect(header.count == 128)
        for rows in [0, 9, 10, 123_456_789, Int.max] {
            let h = NPYHeader.encode(dtype: .float32, rows: rows, columns: 1234)
            #expect(h.count == header.count && h.count % 64 == 0, "rows \(rows)")
            #expect(h.last == UInt8(ascii: "\n"))
        }
    }

    @Test(arguments: DataType.allCases)
    func streamingRoundTrip(dtype: DataType) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("out.npy")
        let table = Self.randomTable(rows: 1000, columns: 3, seed: 5)
        let writer = try NPYWriter(path: path, columns: 3, dtype: dtype)
        try writer.append(table.gather(rows: Array(0..<400)))
        try writer.append(values: table.gather(rows: Array(400..<1000)).values[...], rows: 600)
        #expect(writer.rowsWritten == 1000)
        #expect(!FileManager.default.fileExists(atPath: path))
        try writer.finish()
        let reader = try NPYReader(path: path)
        #expect(reader.dtype == dtype && reader.rows == 1000 && reader.columns == 3)
        let back = try reader.read(rows: 0..<1000)
        switch dtype {
        case .float64: #expect(sameBits(back.values, table.values))
        case .float32: #expect(back.values == table.values.map { Double(Float($0)) })
        }
        #expect(dir.entries() == ["out.npy"])
        #expect(contents(of: path).count == 128 + 1000 * 3 * dtype.itemSize)
    }

    @Test func writesNonFiniteValuesAndZeroRows() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("nan.npy")
        let writer = try NPYWriter(path: path, columns: 2, dtype: .float64)
        try writer.append(values: [.nan, -.infinity], rows: 1)
        try writer.finish()
        let table = try NPYReader.readAll(path: path, nonFinite: .allow)
        #expect(table[0, 0].isNaN && table[0, 1] == -.infinity)
        let empty = dir.file("empty.npy")
        let emptyWriter = try NPYWriter(path: empty, columns: 5)
        try emptyWriter.finish()
        let reader = try NPYReader(path: empty)
        #expect(reader.rows == 0 && reader.columns == 5 && reader.dtype == .float32)
    }

    @Test func unfinishedWriterLeavesNoFile() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("never.npy")
        do {
            let writer = try NPYWriter(path: path, columns: 2)
            try writer.append(values: [1, 2], rows: 1)
            #expect(dir.entries().count == 1)  // the temporary file
            #expect(dir.entries().first?.hasPrefix(".never.npy.tmp-") == true)
        }
        #expect(dir.entries().isEmpty)
    }

    @Test func finishReplacesAnExistingFileAtomically() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("out.npy", "old contents")
        let writer = try NPYWriter(path: path, columns: 1, dtype: .float64)
        try writer.append(values: [42], rows: 1)
        #expect(String(decoding: contents(of: path), as: UTF8.self) == "old contents")
        try writer.finish()
        #expect(try NPYReader.readAll(path: path).values == [42])
    }

    @Test func wrongWidthIsAnError() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("w.npy")
        let writer = try NPYWriter(path: path, columns: 2)
        let error = #expect(throws: DataError.self) {
            try writer.append(Table(rows: 1, columns: 3, values: [1, 2, 3]))
        }
        #expect(error == .columnCountMismatch(file: path, expected: 2, found: 3))
        #expect(error?.description == "\(path): expected 2 columns, got 3")
        #expect(throws: DataError.columnCountMismatch(file: path, expected: 2, found: 3)) {
            try writer.append(values: [1, 2, 3, 4, 5, 6], rows: 2)
        }
    }

    @Test func unwritableDirectoryIsAnIOError() {
        let error = #expect(throws: DataError.self) { _ = try NPYWriter(path: "/nonexistent/dir/x.npy", columns: 1) }
        guard case let .ioError(_, operation, code) = error else {
            Issue.record("expected ioError, got \(String(describing: error))")
            return
        }
        #expect(operation == "open" && code == ENOENT)
    }

    @Test(.enabled(if: numpyAvailable, "python3 with numpy is not installed; numpy check skipped"))
    func numpyLoadsWrittenFilesAndWritesTheSameBytes() throws {
        let dir = TemporaryDirectory()
        let table = Table(rows: 7, columns: 5, values: (0..<35).map { (Double($0) - 17) / 3 })
        for dtype in DataType.allCases {
            try DataFormat.write(table, to: dir.file("swift-\(dtype).npy"), dtype: dtype)
        }
        let program = """
            import numpy as np, sys
            a = (np.arange(35, dtype=np.float64).reshape(7, 5) - 17) / 3
            b = np.load('\(dir.file("swift-float64.npy"))')
            c = np.load('\(dir.file("swift-float32.npy"))')
            assert b.dtype == np.float64 and b.shape == (7, 5) and (b == a).all()
            assert c.dtype == np.float32 and (c == a.astype(np.float32)).all()
            np.save('\(dir.file("numpy-float64.npy"))', a)
            np.save('\(dir.file("numpy-float32.npy"))', a.astype(np.float32))
            """
        #expect(try runPython(program) == 0)
        for dtype in DataType.allCases {
            #expect(contents(of: dir.file("swift-\(dtype).npy")) == contents(of: dir.file("numpy-\(dtype).npy")))
        }
    }
}
