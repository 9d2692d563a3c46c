import Testing
@testable import Flows

struct BLASSelfTestTests {
    @Test func theLinkedBLASPassesItsSelfTest() {
        #expect(BLASSelfTest.run() == nil)
    }

    @Test func gemmComputesAKnownProduct() {
        var rng = 0.0
        let a: [Double] = (0..<6).map { _ in rng += 1; return rng }
        let b: [Double] = [1, 0, 0, 1, 1, 1]
        var c = [Double](repeating: 0, count: 4)
        Double.gemm(transposeA: false, transposeB: false, m: 2, n: 2, k: 3, alpha: 1, a: a, lda: 3, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        // [1 2 3; 4 5 6] · [1 0; 0 1; 1 1] = [4 5; 10 11]
        #expect(c == [4, 5, 10, 11])
    }
}
