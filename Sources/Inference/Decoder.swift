import GGUF
import Kernels

/// The base of every architecture: the `LanguageModel` entry points over a `DecoderRuntime`; a subclass loads its
/// weights and overrides `step`, one pass over its layers for a batch of entries.
public class DecoderModel: LanguageModel {
    public let shape: ModelShape
    let core: DecoderRuntime

    init(core: DecoderRuntime) {
        self.core = core
        shape = core.shape
    }

    public var memoryBytes: Int { core.memoryBytes }
    public var slotCount: Int { core.cache.slots }
    public func forward(_ tokens: [Int32], startingAt start: Int, logits: LogitsSelection, adapters: [AdapterUse]) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        try core.forward(tokens, startingAt: start, logits: logits, adapters: adapters, step: step)
    }
    public var adapters: [(adapter: LoRAAdapter, scale: Float)] {
        Array(zip(core.adapters.attached.map(\.adapter), core.adapters.defaultScales))
    }
    public func setAdapterScales(_ uses: [AdapterUse]) throws(InferenceError) {
        try core.adapters.setDefaults(uses)
    }
    public func resolveAdapters(_ requested: [AdapterUse]?) throws(InferenceError) -> [AdapterUse] {
        try core.adapters.resolve(requested)
    }

    /// Attaches a LoRA adapter (the next id) used at `scale` by generations that do not choose their own. Before any
    /// generation runs: the engine does not attach while it computes.
    public func attach(_ adapter: LoRAAdapter, scale: Float) throws(InferenceError) {
        try core.adapters.attach(adapter, scale: scale, file: core.file, batch: core.batchSize)
    }
    public func forward(batch entries: [BatchEntry]) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        try core.forward(batch: entries, step: step)
    }

    /// One pass over the layers for `entries`, logits of those that want them into `logitsOut`.
    func step(_ entries: [BatchEntry], logitsOut: UnsafeMutablePointer<Float>) {}

    /// The last token's hidden state after the final norm (what llama.cpp's embeddings with last-token pooling read),
    /// `embeddingLength` floats; the sequence runs in slot 0 from position 0.
    public func lastHiddenState(_ tokens: [Int32]) throws(InferenceError) -> [Float] {
        core.emitsHidden = true
        defer { core.emitsHidden = false }
        let out = try core.forward(tokens, startingAt: 0, logits: .last, step: step)
        return Array(out.prefix(shape.embeddingLength))
    }
}

/// What every decoder-only architecture here shares: the mapped file, the thread pool, the KV cache of every slot,
/// the activation buffers, the two forward entry points (a prompt of one sequence, a batch of many), projections
/// and attention over the cache. An architecture holds one and supplies its `step`: one pass over its layers.
final class DecoderRuntime: @unchecked Sendable {
    let file: GGUFFile   // keeps the mapping alive
    let shape: ModelShape
    let pool: ThreadPool
    let cache: KVCache
    let run: RunState
    let batchSize: Int
    /// The rows that want logits get their final-norm hidden states instead (embeddings from a decoder).
    var emitsHidden = false
    /// LoRA adapters attached to this model.
    let adapters = AdapterSet()
    /// The adapters of each row of the pass in progress (empty when no row uses any).
    private var rowAdapters: [[AdapterUse]] = []
    typealias Step = (_ entries: [BatchEntry], _ logitsOut: UnsafeMutablePointer<Float>) -> Void

    init(file: GGUFFile, shape: ModelShape, options: ModelOptions, ropeDims: Int, theta: Float, architecture a: String) throws(InferenceError) {
        self.file = file
        self.shape = shape
        let kvDim = shape.kvHeadCount * shape.headDim
        if options.kvCache == .q8_0, shape.headDim % 32 != 0 {
            throw .badMetadata(key: "\(a).attention.head_count", expected: "a head size that is a multiple of 32 for an 8-bit KV cache (it is \(shape.headDim))")
        }
        pool = ThreadPool(threadCount: options.threads ?? ThreadPool.availableCores, niceness: options.niceness)
        batchSize = max(1, options.batchSize)
        cache = KVCache(slots: max(1, options.slots), layers: shape.layerCount, contextLength: shape.contextLength, kvDim: kvDim, type: options.kvCache)
        run = RunState(shape: shape, batch: batchSize, threads: pool.threadCount, ropeDims: ropeDims, theta: theta)
    }

    /// The context per sequence: the option, else min(trained, 4096), shrunk so that every slot's keys and values
    /// fit the KV memory budget when one is set.
    static func contextLength(trained: Int, layers: Int, kvDim: Int, options: ModelOptions) throws(InferenceError) -> Int {
        var ctx = max(1, min(options.contextLength ?? min(trained, 4096), 1 << 20))
        if let budget = options.kvMemoryBytes {
            let perPosition = 2 * layers * (options.kvCache == .f16 ? kvDim * 2 : kvDim / 32 * 34)
            let fits = budget / max(1, options.slots * perPosition)
            guard fits >= 16 else {
                throw .badMetadata(key: "kv memory budget", expected: "at least \(16 * options.slots * perPosition) bytes for \(options.slots) sequences (got \(budget))")
            }
            ctx = min(ctx, fits)
        }
        return ctx
    }

    var memoryBytes: Int { file.fileSize + cache.bytes + run.bytes + adapters.memoryBytes }

    func forward(_ tokens: [Int32], startingAt start: Int, logits: LogitsSelection, adapters uses: [AdapterUse] = [], step: Step) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        guard !tokens.isEmpty else { throw .emptyPrompt }
        guard start >= 0, start + tokens.count <= shape.contextLength else {
            throw .contextOverflow(needed: start + tokens.count, limit: shape.contextLength)
        }
        for t in tokens where t < 0 || Int(t) >= shape.vocabularySize { throw .invalidToken(t) }
        try check(uses)
        if logits == .all { run.ensureLogitRows(tokens.count) }
        defer { rowAdapters = [] }
        var done = 0
        while done < tokens.count {
            let n = min(batchSize, tokens.count - done)
            let isLast = done + n == tokens.count
            let entries = (0..<n).map { i in
                BatchEntry(token: tokens[done + i], slot: 0, position: start + done + i,
                           wantsLogits: logits == .all || (isLast && i == n - 1))
            }
            rowAdapters = uses.isEmpty ? [] : Array(repeating: uses, count: n)
            step(entries, run.logits + (logits == .all ? done * shape.vocabularySize : 0))
            done += n
        }
        return UnsafeBufferPointer(start: run.logits, count: (logits == .all ? tokens.count : 1) * shape.vocabularySize)
    }

    func forward(batch entries: [BatchEntry], step: Step) throws(InferenceError) -> UnsafeBufferPointer<Float> {
        guard !entries.isEmpty else { throw .emptyPrompt }
        guard entries.count <= batchSize else { throw .batchTooLarge(entries.count, limit: batchSize) }
        for e in entries {
            guard e.token >= 0, Int(e.token) < shape.vocabularySize else { throw .invalidToken(e.token) }
            guard e.slot >= 0, e.slot < cache.slots else { throw .invalidSlot(e.slot, slots: cache.slots) }
            guard e.position >= 0, e.position < shape.contextLength else {
                throw .contextOverflow(needed: e.position + 1, limit: shape.contextLength)
            }
            try check(e.adapters)
        }
        let outputs = entries.filter(\.wantsLogits).count
        run.ensureLogitRows(outputs)
        rowAdapters = entries.contains { !$0.adapters.isEmpty } ? entries.map(\.adapters) : []
        defer { rowAdapters = [] }
        step(entries, run.logits)
        return UnsafeBufferPointer(start: run.logits, count: outputs * shape.vocabularySize)
    }

    private func check(_ uses: [AdapterUse]) throws(InferenceError) {
        for u in uses {
            guard u.id >= 0, u.id < adapters.attached.count else { throw .unknownAdapter(u.id, count: adapters.attached.count) }
            guard u.scale.isFinite else { throw .badAdapterScale(u.scale) }
        }
    }

    /// out_i = W_i · input for weights that share one input, row t of `input` being entry t of the pass; each row's
    /// LoRA adapters add their updates.
    func project(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into outs: [UnsafeMutablePointer<Float>]) {
        multiply(ws, input: input, rows: rows, columns: columns, into: outs)
        if !rowAdapters.isEmpty { addAdapterUpdates(ws, input: input, rows: rows, columns: columns, into: outs) }
    }

    /// out += s·m·B·(A·x) for every adapter in use and every weight it updates, over the rows that use it (gathered
    /// when not all do): two small f32 products per weight, after the base product, as llama.cpp adds them.
    private func addAdapterUpdates(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int,
                                   into outs: [UnsafeMutablePointer<Float>]) {
        guard rowAdapters.count == rows, let gathered = adapters.input, let middle = adapters.middle, let product = adapters.output else { return }
        var distinct: [AdapterUse] = []
        for uses in rowAdapters { for u in uses where !distinct.contains(u) { distinct.append(u) } }
        for use in distinct {
            let attached = adapters.attached[use.id]
            let updates = ws.indices.compactMap { k in attached.byWeight[ws[k].base].map { (k, $0) } }
            guard !updates.isEmpty else { continue }
            let members = rowAdapters.indices.filter { rowAdapters[$0].contains(use) }
            let x: UnsafeMutablePointer<Float>
            if members.count == rows {
                x = input
            } else {
                for (j, t) in members.enumerated() { (gathered + j * columns).update(from: input + t * columns, count: columns) }
                x = gathered
            }
            let n = members.count
            for (k, pair) in updates {
                Ops.matmul(pair.a, Activations(pointer: x, rowBytes: columns * 4, count: n), into: middle, pool: pool)
                Ops.matmul(pair.b, Activations(pointer: middle, rowBytes: pair.rank * 4, count: n), into: product, pool: pool)
                let s = use.scale * pair.multiplier, width = pair.b.rows, out = outs[k]
                for (j, t) in members.enumerated() {
                    let dst = out + t * width, src = product + j * width
                    for i in 0..<width { dst[i] += s * src[i] }
                }
            }
        }
    }

    /// out_i = W_i · input for weights that share one input (quantized once per activation format); no adapters.
    func multiply(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into outs: [UnsafeMutablePointer<Float>]) {
        if ws.count > 1, ws.allSatisfy({ $0.type.activationFormat == ws[0].type.activationFormat }) {
            let a = Ops.prepare(input, rows: rows, columns: columns, for: ws[0].type, scratch: run.quantized)
            Ops.matmulGroup(ws, a, into: outs, pool: pool)
            return
        }
        for (w, out) in zip(ws, outs) {
            let a = Ops.prepare(input, rows: rows, columns: columns, for: w.type, scratch: run.quantized)
            Ops.matmul(w, a, into: out, pool: pool)
        }
    }

    /// Logits for the entries that want them: their rows of `run.x` normalized into `run.xn`, packed, then projected.
    func logits(_ entries: [BatchEntry], norm: UnsafePointer<Float>, eps: Float, output: WeightMatrix, into logitsOut: UnsafeMutablePointer<Float>) {
        let dim = shape.embeddingLength
        var rows = 0
        for (t, e) in entries.enumerated() where e.wantsLogits {
            Ops.rmsNorm(run.x + t * dim, weight: norm, eps: eps, n: dim, rows: 1, into: run.xn + rows * dim)
            rows += 1
        }
        guard rows > 0 else { return }
        if emitsHidden {
            logitsOut.update(from: run.xn, count: rows * dim)   // the logits buffer holds rows × vocabulary ≥ rows × dim
            return
        }
        multiply([output], input: run.xn, rows: rows, columns: dim, into: [logitsOut])
    }

    /// `body(offset, count)` over `rows` rows of `width` values, split across the pool when there is enough work.
    func pointwise(rows: Int, width: Int, _ body: (Int, Int) -> Void) {
        guard rows * width >= 65536 else { body(0, rows * width); return }
        pool.run { th, nth in
            let part = ThreadPool.split(rows, thread: th, of: nth)
            if !part.isEmpty { body(part.lowerBound * width, part.count * width) }
        }
    }

    /// Stores entry t's key and value rows (`k + t·kvDim`, `v + t·kvDim`) at its slot and position in layer `l`.
    func storeKV(_ entries: [BatchEntry], layer l: Int, k: UnsafePointer<Float>, v: UnsafePointer<Float>) {
        let kvDim = shape.kvHeadCount * shape.headDim
        for (t, e) in entries.enumerated() {
            let kDst = cache.keys(slot: e.slot, layer: l) + e.position * cache.rowBytes
            let vDst = cache.values(slot: e.slot, layer: l) + e.position * cache.rowBytes
            if cache.type == .f16 {
                Ops.toHalf(k + t * kvDim, kDst.assumingMemoryBound(to: UInt16.self), count: kvDim)
                Ops.toHalf(v + t * kvDim, vDst.assumingMemoryBound(to: UInt16.self), count: kvDim)
            } else {
                Ops.toQ8(k + t * kvDim, kDst, count: kvDim)
                Ops.toQ8(v + t * kvDim, vDst, count: kvDim)
            }
        }
    }

    /// Attention of every entry's query heads (`q`, heads × headDim per entry) over its slot's cached positions in
    /// layer `l` — the last `window` positions up to its own when a sliding window is given — into `out`.
    /// `softcap` > 0: scores soft-capped before the softmax (Gemma 2's `attn_logit_softcapping`).
    func attend(_ entries: [BatchEntry], layer l: Int, q: UnsafePointer<Float>, scale: Float, window: Int? = nil,
                softcap: Float = 0, into out: UnsafeMutablePointer<Float>) {
        let s = shape, hd = s.headDim, group = s.headCount / s.kvHeadCount
        let qStride = s.headCount * hd, kvDim = s.kvHeadCount * hd
        let work = entries.count * s.headCount
        let cache = cache, scratchBase = run.attnScratch, ctx = s.contextLength
        entries.withUnsafeBufferPointer { es in
            // items handed out one by one: a causal prompt's later rows cost more than its first ones
            pool.runChunked(work, chunk: 1) { th, items in
                let scratch = scratchBase + th * ctx
                for item in items {
                    let t = item / s.headCount, h = item % s.headCount, g = h / group
                    let e = es[t]
                    let first = window.map { max(0, e.position + 1 - $0) } ?? 0
                    let count = e.position + 1 - first
                    let kBase = cache.keys(slot: e.slot, layer: l) + first * cache.rowBytes
                    let vBase = cache.values(slot: e.slot, layer: l) + first * cache.rowBytes
                    if cache.type == .f16 {
                        Ops.attention(q: q + t * qStride + h * hd, k: kBase.assumingMemoryBound(to: UInt16.self) + g * hd,
                                      v: vBase.assumingMemoryBound(to: UInt16.self) + g * hd, count: count,
                                      headDim: hd, stride: kvDim, scale: scale, softcap: softcap, scratch: scratch, out: out + t * qStride + h * hd)
                    } else {
                        let headOffset = g * hd / 32 * 34
                        Ops.attentionQ8(q: q + t * qStride + h * hd, k: kBase + headOffset, v: vBase + headOffset, count: count,
                                        headDim: hd, strideBytes: cache.rowBytes, scale: scale, softcap: softcap, scratch: scratch,
                                        out: out + t * qStride + h * hd)
                    }
                }
            }
        }
    }
}
