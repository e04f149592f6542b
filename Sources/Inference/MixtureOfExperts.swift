import GGUF
import Kernels

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mixture-of-experts feed-forward (Qwen 3 MoE): a router scores every expert for each token, a softmax over all
/// of them gives probabilities, the `used` most probable experts are kept with their probabilities renormalized to
/// sum to one, and the token's output is the weighted sum of those experts' SwiGLU feed-forwards.
///
/// Tokens of a pass are grouped by expert, so each chosen expert's three matrices are read once per pass (its rows
/// gathered when not every token chose it) and the experts no token chose are not read at all: a decode step of
/// Qwen 3 30B-A3B reads 8 of 128 experts per layer.
struct ExpertFeedForward {
    let router: WeightMatrix             // (experts, dim)
    let gate, up, down: [WeightMatrix]   // per expert: (ffn, dim), (ffn, dim), (dim, ffn)
    let used: Int

    var count: Int { router.rows }

    /// Loads layer `prefix`'s router (`ffn_gate_inp`) and experts (`ffn_gate_exps`, `ffn_up_exps`, `ffn_down_exps`).
    init(file: GGUFFile, prefix p: String, dim: Int, ffn: Int, experts: Int, used: Int) throws(InferenceError) {
        router = try file.weight(p + "ffn_gate_inp.weight", columns: dim, rows: experts)
        gate = try file.expertWeights(p + "ffn_gate_exps.weight", columns: dim, rows: ffn, count: experts)
        up = try file.expertWeights(p + "ffn_up_exps.weight", columns: dim, rows: ffn, count: experts)
        down = try file.expertWeights(p + "ffn_down_exps.weight", columns: ffn, rows: dim, count: experts)
        self.used = used
    }

    /// The chosen experts of each of `rows` tokens from the router's scores (`scores`, rows × experts, turned into
    /// probabilities in place): per expert, the tokens that chose it (in token order) and their weights.
    /// `smallestMargin`: lowered to the smallest log-probability margin between a token's last kept expert and the
    /// best one dropped.
    static func choose(scores: UnsafeMutablePointer<Float>, rows: Int, experts n: Int, used k: Int,
                       smallestMargin: inout Float) -> [[(token: Int, weight: Float)]] {
        var chosen = [[(token: Int, weight: Float)]](repeating: [], count: n)
        var picks = [Int](repeating: 0, count: k)
        for t in 0..<rows {
            let s = scores + t * n
            var m = -Float.infinity
            for e in 0..<n { m = max(m, s[e]) }
            var sum: Float = 0
            for e in 0..<n { s[e] = expf(s[e] - m); sum += s[e] }
            for e in 0..<n { s[e] /= sum }
            // the k most probable, the lower index first on a tie; k is small (8 of 128 in the published models)
            var total: Float = 0
            for j in 0..<k {
                var best = -1
                for e in 0..<n where !picks[0..<j].contains(e) && (best < 0 || s[e] > s[best]) { best = e }
                picks[j] = best
                total += s[best]
            }
            // how near the last kept expert came to the best dropped one (a tie that rounding may decide)
            var dropped: Float = 0
            for e in 0..<n where !picks.contains(e) { dropped = max(dropped, s[e]) }
            if dropped > 0 { smallestMargin = min(smallestMargin, logf(s[picks[k - 1]]) - logf(dropped)) }
            total = max(total, 6.103515625e-5)   // as llama.cpp: never a division by zero
            for j in 0..<k { chosen[picks[j]].append((t, s[picks[j]] / total)) }
        }
        return chosen
    }

    /// x[t] += Σ over token t's chosen experts of weight · down(silu(gate·xn[t]) ⊙ up·xn[t]), for `rows` tokens.
    func add(_ xn: UnsafeMutablePointer<Float>, rows: Int, into x: UnsafeMutablePointer<Float>, core: DecoderRuntime, scratch: ExpertScratch) {
        let dim = router.columns, ffn = gate[0].rows, r = core.run
        core.multiply([router], input: xn, rows: rows, columns: dim, into: [scratch.scores])
        let chosen = Self.choose(scores: scratch.scores, rows: rows, experts: count, used: used, smallestMargin: &scratch.smallestMargin)
        for e in 0..<count where !chosen[e].isEmpty {
            let members = chosen[e], m = members.count
            let input: UnsafeMutablePointer<Float>
            if m == rows {
                input = xn
            } else {
                for (j, member) in members.enumerated() { (scratch.gathered + j * dim).update(from: xn + member.token * dim, count: dim) }
                input = scratch.gathered
            }
            core.multiply([gate[e], up[e]], input: input, rows: m, columns: dim, into: [r.gate, r.up])
            core.pointwise(rows: m, width: ffn) { Ops.siluMul(r.gate + $0, r.up + $0, count: $1) }
            core.multiply([down[e]], input: r.gate, rows: m, columns: ffn, into: [scratch.output])
            for (j, member) in members.enumerated() {
                let dst = x + member.token * dim, src = scratch.output + j * dim, w = member.weight
                for i in 0..<dim { dst[i] += w * src[i] }
            }
        }
    }
}

/// The buffers of the expert feed-forward, shared by every layer: router scores, gathered inputs, one expert's outputs.
final class ExpertScratch: @unchecked Sendable {
    let scores, gathered, output: UnsafeMutablePointer<Float>
    /// The smallest router margin (log-probability of a token's last kept expert minus the best dropped one's) of the
    /// last pass, over its tokens and layers: below the rounding differences between two implementations, which
    /// experts run is a coin toss (what a reference comparison needs to know).
    var smallestMargin: Float = .infinity

    init(batch: Int, dim: Int, experts: Int) {
        scores = .allocate(capacity: batch * experts)
        gathered = .allocate(capacity: batch * dim)
        output = .allocate(capacity: batch * dim)
    }
    deinit { scores.deallocate(); gathered.deallocate(); output.deallocate() }
}
