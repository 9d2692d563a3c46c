/// Why a scoring journal or one of its chunk parts was refused: each case carries the path and
/// the values a person needs; ``description`` is the message the CLI prints.
public enum ScoreJournalError: Error, CustomStringConvertible, Equatable, Sendable {
    /// A journal exists and the run did not pass `--resume`.
    case unfinishedRun(journal: String, directory: String)
    /// The file is not a scoring journal (no header line, or another first word).
    case notAJournal(journal: String, directory: String)
    /// The journal was written in another format version.
    case formatVersion(journal: String, found: String, supported: Int)
    /// The journal belongs to another job: `field` differs (`journalValue` nil: missing).
    case anotherJob(journal: String, field: String, journalValue: String?, jobValue: String)
    /// A chunk part's bytes are damaged (`reason` says how).
    case damagedPart(reason: String)

    public var description: String {
        switch self {
        case .unfinishedRun(let journal, let directory):
            return
                "\(journal) exists: an earlier run of this job did not finish; pass --resume to continue it, or remove \(directory) to start over"
        case .notAJournal(let journal, let directory):
            return "\(journal): not a scoring journal; remove \(directory) to start over"
        case .formatVersion(let journal, let found, let supported):
            return "\(journal): journal format version \(found), this program writes \(supported); remove its directory to start over"
        case .anotherJob(let journal, let field, let journalValue, let jobValue):
            return
                "\(journal) belongs to another job: its \(field) is \(journalValue ?? "missing"), this job's is \(jobValue); run without --resume in another journal directory, or remove it to start over"
        case .damagedPart(let reason):
            return "damaged chunk part: \(reason)"
        }
    }
}
