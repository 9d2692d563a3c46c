import Foundation
import Testing
import FlowRandom
@testable import FlowData

struct CSVReaderTests {
    // MARK: Layout

    @Test func readsHeaderAndCommaSeparatedData() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "x,y\n1,2\n3.5,-4e-1\n")
        let table = try CSVReader.readAll(path: path)
        #expect(table == Table(rows: 2, columns: 2, values: [1, 2, 3.5, -0.4], columnNames: ["x", "y"]))
    }

    @Test func detectsTabsCRLFSpacesMissingFinalNewlineAndBOM() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.tsv", "\u{FEFF}a\t b \r\n 1 \t2\r\n3\t 4")
        let reader = try CSVReader(path: path)
        #expect(reader.delimiter == .tab)
        #expect(reader.hasHeader)
        #expect(reader.columnNames == ["a", "b"])
        let table = try #require(try reader.nextChunk(maxRows: 10))
        #expect(table.values == [1, 2, 3, 4])
        #expect(try reader.nextChunk(maxRows: 10) == nil)
    }

    @Test func withoutHeaderTheFirstLineIsData() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "1,2\n3,4\n")
        let table = try CSVReader.readAll(path: path)
        #expect(table == Table(rows: 2, columns: 2, values: [1, 2, 3, 4]))
        // `nan` parses as a number, so a first line of numbers and nan is data, not a header.
        let withNaN = dir.write("nan.csv", "nan,2\n3,4\n")
        let reader = try CSVReader(path: withNaN, nonFinite: .allow)
        #expect(!reader.hasHeader)
        #expect(try reader.nextChunk(maxRows: 5)?.rows == 2)
    }

    @Test func explicitHeaderModes() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "1,2\n3,4\n")
        let forced = try CSVReader.readAll(path: path, header: .present)
        #expect(forced == Table(rows: 1, columns: 2, values: [3, 4], columnNames: ["1", "2"]))
        let text = dir.write("text.csv", "a,b\n3,4\n")
        #expect(throws: DataError.nonNumericField(file: text, line: 1, column: 1, text: "a")) {
            _ = try CSVReader.readAll(path: text, header: .absent)
        }
    }

    @Test func explicitDelimiterOverridesDetection() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "1;2\t3\n")
        #expect(throws: DataError.nonNumericField(file: path, line: 1, column: 1, text: "1;2")) {
            _ = try CSVReader.readAll(path: path, header: .absent, delimiter: .tab)
        }
        let comma = dir.write("comma.csv", "1,2\n")
        #expect(try CSVReader.readAll(path: comma, delimiter: .comma).columns == 2)
        #expect(try CSVReader(path: comma, delimiter: .tab).columnNames == ["1,2"])
    }

    @Test func quotedHeaderNames() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "\"a,b\", \"say \"\"hi\"\"\",\"3\"\n1,2,3\n")
        let table = try CSVReader.readAll(path: path)
        #expect(table.columnNames == ["a,b", "say \"hi\"", "3"])
        #expect(table.values == [1, 2, 3])
    }

    @Test func trailingBlankLinesAreIgnored() throws {
        let dir = TemporaryDirectory()
        for (k, tail) in ["\n\n", "\r\n\r\n", "\n   \n\t\n", "\n\n\n\n  "].enumerated() {
            let path = dir.write("t\(k).csv", "x\n1\n2" + tail)
            let table = try CSVReader.readAll(path: path)
            #expect(table.values == [1, 2], "tail \(tail.debugDescription)")
        }
    }

    @Test func headerOnlyFileGivesZeroRows() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "x,y,z\n")
        let table = try CSVReader.readAll(path: path)
        #expect(table.rows == 0 && table.columns == 3 && table.columnNames == ["x", "y", "z"])
    }

    // MARK: Errors

    @Test func nonNumericFieldNamesLineAndColumn() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "a,b,c\n" + String(repeating: "1,2,3\n", count: 5) + "1,2,abc\n")
        let error = #expect(throws: DataError.self) { _ = try CSVReader.readAll(path: path) }
        #expect(error == .nonNumericField(file: path, line: 7, column: 3, text: "abc"))
        #expect(error?.description == "\(path) line 7, column 3: \"abc\" is not a number")
    }

    @Test func emptyFieldIsNotANumber() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "1,2\n3, \n")
        let error = #expect(throws: DataError.self) { _ = try CSVReader.readAll(path: path) }
        #expect(error == .nonNumericField(file: path, line: 2, column: 2, text: ""))
        #expect(error?.description == "\(path) line 2, column 2: empty field is not a number")
    }

    @Test(arguments: ["nan", "-inf", "Infinity", "1e999"])
    func nonFiniteValuesAreRejectedByDefault(text: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "x,y\n1,2\n3,\(text)\n")
        let error = #expect(throws: DataError.self) { _ = try CSVReader.readAll(path: path) }
        #expect(error == .nonFiniteValue(file: path, location: .csv(line: 3, column: 2), text: text))
        #expect(error?.description
                == "\(path) line 3, column 2: \"\(text)\" is not finite (NaN and infinity are rejected)")
        let allowed = try CSVReader.readAll(path: path, nonFinite: .allow)
        #expect(!allowed[1, 1].isFinite)
    }

    @Test func raggedRowsNameExpectedAndFound() throws {
        let dir = TemporaryDirectory()
        let short = dir.write("short.csv", "1,2,3\n4,5\n")
        let error = #expect(throws: DataError.self) { _ = try CSVReader.readAll(path: short) }
        #expect(error == .raggedRow(file: short, line: 2, expected: 3, found: 2))
        #expect(error?.description == "\(short) line 2: expected 3 fields, found 2")
        let long = dir.write("long.csv", "a,b\n1,2\n3,4,5,6\n")
        #expect(throws: DataError.raggedRow(file: long, line: 3, expected: 2, found: 4)) {
            _ = try CSVReader.readAll(path: long)
        }
    }

    @Test func blankLineInsideTheDataIsAnError() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "x\n1\n\n2\n")
        let error = #expect(throws: DataError.self) { _ = try CSVReader.readAll(path: path) }
        #expect(error == .emptyLine(file: path, line: 3))
        #expect(error?.description
                == "\(path) line 3: empty line inside the data (only trailing empty lines are allowed)")
        let leading = dir.write("leading.csv", "\n1\n")
        #expect(throws: DataError.emptyLine(file: leading, line: 1)) {
            _ = try CSVReader.readAll(path: leading)
        }
    }

    @Test(arguments: ["", "\n", " \n\r\n\n  "])
    func emptyFiles(text: String) throws {
        let dir = TemporaryDirectory()
        let path = dir.write("empty.csv", text)
        let error = #expect(throws: DataError.self) { _ = try CSVReader(path: path) }
        #expect(error == .emptyFile(file: path))
        #expect(error?.description == "\(path): the file contains no data")
    }

    @Test func missingFileIsAnIOError() {
        let error = #expect(throws: DataError.self) {
            _ = try CSVReader(path: "/nonexistent/dir/data.csv")
        }
        #expect(error == .ioError(file: "/nonexistent/dir/data.csv", operation: "open", errno: ENOENT))
        #expect(error?.description
                == "/nonexistent/dir/data.csv: open failed: No such file or directory (errno 2)")
    }

    @Test func overlongLinesAreRejected() throws {
        let dir = TemporaryDirectory()
        let first = dir.write("first.csv", String(repeating: "1", count: 100) + "\n")
        #expect(throws: DataError.lineTooLong(file: first, line: 1, limit: 50)) {
            _ = try CSVReader(path: first, lineLimit: 50)
        }
        let later = dir.write("later.csv", "1\n2\n" + String(repeating: "3", count: 100))
        let reader = try CSVReader(path: later, lineLimit: 50)
        let error = #expect(throws: DataError.self) { _ = try reader.nextChunk(maxRows: 10) }
        #expect(error == .lineTooLong(file: later, line: 3, limit: 50))
        // A failed reader keeps failing with the same error.
        #expect(throws: error!) { _ = try reader.nextChunk(maxRows: 10) }
    }

    // MARK: Chunks and resumption

    /// A file of about 3 MiB, so that lines straddle the 1 MiB read blocks.
    static func largeFile(in dir: TemporaryDirectory, crlf: Bool = false) -> (path: String, values: [Double]) {
        var g = SeededGenerator(seed: 11)
        var text = "alpha,beta,gamma\(crlf ? "\r\n" : "\n")"
        var values: [Double] = []
        for _ in 0..<60_000 {
            let row = [g.normal() * 1e3, g.uniform(), Double(g.integer(below: 100))]
            values += row
            text += row.map(\.description).joined(separator: ", ") + (crlf ? "\r\n" : "\n")
        }
        return (dir.write(crlf ? "large-crlf.csv" : "large.csv", text), values)
    }

    @Test(arguments: [false, true])
    func chunkedReadingMatchesReadAll(crlf: Bool) throws {
        let dir = TemporaryDirectory()
        let (path, expected) = Self.largeFile(in: dir, crlf: crlf)
        let whole = try CSVReader.readAll(path: path)
        #expect(whole.rows == 60_000)
        #expect(whole.values == expected)
        for chunkSize in [1, 7, 1000, 59_999, 60_000, 100_000] {
            let reader = try CSVReader(path: path)
            var collected = Table(columns: 3, columnNames: reader.columnNames)
            while let chunk = try reader.nextChunk(maxRows: chunkSize) {
                #expect(chunk.rows == chunkSize || collected.rows + chunk.rows == 60_000)
                collected.append(chunk)
            }
            #expect(collected == whole, "chunk size \(chunkSize)")
            #expect(reader.rowIndex == 60_000)
            #expect(reader.lineNumber == 60_002)
        }
    }

    @Test func resumesAtRecordedChunkBoundaries() throws {
        let dir = TemporaryDirectory()
        let (path, _) = Self.largeFile(in: dir)
        let whole = try CSVReader.readAll(path: path)
        let reader = try CSVReader(path: path)
        var boundaries: [(offset: Int, line: Int, row: Int)] = []
        repeat {
            boundaries.append((reader.byteOffset, reader.lineNumber, reader.rowIndex))
        } while try reader.nextChunk(maxRows: 7_000) != nil
        #expect(boundaries.count == 10)  // 9 chunks and the end
        #expect(boundaries[0].offset == "alpha,beta,gamma\n".utf8.count && boundaries[0].line == 2)
        // Resume at every boundary, in reverse order, and read one chunk.
        for boundary in boundaries.reversed() {
            let resumed = try CSVReader(path: path, startingAt: boundary.offset,
                                        firstLine: boundary.line, firstRow: boundary.row)
            #expect(resumed.columnNames == ["alpha", "beta", "gamma"])
            let chunk = try resumed.nextChunk(maxRows: 7_000)
            if boundary.row == 60_000 {
                #expect(chunk == nil)
            } else {
                let rows = min(7_000, 60_000 - boundary.row)
                #expect(chunk == whole.gather(rows: Array(boundary.row..<(boundary.row + rows))))
                #expect(resumed.lineNumber == boundary.line + rows)
            }
        }
    }

    @Test func rejectsResumeOffsetsThatAreNotLineStarts() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "x,y\n1,2\n3,4\n")
        for offset in [0, 2, 5, 13, -1] {
            let error = #expect(throws: DataError.self) {
                _ = try CSVReader(path: path, startingAt: offset, firstLine: 2)
            }
            #expect(error == .badResumeOffset(file: path, offset: offset))
            #expect(error?.description == "\(path): byte offset \(offset) is not the start of a data line")
        }
        let resumed = try CSVReader(path: path, startingAt: 8, firstLine: 3, firstRow: 1)
        #expect(try resumed.nextChunk(maxRows: 5)?.values == [3, 4])
        let atEnd = try CSVReader(path: path, startingAt: 12, firstLine: 4, firstRow: 2)
        #expect(try atEnd.nextChunk(maxRows: 5) == nil)
    }

    // MARK: Tolerant mode

    @Test func markNaNRecordsBadLinesAndKeepsRowCount() throws {
        let dir = TemporaryDirectory()
        let text = """
            x,y
            1,2
            3,oops
            5
            nan,6

            7,8
            9,10,11
            12,13


            """
        let path = dir.write("data.csv", text)
        let reader = try CSVReader(path: path, onBadRow: .markNaN)
        var table = Table(columns: 2)
        while let chunk = try reader.nextChunk(maxRows: 3) {
            table.append(chunk)
        }
        #expect(table.rows == 8)
        let expected: [Double] = [1, 2, .nan, .nan, .nan, .nan, .nan, .nan, .nan, .nan, 7, 8, .nan, .nan, 12, 13]
        #expect(zip(table.values, expected).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) })
        #expect(reader.badRows == [
            .init(row: 1, line: 3, error: .nonNumericField(file: path, line: 3, column: 2, text: "oops")),
            .init(row: 2, line: 4, error: .raggedRow(file: path, line: 4, expected: 2, found: 1)),
            .init(row: 3, line: 5, error: .nonFiniteValue(file: path, location: .csv(line: 5, column: 1), text: "nan")),
            .init(row: 4, line: 6, error: .emptyLine(file: path, line: 6)),
            .init(row: 6, line: 8, error: .raggedRow(file: path, line: 8, expected: 2, found: 3)),
        ])
    }

    @Test func markNaNWithAllowedNonFiniteKeepsNaNValuesUnrecorded() throws {
        let dir = TemporaryDirectory()
        let path = dir.write("data.csv", "1,nan\ninf,x\n")
        let reader = try CSVReader(path: path, nonFinite: .allow, onBadRow: .markNaN)
        let table = try #require(try reader.nextChunk(maxRows: 10))
        #expect(table.rows == 2)
        #expect(table[0, 0] == 1 && table[0, 1].isNaN && table[1, 0].isNaN)
        #expect(reader.badRows.map(\.line) == [2])
    }
}
