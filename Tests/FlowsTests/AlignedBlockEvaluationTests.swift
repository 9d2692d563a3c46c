import FlowRandom
import Testing
@testable import Flows

/// Evaluation in blocks at absolute row positions: a row's bits depend on the row alone, not on
/// the slice it is evaluated in, nor on the thread count.
struct AlignedBlockEvaluationTests {
    static let dimension = 5
    static let rows = 5003  // odd, not a multiple of the block

    static func model<S: FlowScalar>(_: S.Type) throws -> RealNVP<S> {
        try randomFlow(S.self, dimension: dimension, couplings: 4, hidden: 24, standardize: true, seed: 41, scale: 0.3)
    }

    static func workspaces<S: FlowScalar>(_ model: RealNVP<S>, _ threads: Int) -> [InferenceWorkspace<S>] {
        (0..<threads).map { _ in InferenceWorkspace<S>(configuration: model.configuration, capacity: 1024) }
    }

    /// Evaluates `rows` rows in consecutive slices of `slice` rows (each slice a separate call,
    /// told where it starts), as chunks of a file are.
    static func sliced<S: FlowScalar>(
        _ model: RealNVP<S>, _ x: [S], rows: Int, slice: Int, threads: Int
    ) -> (logProb: [S], latent: [S]) {
        let D = dimension
        let ws = workspaces(model, threads)
        var lp = [S](repeating: .nan, count: rows)
        var z = [S](repeating: .nan, count: rows * D)
        x.withUnsafeBufferPointer { xb in
            lp.withUnsafeMutableBufferPointer { lb in
                z.withUnsafeMutableBufferPointer { zb in
                    var start = 0
                    while start < rows {
                        let n = min(slice, rows - start)
                        model.logProbability(
                            xb.baseAddress! + start * D, rows: n, firstRow: start, into: lb.baseAddress! + start,
                            latent: zb.baseAddress! + start * D, workspaces: ws)
                        start += n
                    }
                }
            }
        }
        return (lp, z)
    }

    static func expectSameBits<S: FlowScalar>(_ a: [S], _ b: [S], _ what: String) {
        func bits(_ v: S) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
        let differing = zip(a, b).enumerated().filter { bits($0.element.0) != bits($0.element.1) }.map(\.offset)
        #expect(differing.isEmpty, "\(what): \(differing.count) values differ, first at \(differing.prefix(5))")
    }

    @Test(arguments: [1000, 4097, 50000, 1023, 1025, 2048])
    func slicesOfAnySizeGiveTheBitsOfOneCall(slice: Int) throws {
        BLASThreads.set(1)
        let model = try Self.model(Float.self)
        let x = randomRows(Float.self, rows: Self.rows, dimension: Self.dimension, seed: 42)
        let whole = Self.sliced(model, x, rows: Self.rows, slice: Self.rows, threads: 1)
        #expect(whole.logProb.allSatisfy { $0.isFinite })
        for threads in [1, 2, 3] {
            let parts = Self.sliced(model, x, rows: Self.rows, slice: slice, threads: threads)
            Self.expectSameBits(parts.logProb, whole.logProb, "log p, slices of \(slice), \(threads) threads")
            Self.expectSameBits(parts.latent, whole.latent, "z, slices of \(slice), \(threads) threads")
        }
    }

    /// Single rows and slices of 7: every slice pads its block; the first and last blocks (the
    /// last one partial in the file) are enough to show it.
    @Test(arguments: [1, 7])
    func tinySlicesGiveTheBitsOfOneCall(slice: Int) throws {
        BLASThreads.set(1)
        let model = try Self.model(Double.self)
        let rows = 2053
        let x = randomRows(Double.self, rows: rows, dimension: Self.dimension, seed: 43)
        let whole = Self.sliced(model, x, rows: rows, slice: rows, threads: 1)
        let parts = Self.sliced(model, x, rows: rows, slice: slice, threads: 2)
        Self.expectSameBits(parts.logProb, whole.logProb, "log p, slices of \(slice)")
        Self.expectSameBits(parts.latent, whole.latent, "z, slices of \(slice)")
    }

    /// A row's bits do not depend on its neighbours' values either (padding rows are zeros, a
    /// file's rows are not): NaN neighbours leave a row's bits alone.
    @Test func neighboursDoNotChangeARow() throws {
        BLASThreads.set(1)
        let model = try Self.model(Float.self)
        let x = randomRows(Float.self, rows: 1024, dimension: Self.dimension, seed: 44)
        var poisoned = x
        for r in stride(from: 0, to: 1024, by: 2) {
            for j in 0..<Self.dimension { poisoned[r * Self.dimension + j] = .nan }
        }
        let clean = Self.sliced(model, x, rows: 1024, slice: 1024, threads: 1)
        let mixed = Self.sliced(model, poisoned, rows: 1024, slice: 1024, threads: 1)
        for r in stride(from: 1, to: 1024, by: 2) {
            #expect(clean.logProb[r].bitPattern == mixed.logProb[r].bitPattern, "row \(r)")
        }
        #expect(mixed.logProb[0].isNaN)
    }

    @Test func betweenIsCalledAfterEachGroupOfBlocks() throws {
        let model = try Self.model(Float.self)
        let x = randomRows(Float.self, rows: 10_000, dimension: Self.dimension, seed: 45)
        var lp = [Float](repeating: 0, count: 10_000)
        var calls = 0
        x.withUnsafeBufferPointer { xb in
            model.logProbability(
                xb.baseAddress!, rows: 10_000, firstRow: 500, into: &lp, latent: nil,
                workspaces: Self.workspaces(model, 1)) { calls += 1 }
        }
        // Rows 500 ..< 10 500 touch blocks 0…10: 11 blocks in groups of 4 → two breaks.
        #expect(calls == 2)
    }
}
