import Foundation
import Testing

@testable import Flows

/// The schedule's formula (docs/model.md) against values computed by hand, and its cosine
/// against libm's.
struct LearningRateScheduleTests {
    /// lr 0.1, 4 warm-up steps, 12 steps in all, floor 0.01: the rates of steps 0…12 worked out
    /// by hand from the formula (cos(π/4) = 0.70710678…, cos(7π/8) = −0.92387953…).
    @Test func cosineWithWarmupMatchesHandComputedRates() {
        let s = LearningRateSchedule(kind: .cosine, baseRate: 0.1, warmupSteps: 4, totalSteps: 12, minimumRate: 0.01)
        let expected: [(Int, Double)] = [
            (0, 0.025), (1, 0.05), (2, 0.075), (3, 0.1),  // warm-up: lr·(t+1)/W
            (4, 0.1),  // cosine starts at lr
            (6, 0.01 + 0.09 * (1 + 0.70710678118654752) / 2),  // progress 1/4
            (8, 0.055),  // progress 1/2: halfway between lr and the floor
            (10, 0.01 + 0.09 * (1 - 0.70710678118654752) / 2),  // progress 3/4
            (11, 0.01 + 0.09 * (1 - 0.92387953251128674) / 2),  // the last step: progress 7/8
            (12, 0.01), (50, 0.01),  // beyond the run: the floor
        ]
        for (t, rate) in expected {
            #expect(abs(s.rate(atStep: t) - rate) <= 1e-16, "step \(t): \(s.rate(atStep: t)) vs \(rate)")
        }
    }

    @Test func constantWithWarmupClimbsThenStays() {
        let s = LearningRateSchedule(kind: .constant, baseRate: 0.003, warmupSteps: 3, totalSteps: 10)
        #expect(s.rate(atStep: 0) == 0.003 * (1.0 / 3))
        #expect(s.rate(atStep: 1) == 0.003 * (2.0 / 3))
        #expect(s.rate(atStep: 2) == 0.003)
        #expect((3..<40).allSatisfy { s.rate(atStep: $0) == 0.003 })
        #expect(!s.dependsOnTotalSteps && !s.isConstant)
        #expect(LearningRateSchedule(baseRate: 0.5).isConstant)
        #expect(LearningRateSchedule(baseRate: 0.5).rate(atStep: 123) == 0.5)
    }

    @Test func cosineWithoutWarmupStartsAtTheBaseRateAndFallsToZero() {
        let s = LearningRateSchedule(kind: .cosine, baseRate: 1, totalSteps: 4)
        #expect(s.rate(atStep: 0) == 1)
        #expect(abs(s.rate(atStep: 1) - (1 + 0.70710678118654752) / 2) <= 1e-16)
        #expect(abs(s.rate(atStep: 2) - 0.5) <= 1e-16)
        #expect(s.rate(atStep: 4) == 0)
        // Monotone non-increasing over the run.
        let long = LearningRateSchedule(kind: .cosine, baseRate: 1e-3, warmupSteps: 10, totalSteps: 1000, minimumRate: 1e-5)
        #expect((10..<1000).allSatisfy { long.rate(atStep: $0 + 1) <= long.rate(atStep: $0) })
    }

    /// The fixed polynomial is within a few ulps of libm's cosine over the whole range.
    @Test func cosineAgreesWithLibm() {
        var worst = 0.0
        for i in 0...10_000 {
            let x = Double(i) / 10_000
            worst = max(worst, abs(LearningRateSchedule.cosineOfPiTimes(x) - Foundation.cos(Double.pi * x)))
        }
        #expect(worst <= 1e-15, "largest difference \(worst)")
        #expect(LearningRateSchedule.cosineOfPiTimes(0) == 1)
        #expect(LearningRateSchedule.cosineOfPiTimes(1) == -1)
    }
}

/// AdamW (decoupled weight decay, `torch.optim.AdamW`) and per-step rates.
struct AdamWTests {
    /// One update worked out by hand: θ = 1, g = 0.5, lr = 0.1, λ = 0.01.
    /// θ·(1 − 0.001) = 0.999; m = 0.05, v = 0.00025; m̂ = 0.5, √v̂ = 0.5;
    /// θ = 0.999 − 0.1·0.5/(0.5 + 1e-8) = 0.999 − 0.099999998 = 0.899000002.
    @Test func oneUpdateByHand() {
        var adam = AdamOptimizer<Double>(parameterCount: 1, learningRate: 0.1, weightDecay: 0.01)
        var p = [1.0]
        adam.update(parameters: &p, gradient: [0.5])
        #expect(abs(p[0] - 0.899000002) < 1e-12, "\(p[0])")
        // Without decay the same step gives 0.900000002.
        var plain = AdamOptimizer<Double>(parameterCount: 1, learningRate: 0.1)
        var q = [1.0]
        plain.update(parameters: &q, gradient: [0.5])
        #expect(abs(q[0] - 0.900000002) < 1e-12, "\(q[0])")
    }

    /// Several updates with scheduled rates and decay against a `Double` reference written the
    /// way PyTorch's single-tensor AdamW orders its operations: the same bits.
    @Test func scheduledAdamWMatchesTheReferenceUpdate() {
        let schedule = LearningRateSchedule(kind: .cosine, baseRate: 0.05, warmupSteps: 2, totalSteps: 6, minimumRate: 0.001)
        let wd = 0.1
        var adam = AdamOptimizer<Double>(parameterCount: 3, learningRate: schedule.baseRate, weightDecay: wd)
        var parameters = [1.0, -2.0, 0.5]
        var m = [0.0, 0, 0], v = [0.0, 0, 0], reference = parameters
        let gradients: [[Double]] = [
            [0.1, -0.3, 2.0], [0.2, 0.1, -1.0], [-0.5, 0.0, 0.3], [0.7, -0.2, 0.1], [0.0, 0.4, -0.6], [0.3, 0.3, 0.3],
        ]
        for (t, g) in gradients.enumerated() {
            let lr = schedule.rate(atStep: t)
            adam.update(parameters: &parameters, gradient: g, learningRate: lr)
            var b1t = 1.0, b2t = 1.0
            for _ in 0...t {
                b1t *= 0.9
                b2t *= 0.999
            }
            for i in 0..<3 {
                reference[i] *= 1 - lr * wd  // param.mul_(1 - lr * weight_decay)
                m[i] = 0.9 * m[i] + (1 - 0.9) * g[i]  // exp_avg.lerp_(grad, 1 - beta1)
                v[i] = 0.999 * v[i] + (1 - 0.999) * g[i] * g[i]
                let stepSize = lr / (1 - b1t)
                let denom = v[i].squareRoot() / (1 - b2t).squareRoot() + 1e-8
                reference[i] -= stepSize * m[i] / denom
            }
        }
        for i in 0..<3 {
            #expect(
                abs(parameters[i] - reference[i]) <= 1e-15 * max(1, abs(reference[i])),
                "parameter \(i): \(parameters[i]) vs \(reference[i])")
        }
        #expect(adam.learningRate == 0.05, "the per-step rate leaves the base rate alone")
        #expect(adam.step == 6)
    }

    /// Decay pulls parameters towards zero when the gradient is zero: after the first step (whose
    /// Adam part is 0 for g = 0), θ = θ₀·(1 − lr·λ) exactly.
    @Test func decayAloneShrinksTheParameters() {
        var adam = AdamOptimizer<Float>(parameterCount: 2, learningRate: 0.01, weightDecay: 0.5)
        var p: [Float] = [2, -4]
        adam.update(parameters: &p, gradient: [0, 0])
        let factor = Float(1 - 0.01 * 0.5)
        #expect(p == [2 * factor, -4 * factor])
    }
}
