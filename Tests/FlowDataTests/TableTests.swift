import Testing
import FlowData

struct TableTests {
    let table = Table(rows: 3, columns: 2, values: [1, 2, 3, 4, 5, 6], columnNames: ["a", "b"])

    @Test func subscriptAndRows() {
        #expect(table[0, 0] == 1)
        #expect(table[2, 1] == 6)
        #expect(Array(table.row(1)) == [3, 4])
        var copy = table
        copy[1, 0] = -3
        #expect(copy.values == [1, 2, -3, 4, 5, 6])
        #expect(table.values == [1, 2, 3, 4, 5, 6])
    }

    @Test func gatherKeepsOrderRepeatsAndNames() {
        let picked = table.gather(rows: [2, 0, 2])
        #expect(picked.rows == 3)
        #expect(picked.values == [5, 6, 1, 2, 5, 6])
        #expect(picked.columnNames == ["a", "b"])
        #expect(table.gather(rows: []).rows == 0)
    }

    @Test func appendRowsAndTables() {
        var t = Table(columns: 2)
        t.appendRow([1, 2])
        t.append(Table(rows: 1, columns: 2, values: [3, 4]))
        #expect(t == Table(rows: 2, columns: 2, values: [1, 2, 3, 4]))
    }

    @Test func equalityUsesIEEESemantics() {
        // Separately built tables holding NaN differ (as arrays do; a copy shares storage and
        // compares equal without looking at the elements).
        #expect(Table(rows: 1, columns: 1, values: [.nan]) != Table(rows: 1, columns: 1, values: [.nan]))
        #expect(Table(rows: 1, columns: 1, values: [0.0]) == Table(rows: 1, columns: 1, values: [-0.0]))
        #expect(table != Table(rows: 3, columns: 2, values: [1, 2, 3, 4, 5, 6]))  // names differ
    }
}
