/// Why a `score` run that ran to its end still failed.
enum ScoreError: Error, CustomStringConvertible, Equatable {
    /// Every one of the `rows` rows of `input` was unscorable; `report` lists each row and why.
    case nothingScored(rows: Int, input: String, report: String)

    /// The exit code of these failures: 65 (`EX_DATAERR`, the input data was incorrect).
    static let exitCode: Int32 = 65

    var description: String {
        switch self {
        case .nothingScored(let rows, let input, let report):
            let what = rows == 1 ? "the only row" : "all \(rows) rows"
            return "\(what) of \(input) could not be scored (the output holds only NaN); \(report) says why for each row"
        }
    }
}
