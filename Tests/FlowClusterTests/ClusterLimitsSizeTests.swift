import FlowWire
import Testing
@testable import FlowCluster

/// `ClusterLimits` takes message sizes from the codec (`WireMessage.encodedByteCount`): the
/// bound is exactly the largest legitimate message plus the transport's overhead.
struct ClusterLimitsSizeTests {
    static func zeros(_ n: Int, _ dtype: WireDType) -> WireVector {
        dtype == .float32 ? .float32(.init(repeating: 0, count: n)) : .float64(.init(repeating: 0, count: n))
    }

    @Test func aTrainingBoundIsTheLargerResultPlusTheTransport() {
        for (P, dtype) in [(100_000, WireDType.float32), (50_000, .float64)] {
            let gradient = WireMessage.gradientResult(.init(
                jobID: 1, step: 1, version: 1, node: 1, rowCount: 1, lossSum: 0, gradient: Self.zeros(P, dtype))).encodedByteCount
            let local = WireMessage.localResult(.init(
                jobID: 1, round: 1, baseVersion: 1, rowCount: 1, lossSum: 0, parameters: Self.zeros(P, dtype))).encodedByteCount
            #expect(ClusterLimits.largestWorkerMessage(parameterCount: P, dtype: dtype) == Int64(max(gradient, local)) + ClusterLimits.transportOverhead)
        }
    }

    @Test func aScoringBoundIsAFullChunksResultPlusTheTransport() {
        for (rows, D, dtype, latent) in [(4096, 8, WireDType.float32, true), (4096, 8, .float64, false), (10_000, 3, .float64, true)] {
            let result = WireMessage.scoreResult(.init(
                jobID: 1, chunk: 1, firstRow: 0, rowCount: UInt32(rows), statuses: Array(repeating: .ok, count: rows),
                logProbs: Self.zeros(rows, dtype), latent: latent ? .init(dimension: UInt32(D), values: Self.zeros(rows * D, dtype)) : nil))
            #expect(ClusterLimits.largestScoringWorkerMessage(chunkRows: rows, dimension: D, dtype: dtype, wantLatent: latent)
                == Int64(result.encodedByteCount) + ClusterLimits.transportOverhead)
        }
    }

    @Test func aSmallJobsBoundStillAdmitsTheLargestControlMessage() {
        let long = String(repeating: "x", count: WireLimits.default.maxStringBytes)
        let hello = WireMessage.hello(.init(
            instance: 1, processID: 1, name: long, host: long,
            capabilities: .init(dtypes: .all, blasThreads: 1, blasKernel: long, maxMicroBatchRows: 1)))
        #expect(Int64(hello.encodedByteCount) <= ClusterLimits.largestWorkerMessage(parameterCount: 1, dtype: .float32))
        #expect(Int64(hello.encodedByteCount) <= ClusterLimits.largestScoringWorkerMessage(chunkRows: 1, dimension: 2, dtype: .float32, wantLatent: false))
    }
}
