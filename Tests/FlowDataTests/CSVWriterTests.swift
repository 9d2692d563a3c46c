import Foundation
import Testing
import FlowRandom
@testable import FlowData

struct CSVWriterTests {
    static let extremes: [Double] = [
        0, -0.0, 1, -1, 0.1, 1.0 / 3.0, 1e-300, -2.2250738585072014e-308, Double.leastNonzeroMagnitude, 1.7976931348623157e308,
        123456789.123456789, 1e16, 1e22, 1e23, -9007199254740992, -Double.leastNonzeroMagnitude,
    ]

    @Test(arguments: [CSVDelimiter.comma, .tab], [true, false])
    func float64RoundTripIsExact(delimiter: CSVDelimiter, withHeader: Bool) throws {
        let dir = TemporaryDirectory()
        var g = SeededGenerator(seed: 3)
        var values = Self.extremes
        values += (0..<(4 * 1000 - values.count)).map { _ in g.normal() * pow(10, g.uniform(-300, 300)) }
        let names = withHeader ? ["a", "b b", "c", "d"] : nil
        let table = Table(rows: 1000, columns: 4, values: values, columnNames: names)
        let path = dir.file("out.csv")
        let writer = try CSVWriter(path: path, columns: 4, header: names, delimiter: delimiter)
        try writer.append(table)
        try writer.finish()
        let reader = try CSVReader(path: path)
        #expect(reader.delimiter == delimiter && reader.hasHeader == withHeader)
        let back = try #require(try reader.nextChunk(maxRows: .max))
        #expect(sameBits(back.values, table.values))
        #expect(back.columnNames == names)
    }

    @Test func float32WritesShortDigitsThatRoundTripAsFloat() throws {
        let dir = TemporaryDirectory()
        var g = SeededGenerator(seed: 4)
        let values = (0..<2000).map { _ in g.normal() * pow(10, g.uniform(-30, 30)) }
        let path = dir.file("f.csv")
        try DataFormat.write(Table(rows: 1000, columns: 2, values: values), to: path, dtype: .float32)
        let text = String(decoding: contents(of: path), as: UTF8.self)
        #expect(text.split(separator: "\n").first.map { $0 == "\(Float(values[0])),\(Float(values[1]))" } == true)
        let back = try CSVReader.readAll(path: path)
        #expect(back.values.map(Float.init) == values.map(Float.init))
    }

    @Test func crlfCopyOfAWrittenFileReadsTheSame() throws {
        let dir = TemporaryDirectory()
        let table = Table(rows: 3, columns: 2, values: [1.5, -2, 3e-5, 4, 5, 6e10], columnNames: ["x", "y"])
        let path = dir.file("lf.csv")
        try DataFormat.write(table, to: path)
        let crlf = dir.write("crlf.csv", String(decoding: contents(of: path), as: UTF8.self)
                                .replacingOccurrences(of: "\n", with: "\r\n"))
        #expect(try CSVReader.readAll(path: crlf) == table)
        #expect(try CSVReader.readAll(path: path) == table)
    }

    @Test func nonFiniteValuesAreWrittenReadably() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("n.csv")
        try DataFormat.write(Table(rows: 1, columns: 3, values: [.nan, .infinity, -.infinity]), to: path)
        #expect(String(decoding: contents(of: path), as: UTF8.self) == "nan,inf,-inf\n")
        let back = try CSVReader.readAll(path: path, nonFinite: .allow)
        #expect(back[0, 0].isNaN && back[0, 1] == .infinity && back[0, 2] == -.infinity)
    }

    @Test func headerNamesAreQuotedWhenNeeded() throws {
        let names = ["plain", "with,comma", "say \"hi\"", " padded", "", "1.5", "nan", "tab\there"]
        let dir = TemporaryDirectory()
        let path = dir.file("q.csv")
        let writer = try CSVWriter(path: path, columns: names.count, header: names)
        try writer.append(values: Array(repeating: 1.0, count: names.count), rows: 1)
        try writer.finish()
        let firstLine = String(decoding: contents(of: path), as: UTF8.self).split(separator: "\n")[0]
        #expect(firstLine == "plain,\"with,comma\",\"say \"\"hi\"\"\",\" padded\",\"\",\"1.5\",\"nan\",\"tab\there\"")
        #expect(try CSVReader.readAll(path: path).columnNames == names)
    }

    @Test func tsvExtensionChoosesTabs() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("t.TSV")
        let writer = try CSVWriter(path: path, columns: 2)
        #expect(writer.delimiter == .tab)
        try writer.append(values: [1, 2], rows: 1)
        try writer.finish()
        #expect(String(decoding: contents(of: path), as: UTF8.self) == "1.0\t2.0\n")
    }

    @Test func headerErrors() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("h.csv")
        #expect(throws: DataError.columnCountMismatch(file: path, expected: 2, found: 1)) {
            _ = try CSVWriter(path: path, columns: 2, header: ["a"])
        }
        let error = #expect(throws: DataError.self) { _ = try CSVWriter(path: path, columns: 1, header: ["a\nb"]) }
        #expect(error == .invalidColumnName(file: path, name: "a\nb"))
        #expect(error?.description == "\(path): column name \"a\\nb\" contains a line break")
        #expect(dir.entries().isEmpty)
    }

    @Test func unfinishedWriterLeavesNoFileAndWrongWidthIsAnError() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("u.csv")
        do {
            let writer = try CSVWriter(path: path, columns: 2, header: ["a", "b"])
            #expect(throws: DataError.columnCountMismatch(file: path, expected: 2, found: 1)) {
                try writer.append(Table(rows: 2, columns: 1, values: [1, 2]))
            }
            try writer.append(values: [1, 2], rows: 1)
        }
        #expect(dir.entries().isEmpty)
    }
}
