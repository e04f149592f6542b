import Foundation
@testable import Inference
import Testing

/// The router's choice, apart from any model: softmax over every expert, the `used` most probable kept, their
/// probabilities renormalized, each expert's tokens in token order.
@Suite struct MixtureOfExpertsTests {
    @Test func keepsTheMostProbableExpertsWithRenormalizedWeights() {
        // two tokens, four experts; token 0 prefers 2 then 0, token 1 prefers 3 then 2
        var scores: [Float] = [1.0, -1.0, 2.0, 0.5,
                               0.0, 0.0, 1.0, 3.0]
        var margin = Float.infinity
        let chosen = scores.withUnsafeMutableBufferPointer {
            ExpertFeedForward.choose(scores: $0.baseAddress!, rows: 2, experts: 4, used: 2, smallestMargin: &margin)
        }
        #expect(chosen[1].isEmpty)
        #expect(chosen[0].map(\.token) == [0] && chosen[3].map(\.token) == [1])
        #expect(chosen[2].map(\.token) == [0, 1])
        // token 0: e^2 / (e^2 + e^1) for expert 2, e^1 / (e^2 + e^1) for expert 0
        let e = Float(M_E)
        #expect(abs(chosen[2][0].weight - e * e / (e * e + e)) < 1e-6)
        #expect(abs(chosen[0][0].weight - e / (e * e + e)) < 1e-6)
        // token 1: experts 3 and 2, e^3 and e^1
        #expect(abs(chosen[3][0].weight - e * e * e / (e * e * e + e)) < 1e-6)
        #expect(abs(chosen[2][1].weight + chosen[3][0].weight - 1) < 1e-6)
        // margins: token 0 kept 0 (1.0) over 3 (0.5): 0.5; token 1 kept 2 (1.0) over 0 and 1 (0.0): 1.0
        #expect(abs(margin - 0.5) < 1e-5)
    }

    @Test func aTieGoesToTheLowerIndex() {
        var scores: [Float] = [0.25, 0.25, 0.25, 0.25]
        var margin = Float.infinity
        let chosen = scores.withUnsafeMutableBufferPointer {
            ExpertFeedForward.choose(scores: $0.baseAddress!, rows: 1, experts: 4, used: 2, smallestMargin: &margin)
        }
        #expect(chosen.map(\.count) == [1, 1, 0, 0])
        #expect(chosen[0][0].weight == 0.5 && margin == 0)
    }
}
