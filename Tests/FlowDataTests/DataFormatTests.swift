import Testing
@testable import FlowData

struct DataFormatTests {
    @Test(arguments: [("a.npy", DataFormat.npy), ("dir.x/B.CSV", .csv), ("c.tsv", .tsv), ("x.y.Npy", .npy)])
    func formatFromExtension(path: String, format: DataFormat) throws {
        #expect(try DataFormat(path: path) == format)
    }

    @Test(arguments: ["out.parquet", "npy", "data.csv.gz", "dir.npy/file", ""])
    func otherExtensionsAreErrors(path: String) {
        let error = #expect(throws: DataError.self) { _ = try DataFormat(path: path) }
        #expect(error == .unsupportedExtension(file: path))
        #expect(error?.description == "\(path): cannot tell the format from the file name (use .npy, .csv or .tsv)")
    }

    @Test func writeAndReadEveryFormat() throws {
        let dir = TemporaryDirectory()
        let table = Table(rows: 2, columns: 3, values: [1, 2.5, -3, 4e-3, 5, 6], columnNames: ["a", "b", "c"])
        for name in ["t.npy", "t.csv", "t.tsv"] {
            try DataFormat.write(table, to: dir.file(name))
            let back = try DataFormat.readAll(path: dir.file(name))
            #expect(back.values == table.values, "\(name)")
            #expect(back.columnNames == (name.hasSuffix(".npy") ? nil : table.columnNames))
        }
        #expect(throws: DataError.unsupportedExtension(file: dir.file("t.txt"))) {
            try DataFormat.write(table, to: dir.file("t.txt"))
        }
        #expect(dir.entries() == ["t.csv", "t.npy", "t.tsv"])
    }
}
