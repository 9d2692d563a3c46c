import Foundation
import Testing
@testable import FlowData

/// The byte-level pieces of `--tensorboard` and `--prometheus-textfile` (the files themselves
/// are read back with TensorBoard's and prometheus_client's own readers in the CLI tests).
struct MonitoringFormatTests {
    @Test func crc32cMatchesTheStandardCheckValues() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        let crc = CRC32C.checksum(Array("123456789".utf8))
        #expect(CRC32C.masked(Array("123456789".utf8)) == ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
    }

    @Test func eventRecordsAreFramedWithTheirLengthsAndChecksums() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tb-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = try TensorBoardEventFile(directory: dir, wallTime: 1_700_000_000.5, resumingAt: 7)
        file.write(step: 8, wallTime: 1_700_000_001, scalars: [("loss", 2.5)])
        try file.flush()
        #expect(file.path.hasPrefix(dir + "/events.out.tfevents.1700000000."))
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file.path)))
        var records: [[UInt8]] = []
        while !bytes.isEmpty {
            let length = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            let lengthCRC = bytes[8..<12].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
            #expect(lengthCRC == CRC32C.masked(Array(bytes.prefix(8))))
            let payload = Array(bytes[12..<(12 + length)])
            let payloadCRC = bytes[(12 + length)..<(16 + length)].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) }
            #expect(payloadCRC == CRC32C.masked(payload))
            records.append(payload)
            bytes.removeFirst(16 + length)
        }
        #expect(records.count == 3)  // version, SessionLog.START, the scalar
        // file_version (field 3, a string) in the first; session_log (field 7) at step 7 in the second.
        #expect(records[0].suffix(15) == [0x1A, 13] + Array("brain.Event:2".utf8))
        #expect(records[1].suffix(6) == [0x10, 7, 0x3A, 2, 0x08, 1])
        // The scalar: summary (5) { value (1) { tag (1) "loss", simple_value (2, fixed32) 2.5 } }.
        #expect(records[2].suffix(15) == [0x2A, 13, 0x0A, 11, 0x0A, 4] + Array("loss".utf8) + [0x15, 0x00, 0x00, 0x20, 0x40])
    }

    @Test func prometheusTextHasHelpTypeLabelsAndEscapes() throws {
        var file = PrometheusTextFile()
        file.add("tributary_step", .gauge, help: "Steps done.", value: 12)
        file.add("tributary_worker_rate", .gauge, help: "Rows per\nsecond \\ worker.", value: 1.5, labels: [("worker", "a\"b\\c\nd")])
        file.add("tributary_worker_rate", .gauge, help: "ignored", value: .infinity, labels: [("worker", "w2")])
        file.add("tributary_backups_total", .counter, help: "Backups.", value: .nan)
        #expect(file.text == """
            # HELP tributary_step Steps done.
            # TYPE tributary_step gauge
            tributary_step 12
            # HELP tributary_worker_rate Rows per\\nsecond \\\\ worker.
            # TYPE tributary_worker_rate gauge
            tributary_worker_rate{worker="a\\"b\\\\c\\nd"} 1.5
            tributary_worker_rate{worker="w2"} +Inf
            # HELP tributary_backups_total Backups.
            # TYPE tributary_backups_total counter
            tributary_backups_total NaN

            """)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("prom-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try file.write(to: dir + "/run.prom")
        try file.write(to: dir + "/run.prom")
        #expect(try String(contentsOfFile: dir + "/run.prom", encoding: .utf8) == file.text)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["run.prom"], "a temporary file was left")
    }
}
