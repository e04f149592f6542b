import GGUF
import Kernels

/// Gemma 2 (`general.architecture = gemma2`): embeddings scaled by √dim; RMSNorm before and after both attention and
/// feed-forward; NeoX rotary embedding; sliding-window attention on every other layer (the even ones, as llama.cpp
/// reads Gemma 2's pattern of two) and global attention on the rest; attention scores soft-capped
/// (`attn_logit_softcapping`, 50: s ↦ 50·tanh(s/50)) and the final logits too (`final_logit_softcapping`, 30);
/// GELU (tanh) gated feed-forward; output tied to the embedding. Norm weights in GGUF files already include Gemma's +1.
public final class Gemma2Model: DecoderModel {
    let eps: Float
    let window: Int
    let weights: Weights
    let attentionScale: Float
    let attentionSoftcap: Float
    let finalSoftcap: Float
    let embeddingScale: Float

    struct Layer {
        let attnNorm, postAttnNorm, ffnNorm, postFfnNorm: UnsafePointer<Float>
        let wq, wk, wv, wo, gate, up, down: WeightMatrix
        let sliding: Bool
    }

    struct Weights {
        let embedding: WeightMatrix
        let layers: [Layer]
        let outputNorm: UnsafePointer<Float>
        let output: WeightMatrix
    }

    public init(file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        let a = "gemma2"
        let header = try GemmaFamily.header(file, architecture: a, trainedContext: 8192, window: 4096, options: options)
        let shape = header.shape
        let dim = shape.embeddingLength, layers = shape.layerCount, heads = shape.headCount, ffn = shape.feedForwardLength
        let headDim = shape.headDim, qDim = heads * headDim, kvDim = shape.kvHeadCount * headDim
        eps = header.eps
        window = header.window
        attentionSoftcap = Float(file.float("\(a).attn_logit_softcapping") ?? 50)
        finalSoftcap = Float(file.float("\(a).final_logit_softcapping") ?? 30)
        guard attentionSoftcap >= 0, finalSoftcap >= 0 else {
            throw .badMetadata(key: "\(a).attn_logit_softcapping", expected: "caps of 0 (none) or more")
        }
        let theta = Float(file.float("\(a).rope.freq_base") ?? 10_000)

        var ls: [Layer] = []
        for i in 0..<layers {
            let p = "blk.\(i)."
            ls.append(Layer(
                attnNorm: try file.vector(p + "attn_norm.weight", count: dim),
                postAttnNorm: try file.vector(p + "post_attention_norm.weight", count: dim),
                ffnNorm: try file.vector(p + "ffn_norm.weight", count: dim),
                postFfnNorm: try file.vector(p + "post_ffw_norm.weight", count: dim),
                wq: try file.weight(p + "attn_q.weight", columns: dim, rows: qDim),
                wk: try file.weight(p + "attn_k.weight", columns: dim, rows: kvDim),
                wv: try file.weight(p + "attn_v.weight", columns: dim, rows: kvDim),
                wo: try file.weight(p + "attn_output.weight", columns: qDim, rows: dim),
                gate: try file.weight(p + "ffn_gate.weight", columns: dim, rows: ffn),
                up: try file.weight(p + "ffn_up.weight", columns: dim, rows: ffn),
                down: try file.weight(p + "ffn_down.weight", columns: ffn, rows: dim),
                sliding: i % 2 == 0))
        }
        let (embedding, output) = try file.embeddingAndOutput(dim: dim, vocab: shape.vocabularySize)
        weights = Weights(embedding: embedding, layers: ls, outputNorm: try file.vector("output_norm.weight", count: dim), output: output)

        let core = try DecoderRuntime(file: file, shape: shape, options: options, ropeDims: headDim, theta: theta, architecture: a)
        embeddingScale = Float(dim).squareRoot()
        // llama.cpp's rule: the 46-layer model (27B) scales by the width per head, the others by the head size
        attentionScale = 1 / Float(layers == 46 ? dim / heads : headDim).squareRoot()
        super.init(core: core)
    }

    override func step(_ entries: [BatchEntry], logitsOut: UnsafeMutablePointer<Float>) {
        let s = shape, r = core.run, T = entries.count
        let dim = s.embeddingLength, hd = s.headDim, ffn = s.feedForwardLength
        let qDim = s.headCount * hd, kvDim = s.kvHeadCount * hd

        for (t, e) in entries.enumerated() {
            weights.embedding.dequantizeRow(Int(e.token), into: r.x + t * dim)
            Ops.scale(r.x + t * dim, by: embeddingScale, count: dim)
            Ops.ropeTable(position: e.position, thetaScale: r.thetaScale, pairs: hd / 2, into: r.rope + t * hd)
        }

        for (l, layer) in weights.layers.enumerated() {
            Ops.rmsNorm(r.x, weight: layer.attnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            core.project([layer.wq, layer.wk, layer.wv], input: r.xn, rows: T, columns: dim, into: [r.q, r.k, r.v])
            for t in 0..<T {
                Ops.ropeNeox(r.q + t * qDim, heads: s.headCount, headDim: hd, rotatedDims: hd, table: r.rope + t * hd)
                Ops.ropeNeox(r.k + t * kvDim, heads: s.kvHeadCount, headDim: hd, rotatedDims: hd, table: r.rope + t * hd)
            }
            core.storeKV(entries, layer: l, k: r.k, v: r.v)
            core.attend(entries, layer: l, q: r.q, scale: attentionScale, window: layer.sliding ? window : nil,
                        softcap: attentionSoftcap, into: r.att)
            core.project([layer.wo], input: r.att, rows: T, columns: qDim, into: [r.tmp])
            Ops.rmsNorm(r.tmp, weight: layer.postAttnNorm, eps: eps, n: dim, rows: T, into: r.tmp)
            Ops.add(r.x, r.tmp, count: T * dim)

            Ops.rmsNorm(r.x, weight: layer.ffnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            core.project([layer.gate, layer.up], input: r.xn, rows: T, columns: dim, into: [r.gate, r.up])
            core.pointwise(rows: T, width: ffn) { Ops.geluMul(r.gate + $0, r.up + $0, count: $1) }
            core.project([layer.down], input: r.gate, rows: T, columns: ffn, into: [r.tmp])
            Ops.rmsNorm(r.tmp, weight: layer.postFfnNorm, eps: eps, n: dim, rows: T, into: r.tmp)
            Ops.add(r.x, r.tmp, count: T * dim)
        }
        core.logits(entries, norm: weights.outputNorm, eps: eps, output: weights.output, into: logitsOut)
        guard finalSoftcap > 0, !core.emitsHidden else { return }
        let rows = entries.reduce(0) { $0 + ($1.wantsLogits ? 1 : 0) }
        let cap = finalSoftcap
        for i in 0..<(rows * s.vocabularySize) { logitsOut[i] = cap * tanhf(logitsOut[i] / cap) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
