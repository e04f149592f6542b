import GGUF
import Kernels

/// The llama family (Llama 2/3, SmolLM2, Mistral-style GQA): RMSNorm, rotary attention with grouped KV heads,
/// SwiGLU feed-forward, optional tied output embedding.
public final class LlamaModel: LanguageModel {
    public let shape: ModelShape
    let file: GGUFFile  // keeps the mapping alive
    let eps: Float
    let ropeDims: Int
    let weights: Weights
    let pool: ThreadPool
    let cache: KVCache
    let run: RunState
    let batchSize: Int

    struct Layer {
        let attnNorm: UnsafePointer<Float>   // (dim)
        let wq: WeightMatrix                 // (dim, dim)        rows × columns
        let wk: WeightMatrix                 // (kvDim, dim)
        let wv: WeightMatrix                 // (kvDim, dim)
        let wo: WeightMatrix                 // (dim, dim)
        let ffnNorm: UnsafePointer<Float>    // (dim)
        let gate: WeightMatrix               // (ffn, dim)
        let up: WeightMatrix                 // (ffn, dim)
        let down: WeightMatrix               // (dim, ffn)
    }

    struct Weights {
        let embedding: WeightMatrix          // (vocab, dim)
        let layers: [Layer]
        let outputNorm: UnsafePointer<Float> // (dim)
        let output: WeightMatrix             // (vocab, dim), the embedding when tied
    }

    public init(file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        let a = "llama"
        let dim = try file.requireInt("\(a).embedding_length")
        let layers = try file.requireInt("\(a).block_count")
        let heads = try file.requireInt("\(a).attention.head_count")
        let kvHeads = file.int("\(a).attention.head_count_kv") ?? heads
        let ffn = try file.requireInt("\(a).feed_forward_length")
        guard dim % heads == 0 else { throw .badMetadata(key: "\(a).attention.head_count", expected: "a divisor of \(dim)") }
        guard kvHeads > 0, heads % kvHeads == 0 else { throw .badMetadata(key: "\(a).attention.head_count_kv", expected: "a divisor of \(heads)") }
        let headDim = dim / heads
        let kvDim = kvHeads * headDim
        guard let embInfo = file.tensor(named: "token_embd.weight"), embInfo.dimensions.count == 2 else {
            throw .missingTensor("token_embd.weight")
        }
        let vocab = embInfo.dimensions[1]
        let trained = file.int("\(a).context_length") ?? 2048
        var ctx = max(1, min(options.contextLength ?? min(trained, 4096), 1 << 20))
        if let budget = options.kvMemoryBytes {
            // every slot gets the same number of positions; keys and values of all layers per position
            let perPosition = 2 * layers * (options.kvCache == .f16 ? kvDim * 2 : kvDim / 32 * 34)
            let fits = budget / max(1, options.slots * perPosition)
            guard fits >= 16 else {
                throw .badMetadata(key: "kv memory budget", expected: "at least \(16 * options.slots * perPosition) bytes for \(options.slots) sequences (got \(budget))")
            }
            ctx = min(ctx, fits)
        }
        eps = Float(file.float("\(a).attention.layer_norm_rms_epsilon") ?? 1e-5)
        ropeDims = file.int("\(a).rope.dimension_count") ?? headDim
        guard ropeDims > 0, ropeDims <= headDim, ropeDims % 2 == 0 else {
            throw .badMetadata(key: "\(a).rope.dimension_count", expected: "an even number ≤ \(headDim)")
        }
        let theta = Float(file.float("\(a).rope.freq_base") ?? 10000)

        var ls: [Layer] = []
        for i in 0..<layers {
            let p = "blk.\(i)."
            ls.append(Layer(
                attnNorm: try file.vector(p + "attn_norm.weight", count: dim),
                wq: try file.weight(p + "attn_q.weight", columns: dim, rows: dim),
                wk: try file.weight(p + "attn_k.weight", columns: dim, rows: kvDim),
                wv: try file.weight(p + "attn_v.weight", columns: dim, rows: kvDim),
                wo: try file.weight(p + "attn_output.weight", columns: dim, rows: dim),
                ffnNorm: try file.vector(p + "ffn_norm.weight", count: dim),
                gate: try file.weight(p + "ffn_gate.weight", columns: dim, rows: ffn),
                up: try file.weight(p + "ffn_up.weight", columns: dim, rows: ffn),
                down: try file.weight(p + "ffn_down.weight", columns: ffn, rows: dim)))
        }
        let embedding = try file.weight("token_embd.weight", columns: dim, rows: vocab)
        let output = file.tensor(named: "output.weight") != nil
            ? try file.weight("output.weight", columns: dim, rows: vocab) : embedding
        weights = Weights(embedding: embedding, layers: ls, outputNorm: try file.vector("output_norm.weight", count: dim), output: output)

        shape = ModelShape(architecture: a, vocabularySize: vocab, embeddingLength: dim, layerCount: layers, headCount: heads,
                           kvHeadCount: kvHeads, headDim: headDim, feedForwardLength: ffn, trainedContextLength: trained,
                           contextLength: ctx)
        self.file = file
        pool = ThreadPool(threadCount: options.threads ?? ThreadPool.availableCores, niceness: options.niceness)
        batchSize = max(1, options.batchSize)
        if options.kvCache == .q8_0, headDim % 32 != 0 {
            throw .badMetadata(key: "\(a).attention.head_count", expected: "a head size that is a multiple of 32 for an 8-bit KV cache (it is \(headDim))")
        }
        cache = KVCache(slots: max(1, options.slots), layers: layers, contextLength: ctx, kvDim: kvDim, type: options.kvCache)
        run = RunState(shape: shape, batch: batchSize, threads: pool.threadCount, ropeDims: ropeDims, theta: theta)
    }

    public var memoryBytes: Int { file.fileSize + cache.bytes + run.bytes }

    public var slotCount: Int { cache.slots }

    public func forward(_ tokens: [Int32], startingAt start: Int, logits: LogitsSelection) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        guard !tokens.isEmpty else { throw .emptyPrompt }
        guard start >= 0, start + tokens.count <= shape.contextLength else {
            throw .contextOverflow(needed: start + tokens.count, limit: shape.contextLength)
        }
        for t in tokens where t < 0 || Int(t) >= shape.vocabularySize { throw .invalidToken(t) }
        if logits == .all { run.ensureLogitRows(tokens.count) }
        var done = 0
        while done < tokens.count {
            let n = min(batchSize, tokens.count - done)
            let isLast = done + n == tokens.count
            let entries = (0..<n).map { i in
                BatchEntry(token: tokens[done + i], slot: 0, position: start + done + i,
                           wantsLogits: logits == .all || (isLast && i == n - 1))
            }
            step(entries, logitsOut: run.logits + (logits == .all ? done * shape.vocabularySize : 0))
            done += n
        }
        return UnsafeBufferPointer(start: run.logits, count: (logits == .all ? tokens.count : 1) * shape.vocabularySize)
    }

    public func forward(batch entries: [BatchEntry]) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        guard !entries.isEmpty else { throw .emptyPrompt }
        guard entries.count <= batchSize else { throw .batchTooLarge(entries.count, limit: batchSize) }
        for e in entries {
            guard e.token >= 0, Int(e.token) < shape.vocabularySize else { throw .invalidToken(e.token) }
            guard e.slot >= 0, e.slot < cache.slots else { throw .invalidSlot(e.slot, slots: cache.slots) }
            guard e.position >= 0, e.position < shape.contextLength else {
                throw .contextOverflow(needed: e.position + 1, limit: shape.contextLength)
            }
        }
        let outputs = entries.filter(\.wantsLogits).count
        run.ensureLogitRows(outputs)
        step(entries, logitsOut: run.logits)
        return UnsafeBufferPointer(start: run.logits, count: outputs * shape.vocabularySize)
    }

    /// One pass over the weights for up to `batchSize` tokens, each from its own slot (sequence) and position.
    /// Every entry's key and value are stored before attention, so entries of one slot in one pass see each other
    /// causally (a prompt chunk). Logits are written for the entries that want them, in order.
    private func step(_ entries: [BatchEntry], logitsOut: UnsafeMutablePointer<Float>) {
        let s = shape, r = run, T = entries.count
        let dim = s.embeddingLength, kvDim = s.kvHeadCount * s.headDim, ffn = s.feedForwardLength
        let hd = s.headDim, group = s.headCount / s.kvHeadCount
        let scale = 1 / Float(hd).squareRoot()

        // x (T, dim) ← embeddings; rope tables (T, ropeDims)
        for (t, e) in entries.enumerated() {
            weights.embedding.dequantizeRow(Int(e.token), into: r.x + t * dim)
            Ops.ropeTable(position: e.position, thetaScale: r.thetaScale, pairs: ropeDims / 2, into: r.rope + t * ropeDims)
        }

        for (l, layer) in weights.layers.enumerated() {
            // ---- attention
            Ops.rmsNorm(r.x, weight: layer.attnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            project([layer.wq, layer.wk, layer.wv], input: r.xn, rows: T, columns: dim, into: [r.q, r.k, r.v])
            for (t, e) in entries.enumerated() {
                Ops.ropeNormal(r.q + t * dim, heads: s.headCount, headDim: hd, rotatedDims: ropeDims, table: r.rope + t * ropeDims)
                Ops.ropeNormal(r.k + t * kvDim, heads: s.kvHeadCount, headDim: hd, rotatedDims: ropeDims, table: r.rope + t * ropeDims)
                let kDst = cache.keys(slot: e.slot, layer: l) + e.position * cache.rowBytes
                let vDst = cache.values(slot: e.slot, layer: l) + e.position * cache.rowBytes
                if cache.type == .f16 {
                    Ops.toHalf(r.k + t * kvDim, kDst.assumingMemoryBound(to: UInt16.self), count: kvDim)
                    Ops.toHalf(r.v + t * kvDim, vDst.assumingMemoryBound(to: UInt16.self), count: kvDim)
                } else {
                    Ops.toQ8(r.k + t * kvDim, kDst, count: kvDim)
                    Ops.toQ8(r.v + t * kvDim, vDst, count: kvDim)
                }
            }
            let work = T * s.headCount
            let cache = cache
            entries.withUnsafeBufferPointer { es in
                // items handed out one by one: a causal prompt's later rows cost more than its first ones
                pool.runChunked(work, chunk: 1) { th, items in
                    let scratch = r.attnScratch + th * s.contextLength
                    for item in items {
                        let t = item / s.headCount, h = item % s.headCount, g = h / group
                        let e = es[t]
                        let kBase = cache.keys(slot: e.slot, layer: l), vBase = cache.values(slot: e.slot, layer: l)
                        if cache.type == .f16 {
                            Ops.attention(q: r.q + t * dim + h * hd, k: kBase.assumingMemoryBound(to: UInt16.self) + g * hd,
                                          v: vBase.assumingMemoryBound(to: UInt16.self) + g * hd, count: e.position + 1,
                                          headDim: hd, stride: kvDim, scale: scale, scratch: scratch, out: r.att + t * dim + h * hd)
                        } else {
                            let headOffset = g * hd / 32 * 34
                            Ops.attentionQ8(q: r.q + t * dim + h * hd, k: kBase + headOffset, v: vBase + headOffset, count: e.position + 1,
                                            headDim: hd, strideBytes: cache.rowBytes, scale: scale, scratch: scratch, out: r.att + t * dim + h * hd)
                        }
                    }
                }
            }
            project([layer.wo], input: r.att, rows: T, columns: dim, into: [r.tmp])
            Ops.add(r.x, r.tmp, count: T * dim)

            // ---- feed-forward
            Ops.rmsNorm(r.x, weight: layer.ffnNorm, eps: eps, n: dim, rows: T, into: r.xn)
            project([layer.gate, layer.up], input: r.xn, rows: T, columns: dim, into: [r.gate, r.up])
            if T * ffn >= 65536 {
                pool.run { th, nth in
                    let rows = ThreadPool.split(T, thread: th, of: nth)
                    if !rows.isEmpty { Ops.siluMul(r.gate + rows.lowerBound * ffn, r.up + rows.lowerBound * ffn, count: rows.count * ffn) }
                }
            } else {
                Ops.siluMul(r.gate, r.up, count: T * ffn)
            }
            project([layer.down], input: r.gate, rows: T, columns: ffn, into: [r.tmp])
            Ops.add(r.x, r.tmp, count: T * dim)
        }

        // logits for the entries that want them: their rows normalized into xn, packed, then projected
        var rows = 0
        for (t, e) in entries.enumerated() where e.wantsLogits {
            Ops.rmsNorm(r.x + t * dim, weight: weights.outputNorm, eps: eps, n: dim, rows: 1, into: r.xn + rows * dim)
            rows += 1
        }
        guard rows > 0 else { return }
        project([weights.output], input: r.xn, rows: rows, columns: dim, into: [logitsOut])
    }

    /// out_i = W_i · input for weights that share one input (quantized once per activation format).
    private func project(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into outs: [UnsafeMutablePointer<Float>]) {
        if ws.count > 1, ws.allSatisfy({ $0.type.wantsQuantizedActivations == ws[0].type.wantsQuantizedActivations }) {
            let a = Ops.prepare(input, rows: rows, columns: columns, for: ws[0].type, scratch: run.quantized)
            Ops.matmulGroup(ws, a, into: outs, pool: pool)
            return
        }
        for (w, out) in zip(ws, outs) {
            let a = Ops.prepare(input, rows: rows, columns: columns, for: w.type, scratch: run.quantized)
            Ops.matmul(w, a, into: out, pool: pool)
        }
    }
}
