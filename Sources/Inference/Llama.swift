import GGUF
import Kernels

/// The llama family (Llama 2/3, SmolLM2, Mistral-style GQA): RMSNorm, rotary attention with grouped KV heads,
/// SwiGLU feed-forward, optional tied output embedding. Qwen 2 and Qwen 3 are variants of it (`Qwen2.swift`,
/// `Qwen3.swift`), and so is Phi-3 (`Phi3.swift`).
public final class LlamaModel: DecoderModel {
    let eps: Float
    let ropeDims: Int
    /// One factor per rotated pair dividing its angle: `rope_freqs.weight` (Llama 3.1 / 3.2's rope scaling), or
    /// Phi-3's long-context `rope_factors_long` / `rope_factors_short`; nil: none.
    let ropeFactors: UnsafePointer<Float>?
    /// The magnitude of the rotation (`rope.scaling.attn_factor`, Phi-3's long-context models): both the query's and
    /// the key's rotated values are scaled by it, as ggml's rope scales cos and sin.
    let ropeMagnitude: Float
    let weights: Weights
    let variant: Variant
    /// The buffers of a mixture of experts' feed-forward; nil for a dense model.
    let expertScratch: ExpertScratch?

    /// What distinguishes members of the family that share this forward pass.
    struct Variant: Sendable {
        /// The `general.architecture` name, also the prefix of its metadata keys.
        let architecture: String
        /// Rotary embedding over halves (`x[i]`, `x[i + d/2]`) instead of adjacent pairs.
        var neoxRope = false
        /// Biases on the query, key and value projections (`attn_q.bias`, …).
        var qkvBias = false
        /// RMSNorm of each head's query and key before the rotation (`attn_q_norm`, `attn_k_norm`: Qwen 3).
        var qkNorm = false
        /// One `attn_qkv` matrix (query, key, value rows in that order) and one `ffn_up` of gate then up rows (Phi-3).
        var fused = false
        /// A mixture of experts in place of the feed-forward (`ExpertFeedForward`: Qwen 3 MoE).
        var experts = false
        static let llama = Variant(architecture: "llama")
    }

    struct Layer {
        let attnNorm: UnsafePointer<Float>   // (dim)
        let wq: WeightMatrix                 // (dim, dim)        rows × columns
        let wk: WeightMatrix                 // (kvDim, dim)
        let wv: WeightMatrix                 // (kvDim, dim)
        let wo: WeightMatrix                 // (dim, dim)
        let ffnNorm: UnsafePointer<Float>    // (dim)
        let feedForward: FeedForward
        let qBias, kBias, vBias: UnsafePointer<Float>?
        let qNorm, kNorm: UnsafePointer<Float>?   // (headDim)
    }

    enum FeedForward {
        case dense(gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix)   // (ffn, dim), (ffn, dim), (dim, ffn)
        case experts(ExpertFeedForward)
    }

    struct Weights {
        let embedding: WeightMatrix          // (vocab, dim)
        let layers: [Layer]
        let outputNorm: UnsafePointer<Float> // (dim)
        let output: WeightMatrix             // (vocab, dim), the embedding when tied
    }

    public convenience init(file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        try self.init(file: file, options: options, variant: .llama)
    }

    init(file: GGUFFile, options: ModelOptions, variant: Variant) throws(InferenceError) {
        self.variant = variant
        let a = variant.architecture
        let dim = try file.requireInt("\(a).embedding_length")
        let layers = try file.requireInt("\(a).block_count")
        let heads = try file.requireInt("\(a).attention.head_count")
        let kvHeads = file.int("\(a).attention.head_count_kv") ?? heads
        // a mixture's feed-forward width is its experts' (`expert_feed_forward_length`)
        let ffn = try file.requireInt(variant.experts ? "\(a).expert_feed_forward_length" : "\(a).feed_forward_length")
        let experts = variant.experts ? try file.requireInt("\(a).expert_count") : 0
        let used = variant.experts ? try file.requireInt("\(a).expert_used_count") : 0
        guard used <= experts else { throw .badMetadata(key: "\(a).expert_used_count", expected: "at most \(a).expert_count (\(experts))") }
        guard kvHeads > 0, heads % kvHeads == 0 else { throw .badMetadata(key: "\(a).attention.head_count_kv", expected: "a divisor of \(heads)") }
        // the head size: `key_length` where given (Qwen 3's 128 whatever the width), else dim / heads
        let headDim = file.int("\(a).attention.key_length") ?? (dim % heads == 0 ? dim / heads : 0)
        guard headDim > 0, file.int("\(a).attention.value_length") ?? headDim == headDim else {
            throw .badMetadata(key: "\(a).attention.key_length", expected: "a head size (dim / heads, or key_length equal to value_length)")
        }
        let qDim = heads * headDim
        let kvDim = kvHeads * headDim
        let vocab = try file.vocabularySize()
        let trained = file.int("\(a).context_length") ?? 2048
        let ctx = try DecoderRuntime.contextLength(trained: trained, layers: layers, kvDim: kvDim, options: options)
        eps = Float(file.float("\(a).attention.layer_norm_rms_epsilon") ?? 1e-5)
        ropeDims = file.int("\(a).rope.dimension_count") ?? headDim
        guard ropeDims > 0, ropeDims <= headDim, ropeDims % 2 == 0 else {
            throw .badMetadata(key: "\(a).rope.dimension_count", expected: "an even number ≤ \(headDim)")
        }
        let theta = Float(file.float("\(a).rope.freq_base") ?? 10000)
        if file.tensor(named: "rope_factors_long.weight") != nil || file.tensor(named: "rope_factors_short.weight") != nil {
            // Phi-3's LongRoPE (the 128k models, Phi-3.5 and Phi-4 mini): the long factors when a sequence's context
            // exceeds the original one, else the short ones, as llama.cpp chooses them
            let original = file.int("\(a).rope.scaling.original_context_length") ?? trained
            ropeFactors = try file.vector(ctx > original ? "rope_factors_long.weight" : "rope_factors_short.weight", count: ropeDims / 2)
            ropeMagnitude = Float(file.float("\(a).rope.scaling.attn_factor") ?? 1)
        } else {
            ropeFactors = file.tensor(named: "rope_freqs.weight") == nil ? nil : try file.vector("rope_freqs.weight", count: ropeDims / 2)
            ropeMagnitude = 1
        }
        guard ropeMagnitude.isFinite, ropeMagnitude > 0 else {
            throw .badMetadata(key: "\(a).rope.scaling.attn_factor", expected: "a positive number")
        }

        var ls: [Layer] = []
        for i in 0..<layers {
            let p = "blk.\(i)."
            let wq, wk, wv: WeightMatrix
            let feedForward: FeedForward
            if variant.fused {
                let qkv = try file.weight(p + "attn_qkv.weight", columns: dim, rows: qDim + 2 * kvDim)
                (wq, wk, wv) = (qkv.rows(0, qDim), qkv.rows(qDim, kvDim), qkv.rows(qDim + kvDim, kvDim))
                let gateUp = try file.weight(p + "ffn_up.weight", columns: dim, rows: 2 * ffn)
                feedForward = .dense(gate: gateUp.rows(0, ffn), up: gateUp.rows(ffn, ffn),
                                     down: try file.weight(p + "ffn_down.weight", columns: ffn, rows: dim))
            } else {
                wq = try file.weight(p + "attn_q.weight", columns: dim, rows: qDim)
                wk = try file.weight(p + "attn_k.weight", columns: dim, rows: kvDim)
                wv = try file.weight(p + "attn_v.weight", columns: dim, rows: kvDim)
                if variant.experts {
                    feedForward = .experts(try ExpertFeedForward(file: file, prefix: p, dim: dim, ffn: ffn, experts: experts, used: used))
                } else {
                    feedForward = .dense(gate: try file.weight(p + "ffn_gate.weight", columns: dim, rows: ffn),
                                         up: try file.weight(p + "ffn_up.weight", columns: dim, rows: ffn),
                                         down: try file.weight(p + "ffn_down.weight", columns: ffn, rows: dim))
                }
            }
            ls.append(Layer(
                attnNorm: try file.vector(p + "attn_norm.weight", count: dim),
                wq: wq, wk: wk, wv: wv,
                wo: try file.weight(p + "attn_output.weight", columns: qDim, rows: dim),
                ffnNorm: try file.vector(p + "ffn_norm.weight", count: dim),
                feedForward: feedForward,
                qBias: variant.qkvBias ? try file.vector(p + "attn_q.bias", count: qDim) : nil,
                kBias: variant.qkvBias ? try file.vector(p + "attn_k.bias", count: kvDim) : nil,
                vBias: variant.qkvBias ? try file.vector(p + "attn_v.bias", count: kvDim) : nil,
                qNorm: variant.qkNorm ? try file.vector(p + "attn_q_norm.weight", count: headDim) : nil,
                kNorm: variant.qkNorm ? try file.vector(p + "attn_k_norm.weight", count: headDim) : nil))
        }
        let (embedding, output) = try file.embeddingAndOutput(dim: dim, vocab: vocab)
        weights = Weights(embedding: embedding, layers: ls, outputNorm: try file.vector("output_norm.weight", count: dim), output: output)

        let shape = ModelShape(architecture: a, vocabularySize: vocab, embeddingLength: dim, layerCount: layers, headCount: heads,
                           kvHeadCount: kvHeads, headDim: headDim, feedForwardLength: ffn, trainedContextLength: trained,
                           contextLength: ctx)
        expertScratch = variant.experts ? ExpertScratch(batch: max(1, options.batchSize), dim: dim, experts: experts) : nil
        super.init(core: try DecoderRuntime(file: file, shape: shape, options: options, ropeDims: ropeDims, theta: theta, architecture: a))
    }

    /// One pass over the weights for up to `batchSize` tokens, each from its own slot (sequence) and position.
    /// Every entry's key and value are stored before attention, so entries of one slot in one pass see each other
    /// causally (a prompt chunk). Logits are written for the entries that want them, in order.
    override func step(_ entries: [BatchEntry], logitsOut: UnsafeMutablePointer<Float>) {
        let s = shape, r = core.run, T = entries.count
        let dim = s.embeddingLength, kvDim = s.kvHeadCount * s.headDim, ffn = s.feedForwardLength
        let hd = s.headDim, qDim = s.headCount * hd
        let scale = 1 / Float(hd).squareRoot()

        expertScratch?.smallestMargin = .infinity
        // x (T, dim) ← embeddings; rope tables (T, ropeDims)
        for (t, e) in entries.enumerated() {
            weights.embedding.dequantizeRow(Int(e.token), into: r.x + t * dim)
            Ops.ropeTable(position: e.position, thetaScale: r.thetaScale, pairs: ropeDims / 2, factors: ropeFactors, into: r.rope + t * ropeDims)
            if ropeMagnitude != 1 { Ops.scale(r.rope + t * ropeDims, by: ropeMagnitude, count: ropeDims) }
        }

        for (l, layer) in weights.layers.enumerated() {
            // ---- attention
            Ops.rmsNorm(r.x, weight: layer.attnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            project([layer.wq, layer.wk, layer.wv], input: r.xn, rows: T, columns: dim, into: [r.q, r.k, r.v])
            if let qNorm = layer.qNorm, let kNorm = layer.kNorm {
                Ops.rmsNorm(r.q, weight: qNorm, eps: eps, n: hd, rows: T * s.headCount, into: r.q)
                Ops.rmsNorm(r.k, weight: kNorm, eps: eps, n: hd, rows: T * s.kvHeadCount, into: r.k)
            }
            for t in 0..<T {
                if let b = layer.qBias { Ops.add(r.q + t * qDim, b, count: qDim) }
                if let b = layer.kBias { Ops.add(r.k + t * kvDim, b, count: kvDim) }
                if let b = layer.vBias { Ops.add(r.v + t * kvDim, b, count: kvDim) }
                let table = r.rope + t * ropeDims
                if variant.neoxRope {
                    Ops.ropeNeox(r.q + t * qDim, heads: s.headCount, headDim: hd, rotatedDims: ropeDims, table: table)
                    Ops.ropeNeox(r.k + t * kvDim, heads: s.kvHeadCount, headDim: hd, rotatedDims: ropeDims, table: table)
                } else {
                    Ops.ropeNormal(r.q + t * qDim, heads: s.headCount, headDim: hd, rotatedDims: ropeDims, table: table)
                    Ops.ropeNormal(r.k + t * kvDim, heads: s.kvHeadCount, headDim: hd, rotatedDims: ropeDims, table: table)
                }
            }
            core.storeKV(entries, layer: l, k: r.k, v: r.v)
            core.attend(entries, layer: l, q: r.q, scale: scale, into: r.att)
            project([layer.wo], input: r.att, rows: T, columns: qDim, into: [r.tmp])
            Ops.add(r.x, r.tmp, count: T * dim)

            // ---- feed-forward
            Ops.rmsNorm(r.x, weight: layer.ffnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            switch layer.feedForward {
            case let .dense(gate, up, down):
                project([gate, up], input: r.xn, rows: T, columns: dim, into: [r.gate, r.up])
                core.pointwise(rows: T, width: ffn) { Ops.siluMul(r.gate + $0, r.up + $0, count: $1) }
                project([down], input: r.gate, rows: T, columns: ffn, into: [r.tmp])
                Ops.add(r.x, r.tmp, count: T * dim)
            case let .experts(moe):
                if let scratch = expertScratch { moe.add(r.xn, rows: T, into: r.x, core: core, scratch: scratch) }
            }
        }

        core.logits(entries, norm: weights.outputNorm, eps: eps, output: weights.output, into: logitsOut)
    }

    private func project(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into outs: [UnsafeMutablePointer<Float>]) {
        core.project(ws, input: input, rows: rows, columns: columns, into: outs)
    }
}
