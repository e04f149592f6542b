import GGUF
import Kernels

/// Gemma 3 (`general.architecture = gemma3`): embeddings scaled by √dim; RMSNorm before and after both attention and
/// feed-forward; per-head RMSNorm of queries and keys; NeoX rotary embedding with base 10,000 on sliding-window
/// layers and `rope.freq_base` on the global ones (every sixth layer); sliding-window attention elsewhere;
/// GELU (tanh) gated feed-forward; output tied to the embedding. Norm weights in GGUF files already include
/// Gemma's +1, so they are used as stored. Linear rotary scaling (`rope.scaling.factor`, Gemma 3 4B and up) applies
/// to the global layers only, as in llama.cpp.
public final class Gemma3Model: DecoderModel {
    let eps: Float
    let window: Int
    let weights: Weights
    /// Rotary tables of the sliding-window layers (the runtime's own are the global layers').
    let localRope: UnsafeMutablePointer<Float>
    let localThetaScale: Float
    /// Linear rotary scaling of the global layers (`rope.scaling.factor`, 8 in Gemma 3 4B and up): each pair's
    /// angle divided by the factor; nil without scaling.
    let globalRopeFactors: UnsafeMutablePointer<Float>?
    let embeddingScale: Float
    let attentionScale: Float

    struct Layer {
        let attnNorm, qNorm, kNorm, postAttnNorm, ffnNorm, postFfnNorm: UnsafePointer<Float>
        let wq, wk, wv, wo, gate, up, down: WeightMatrix
        /// Whether the layer attends to the whole context (otherwise to the last `window` positions).
        let global: Bool
    }

    struct Weights {
        let embedding: WeightMatrix          // (vocab, dim)
        let layers: [Layer]
        let outputNorm: UnsafePointer<Float> // (dim)
        let output: WeightMatrix             // (vocab, dim), the embedding when tied
    }

    /// One global layer in every `swaPattern` (the last of each group), as Gemma 3 is trained.
    static let swaPattern = 6

    public init(file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        let a = "gemma3"
        let header = try GemmaFamily.header(file, architecture: a, trainedContext: 32768, window: 512, options: options)
        let shape = header.shape
        let dim = shape.embeddingLength, layers = shape.layerCount, heads = shape.headCount, ffn = shape.feedForwardLength
        let headDim = shape.headDim, qDim = heads * headDim, kvDim = shape.kvHeadCount * headDim
        eps = header.eps
        window = header.window
        let globalTheta = Float(file.float("\(a).rope.freq_base") ?? 1_000_000)
        let localTheta = Float(file.float("\(a).rope.freq_base_swa") ?? 10_000)

        var ls: [Layer] = []
        for i in 0..<layers {
            let p = "blk.\(i)."
            ls.append(Layer(
                attnNorm: try file.vector(p + "attn_norm.weight", count: dim),
                qNorm: try file.vector(p + "attn_q_norm.weight", count: headDim),
                kNorm: try file.vector(p + "attn_k_norm.weight", count: headDim),
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
                global: i % Self.swaPattern == Self.swaPattern - 1))
        }
        let (embedding, output) = try file.embeddingAndOutput(dim: dim, vocab: shape.vocabularySize)
        weights = Weights(embedding: embedding, layers: ls, outputNorm: try file.vector("output_norm.weight", count: dim), output: output)

        let core = try DecoderRuntime(file: file, shape: shape, options: options, ropeDims: headDim, theta: globalTheta, architecture: a)
        let scaling = file.string("\(a).rope.scaling.type") ?? "none"
        let ropeScale = file.float("\(a).rope.scaling.factor") ?? file.float("\(a).rope.scale_linear") ?? 1
        guard scaling == "linear" || (scaling == "none" && ropeScale == 1) else {
            throw .badMetadata(key: "\(a).rope.scaling.type", expected: "none or linear (got \(scaling))")
        }
        guard ropeScale > 0, ropeScale.isFinite else { throw .badMetadata(key: "\(a).rope.scaling.factor", expected: "a positive factor") }
        localRope = .allocate(capacity: core.batchSize * headDim)
        localThetaScale = powf(localTheta, -2.0 / Float(headDim))
        embeddingScale = Float(dim).squareRoot()
        // llama.cpp's rule: the 62-layer model (27B) scales by the width per head, the others by the head size
        attentionScale = 1 / Float(layers == 62 ? dim / heads : headDim).squareRoot()
        if ropeScale == 1 {
            globalRopeFactors = nil
        } else {
            let factors = UnsafeMutablePointer<Float>.allocate(capacity: headDim / 2)
            factors.initialize(repeating: Float(ropeScale), count: headDim / 2)
            globalRopeFactors = factors
        }
        super.init(core: core)
    }

    deinit {
        localRope.deallocate()
        globalRopeFactors?.deallocate()
    }

    override func step(_ entries: [BatchEntry], logitsOut: UnsafeMutablePointer<Float>) {
        let s = shape, r = core.run, T = entries.count
        let dim = s.embeddingLength, hd = s.headDim, ffn = s.feedForwardLength
        let qDim = s.headCount * hd, kvDim = s.kvHeadCount * hd

        for (t, e) in entries.enumerated() {
            weights.embedding.dequantizeRow(Int(e.token), into: r.x + t * dim)
            Ops.scale(r.x + t * dim, by: embeddingScale, count: dim)
            Ops.ropeTable(position: e.position, thetaScale: r.thetaScale, pairs: hd / 2, factors: globalRopeFactors.map { UnsafePointer($0) },
                          into: r.rope + t * hd)
            Ops.ropeTable(position: e.position, thetaScale: localThetaScale, pairs: hd / 2, into: localRope + t * hd)
        }

        for (l, layer) in weights.layers.enumerated() {
            // ---- attention
            Ops.rmsNorm(r.x, weight: layer.attnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            core.project([layer.wq, layer.wk, layer.wv], input: r.xn, rows: T, columns: dim, into: [r.q, r.k, r.v])
            Ops.rmsNorm(r.q, weight: layer.qNorm, eps: eps, n: hd, rows: T * s.headCount, into: r.q)
            Ops.rmsNorm(r.k, weight: layer.kNorm, eps: eps, n: hd, rows: T * s.kvHeadCount, into: r.k)
            let table = layer.global ? r.rope : localRope
            for t in 0..<T {
                Ops.ropeNeox(r.q + t * qDim, heads: s.headCount, headDim: hd, rotatedDims: hd, table: table + t * hd)
                Ops.ropeNeox(r.k + t * kvDim, heads: s.kvHeadCount, headDim: hd, rotatedDims: hd, table: table + t * hd)
            }
            core.storeKV(entries, layer: l, k: r.k, v: r.v)
            core.attend(entries, layer: l, q: r.q, scale: attentionScale, window: layer.global ? nil : window, into: r.att)
            core.project([layer.wo], input: r.att, rows: T, columns: qDim, into: [r.tmp])
            Ops.rmsNorm(r.tmp, weight: layer.postAttnNorm, eps: eps, n: dim, rows: T, into: r.tmp)
            Ops.add(r.x, r.tmp, count: T * dim)

            // ---- feed-forward
            Ops.rmsNorm(r.x, weight: layer.ffnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            core.project([layer.gate, layer.up], input: r.xn, rows: T, columns: dim, into: [r.gate, r.up])
            core.pointwise(rows: T, width: ffn) { Ops.geluMul(r.gate + $0, r.up + $0, count: $1) }
            core.project([layer.down], input: r.gate, rows: T, columns: ffn, into: [r.tmp])
            Ops.rmsNorm(r.tmp, weight: layer.postFfnNorm, eps: eps, n: dim, rows: T, into: r.tmp)
            Ops.add(r.x, r.tmp, count: T * dim)
        }
        core.logits(entries, norm: weights.outputNorm, eps: eps, output: weights.output, into: logitsOut)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
