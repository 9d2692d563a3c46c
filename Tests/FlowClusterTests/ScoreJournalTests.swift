import FlowWire
import Foundation
import Testing
@testable import FlowCluster

/// The scoring journal: records only durable chunks, refuses another job's journal, survives a
/// torn last record and damaged parts.
struct ScoreJournalTests {
    static let identity = ScoreJournal.Identity(fields: [("model", "abc"), ("input", "/data/x.npy"), ("chunkRows", "10")])

    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("journal-test-\(UInt64.random(in: 0...UInt64.max))").path
    }

    static func part(_ k: Int, rows: Int = 3, reasons: [Int: String] = [:]) -> ScorePart {
        var statuses = [WireRowStatus](repeating: .ok, count: rows)
        var lp = (0..<rows).map { Float(-$0 - k) }
        for r in reasons.keys { statuses[r] = .malformedInput; lp[r] = .nan }
        return ScorePart(
            result: .init(jobID: 1, chunk: UInt64(k), firstRow: UInt64(k * 10), rowCount: UInt32(rows), statuses: statuses,
                          logProbs: .float32(lp), latent: nil),
            reasons: reasons)
    }

    @Test func recordedChunksSurviveAReopenWithTheirParts() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let journal = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
            try journal.record(Self.part(0))
            try journal.record(Self.part(2, reasons: [1: "x.csv line 4: \"a, b\" is not a number"]))
        }
        let reopened = try ScoreJournal(directory: dir, identity: Self.identity, resume: true)
        #expect(reopened.done == [0, 2] && reopened.ignoredRecords == 0)
        #expect(try reopened.part(2) == Self.part(2, reasons: [1: "x.csv line 4: \"a, b\" is not a number"]))
        let text = try String(contentsOfFile: ScoreJournal.journalPath(dir), encoding: .utf8)
        #expect(text.hasPrefix("tributary-score-journal 2\tmodel=abc\tinput=/data/x.npy\tchunkRows=10\n"))
        #expect(text.split(separator: "\n").count == 3)
    }

    @Test func anExistingJournalIsNotOverwrittenWithoutResume() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
        #expect(throws: ScoreJournalError.unfinishedRun(journal: ScoreJournal.journalPath(dir), directory: dir)) {
            try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
        }
    }

    /// A journal of an earlier build (format 1: its parts hold protocol-1 messages) is refused
    /// by its version, not taken for damaged parts and silently recomputed.
    @Test func anEarlierFormatIsRefusedByItsVersion() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
        let path = ScoreJournal.journalPath(dir)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try text.replacingOccurrences(of: "tributary-score-journal 2", with: "tributary-score-journal 1")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let refusal = ScoreJournalError.formatVersion(journal: path, found: "1", supported: 2)
        #expect(throws: refusal) { try ScoreJournal(directory: dir, identity: Self.identity, resume: true) }
    }

    @Test func anotherJobsJournalIsRefusedNamingTheField() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
        let other = ScoreJournal.Identity(fields: [("model", "abc"), ("input", "/data/x.npy"), ("chunkRows", "20")])
        let refusal = ScoreJournalError.anotherJob(
            journal: ScoreJournal.journalPath(dir), field: "chunkRows", journalValue: "10", jobValue: "20")
        #expect(throws: refusal) { try ScoreJournal(directory: dir, identity: other, resume: true) }
        #expect(refusal.description.contains("chunkRows is 10, this job's is 20"), "\(refusal)")
    }

    @Test func aTornLastRecordIsIgnoredAndCutOffBeforeTheNextRecord() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let journal = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
            try journal.record(Self.part(0))
            try journal.record(Self.part(1))
        }
        // Cut the last record in the middle, as a crash during the write would.
        let path = ScoreJournal.journalPath(dir)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes.removeLast(9)
        try bytes.write(to: URL(fileURLWithPath: path))
        do {
            let journal = try ScoreJournal(directory: dir, identity: Self.identity, resume: true)
            #expect(journal.done == [0] && journal.ignoredRecords == 1)
            try journal.record(Self.part(1))
        }
        let journal = try ScoreJournal(directory: dir, identity: Self.identity, resume: true)
        #expect(journal.done == [0, 1] && journal.ignoredRecords == 0)
        // A record with a wrong check is torn too.
        let text = try String(contentsOfFile: path, encoding: .utf8)
        try (text + "done 5 3 0123456789abcdef 0000000000000000\n").write(toFile: path, atomically: false, encoding: .utf8)
        #expect(try ScoreJournal(directory: dir, identity: Self.identity, resume: true).done == [0, 1])
    }

    @Test func aRecordWhosePartIsMissingOrDamagedIsComputedAgain() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let journal = try ScoreJournal(directory: dir, identity: Self.identity, resume: false)
        try journal.record(Self.part(0))
        try journal.record(Self.part(1))
        try journal.record(Self.part(2))
        try FileManager.default.removeItem(atPath: journal.partPath(1))
        var damaged = try Data(contentsOf: URL(fileURLWithPath: journal.partPath(2)))
        damaged[damaged.count - 1] ^= 0xFF
        try damaged.write(to: URL(fileURLWithPath: journal.partPath(2)))
        let reopened = try ScoreJournal(directory: dir, identity: Self.identity, resume: true)
        #expect(reopened.done == [0] && reopened.ignoredRecords == 2)
    }

    @Test func partBytesRoundTripAndRejectTruncation() throws {
        let part = Self.part(4, reasons: [0: "bad", 2: "worse"])
        let bytes = part.encoded()
        #expect(try ScorePart.decode(bytes) == part)
        #expect(throws: ScoreJournalError.damagedPart(reason: "truncated")) { try ScorePart.decode(Array(bytes.dropLast())) }
        #expect(throws: ScoreJournalError.damagedPart(reason: "trailing bytes")) { try ScorePart.decode(bytes + [0]) }
    }
}
