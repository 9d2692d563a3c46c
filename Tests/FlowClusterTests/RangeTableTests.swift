import Flows
import Testing
@testable import FlowWire

/// `FlowConfiguration.validate()` and the wire's `JobSpec` decoder check the same sizes: a job
/// spec the codec accepts builds a configuration `validate()` accepts, and the other way round.
/// `FlowWire` depends on nothing, so the two tables are tied here rather than shared in code.
struct RangeTableTests {
    static func same(_ wire: ClosedRange<UInt32>, _ flows: ClosedRange<Int>) -> Bool {
        Int(wire.lowerBound) == flows.lowerBound && Int(wire.upperBound) == flows.upperBound
    }

    @Test func jobSpecRangesAreTheConfigurationsRanges() {
        typealias Wire = WireMessage.JobSpec.CheckedRanges
        typealias Flow = FlowConfiguration.Ranges
        #expect(Self.same(Wire.dimension, Flow.dimension))
        #expect(Self.same(Wire.couplings, Flow.couplings))
        #expect(Self.same(Wire.hidden, Flow.hidden))
        #expect(Self.same(Wire.depth, Flow.depth))
    }

    @Test func theBoundsAreAcceptedAndOneBeyondIsRefused() throws {
        let Flow = FlowConfiguration.Ranges.self
        for (hidden, depth, ok) in [
            (Flow.hidden.upperBound, 1, true), (1, Flow.depth.upperBound, true),
            (Flow.hidden.upperBound + 1, 1, false), (1, Flow.depth.upperBound + 1, false),
        ] {
            let configuration = FlowConfiguration(dimension: 2, couplings: 1, hidden: hidden, depth: depth)
            #expect(((try? configuration.validate()) != nil) == ok, "hidden \(hidden), depth \(depth)")
        }
    }
}
