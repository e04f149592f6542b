#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Perplexity by llama.cpp's method: the token stream is cut into chunks of `context` tokens, each chunk is
/// evaluated from an empty cache, and only its second half is scored (logits at i predict token i + 1 for
/// i in context/2 ..< context − 1). With `bos`, each chunk's first token is replaced by it.
public struct PerplexityResult: Sendable {
    public var perplexity: Double
    /// Standard error of the estimate, as llama.cpp prints after `±`.
    public var uncertainty: Double
    public var chunks: Int
    public var scoredTokens: Int
}

public enum PerplexityEvaluator {
    public static func evaluate(_ model: any LanguageModel, tokens: [Int32], context: Int, bos: Int32?,
                                progress: (Int, Int, Double) -> Void = { _, _, _ in }) throws -> PerplexityResult {
        let chunks = tokens.count / context
        guard chunks > 0, context >= 4 else { throw InferenceError.contextOverflow(needed: context, limit: tokens.count) }
        let vocab = model.shape.vocabularySize
        var nll = 0.0, nll2 = 0.0, count = 0
        for c in 0..<chunks {
            var chunk = Array(tokens[(c * context)..<((c + 1) * context)])
            if let bos { chunk[0] = bos }
            let logits = try model.forward(chunk, startingAt: 0, logits: .all)
            for i in (context / 2)..<(context - 1) {
                let row = UnsafeBufferPointer(rebasing: logits[(i * vocab)..<((i + 1) * vocab)])
                let lp = Double(Sampler.logProbabilities(row, chosen: chunk[i + 1], top: 0).0)
                nll -= lp; nll2 += lp * lp; count += 1
            }
            progress(c + 1, chunks, exp(nll / Double(count)))
        }
        let mean = nll / Double(count)
        let variance = max(0, nll2 / Double(count) - mean * mean)
        let ppl = exp(mean)
        return PerplexityResult(perplexity: ppl, uncertainty: ppl * (variance / Double(max(1, count - 1))).squareRoot(),
                                chunks: chunks, scoredTokens: count)
    }
}
