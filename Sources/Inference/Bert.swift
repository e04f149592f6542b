import Foundation
import GGUF
import Kernels

/// The BERT encoder (sentence-transformers' MiniLM, BGE, E5 …): learned absolute positions and token types, post-norm
/// layers of bidirectional attention and a GELU feed-forward, every projection with a bias; a vector pooled from the
/// last hidden states. Reads llama.cpp's GGUF layout and Hugging Face's `BertModel` safetensors.
///
/// The same encoder runs nomic-bert (nomic-embed-text, `NomicBert.swift`): rotary positions instead of learned ones,
/// one fused query-key-value matrix, no biases, a SwiGLU feed-forward.
public final class BertModel: EmbeddingModel {
    public let dimensions: Int
    public let maxTokens: Int
    public let pooling: EmbeddingPooling
    public let normalizes: Bool
    let layerCount: Int, heads: Int, ffn: Int, vocab: Int
    let eps: Float
    let source: WeightSource
    let pool: ThreadPool
    let w: Weights
    private var buffers: Buffers

    /// Rotary positions (NeoX layout) when set: θ scale per rotated pair; learned position embeddings otherwise.
    let ropeThetaScale: Float?
    /// The learned position row of a sequence's first token (XLM-RoBERTa counts from its padding id + 1).
    let positionOffset: Int

    struct Layer {
        /// Separate projections, or one fused matrix of 3 × hidden rows (query, key, value).
        let attention: Attention
        let wo, up, down: WeightMatrix
        /// SwiGLU's gate (silu(gate·x) ⊙ up·x); nil for BERT's GELU(up·x + bias).
        let gate: WeightMatrix?
        let bq, bk, bv, bo, bUp, bDown: UnsafePointer<Float>?
        let attnNormW, attnNormB, outNormW, outNormB: UnsafePointer<Float>
    }
    enum Attention {
        case separate(WeightMatrix, WeightMatrix, WeightMatrix)
        case fused(WeightMatrix)
    }
    struct Weights {
        let tokens: WeightMatrix
        let positions: WeightMatrix?
        let types: WeightMatrix?
        let normW, normB: UnsafePointer<Float>
        let layers: [Layer]
    }

    /// The shape of a BERT: from GGUF metadata or config.json.
    public struct Configuration: Sendable, Equatable {
        public var hidden: Int, layers: Int, heads: Int, ffn: Int, positions: Int
        public var eps: Float
        public init(hidden: Int, layers: Int, heads: Int, ffn: Int, positions: Int, eps: Float) {
            self.hidden = hidden; self.layers = layers; self.heads = heads; self.ffn = ffn; self.positions = positions; self.eps = eps
        }
    }

    /// Tensor names of one layout.
    struct Names: Sendable {
        let tokens, positions, types, normW, normB: String
        let layer: @Sendable (Int, String) -> String
        static let gguf = Names(tokens: "token_embd.weight", positions: "position_embd.weight", types: "token_types.weight",
                                normW: "token_embd_norm.weight", normB: "token_embd_norm.bias") { i, part in
            let map = ["q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output", "attnNorm": "attn_output_norm",
                       "up": "ffn_up", "down": "ffn_down", "outNorm": "layer_output_norm", "qkv": "attn_qkv", "gate": "ffn_gate"]
            return "blk.\(i).\(map[part] ?? part)"
        }
        static func huggingFace(prefix: String) -> Names {
            Names(tokens: prefix + "embeddings.word_embeddings.weight", positions: prefix + "embeddings.position_embeddings.weight",
                  types: prefix + "embeddings.token_type_embeddings.weight", normW: prefix + "embeddings.LayerNorm.weight",
                  normB: prefix + "embeddings.LayerNorm.bias") { i, part in
                let map = ["q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
                           "o": "attention.output.dense", "attnNorm": "attention.output.LayerNorm", "up": "intermediate.dense",
                           "down": "output.dense", "outNorm": "output.LayerNorm"]
                return "\(prefix)encoder.layer.\(i).\(map[part] ?? part)"
            }
        }
    }

    convenience init(gguf file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        let (config, pooling) = try Self.ggufShape(file, architecture: "bert", positions: 512)
        try self.init(source: file, names: .gguf, config: config, pooling: pooling, normalizes: true, maxTokens: nil, options: options)
    }

    /// The shape and pooling a GGUF file of `architecture` declares (`positions`: the context when it names none).
    static func ggufShape(_ file: GGUFFile, architecture a: String, positions: Int) throws(InferenceError) -> (Configuration, EmbeddingPooling) {
        let config = Configuration(
            hidden: try file.requireInt("\(a).embedding_length"), layers: try file.requireInt("\(a).block_count"),
            heads: try file.requireInt("\(a).attention.head_count"), ffn: try file.requireInt("\(a).feed_forward_length"),
            positions: file.int("\(a).context_length") ?? positions, eps: Float(file.float("\(a).attention.layer_norm_epsilon") ?? 1e-12))
        let pooling: EmbeddingPooling = switch file.int("\(a).pooling_type") {
        case 2: .cls
        case 3: .last
        default: .mean
        }
        return (config, pooling)
    }

    /// - Parameter ropeTheta: rotary positions with this base (nomic-bert) instead of a learned position table.
    init(source: WeightSource, names: Names, config c: Configuration, pooling: EmbeddingPooling, normalizes: Bool, maxTokens: Int?,
         options: ModelOptions, ropeTheta: Float? = nil, positionOffset: Int = 0) throws(InferenceError) {
        guard c.hidden % c.heads == 0 else { throw .badMetadata(key: "attention heads", expected: "a divisor of \(c.hidden) (got \(c.heads))") }
        self.source = source
        dimensions = c.hidden
        layerCount = c.layers; heads = c.heads; ffn = c.ffn; eps = c.eps
        guard positionOffset >= 0, positionOffset < c.positions else {
            throw .badMetadata(key: "positions", expected: "more than the first position's index \(positionOffset)")
        }
        self.positionOffset = positionOffset
        self.maxTokens = min(c.positions - positionOffset, maxTokens ?? c.positions)
        self.pooling = pooling
        self.normalizes = normalizes
        let d = c.hidden
        guard let tokenInfoRows = Self.rows(of: names.tokens, in: source, columns: d) else { throw .missingTensor(names.tokens) }
        vocab = tokenInfoRows
        let rotary = ropeTheta != nil
        func layer(_ i: Int) throws(InferenceError) -> Layer {
            func m(_ p: String, _ cols: Int, _ rows: Int) throws(InferenceError) -> WeightMatrix { try source.weight(names.layer(i, p) + ".weight", columns: cols, rows: rows) }
            func v(_ p: String, _ n: Int, _ suffix: String = ".bias") throws(InferenceError) -> UnsafePointer<Float> { try source.vector(names.layer(i, p) + suffix, count: n) }
            // BERT's biases are required; nomic-bert's are absent (llama.cpp reads them when present)
            func b(_ p: String, _ n: Int) throws(InferenceError) -> UnsafePointer<Float>? {
                !rotary || source.has(names.layer(i, p) + ".bias") ? try v(p, n) : nil
            }
            let fused = source.has(names.layer(i, "qkv") + ".weight")
            let attention: Attention = fused ? .fused(try m("qkv", d, 3 * d)) : .separate(try m("q", d, d), try m("k", d, d), try m("v", d, d))
            let gated = source.has(names.layer(i, "gate") + ".weight")
            if !gated, !source.has(names.layer(i, "up") + ".bias") { throw .missingTensor(names.layer(i, "up") + ".bias") }
            return Layer(attention: attention, wo: try m("o", d, d),
                         up: try m("up", d, c.ffn), down: try m("down", c.ffn, d), gate: gated ? try m("gate", d, c.ffn) : nil,
                         bq: fused ? nil : try b("q", d), bk: fused ? nil : try b("k", d), bv: fused ? nil : try b("v", d),
                         bo: try b("o", d), bUp: try b("up", c.ffn), bDown: try b("down", d),
                         attnNormW: try v("attnNorm", d, ".weight"), attnNormB: try v("attnNorm", d),
                         outNormW: try v("outNorm", d, ".weight"), outNormB: try v("outNorm", d))
        }
        if let ropeTheta {
            guard (d / c.heads) % 2 == 0 else { throw .badMetadata(key: "attention heads", expected: "an even head size for rotary positions") }
            ropeThetaScale = powf(ropeTheta, -2.0 / Float(d / c.heads))
        } else {
            ropeThetaScale = nil
        }
        var layers: [Layer] = []
        for i in 0..<c.layers { layers.append(try layer(i)) }
        w = Weights(tokens: try source.weight(names.tokens, columns: d, rows: vocab),
                    positions: rotary ? nil : try source.weight(names.positions, columns: d, rows: c.positions),
                    types: source.has(names.types) ? try Self.firstRows(names.types, source: source, columns: d) : nil,
                    normW: try source.vector(names.normW, count: d), normB: try source.vector(names.normB, count: d),
                    layers: layers)
        pool = ThreadPool(threadCount: options.threads ?? ThreadPool.availableCores, niceness: options.niceness)
        buffers = Buffers(tokens: 0, dim: d, ffn: c.ffn, threads: pool.threadCount, maxSequence: self.maxTokens)
    }

    /// The row count of a [rows, columns] matrix whose column count is known.
    static func rows(of name: String, in source: WeightSource, columns: Int) -> Int? {
        if let gguf = source as? GGUFFile, let info = gguf.tensor(named: name), info.dimensions.count == 2, info.dimensions[0] == columns {
            return info.dimensions[1]
        }
        if let st = source as? SafeTensorsWeights, let info = st.folder.info(name), info.shape.count == 2, info.shape[1] == columns {
            return info.shape[0]
        }
        return nil
    }

    /// Token-type embeddings: only type 0 is used (one sentence per input).
    static func firstRows(_ name: String, source: WeightSource, columns: Int) throws(InferenceError) -> WeightMatrix {
        let rows = Self.rows(of: name, in: source, columns: columns) ?? 1
        return try source.weight(name, columns: columns, rows: rows)
    }

    public var memoryBytes: Int { source.byteCount + buffers.bytes }

    /// Activation buffers for a batch of `tokens` tokens, grown when a larger batch comes.
    struct Buffers {
        var tokens: Int
        let dim: Int, ffn: Int, threads: Int, maxSequence: Int
        var x, q, k, v, att, tmp, h, qkv, h2: UnsafeMutablePointer<Float>
        let scores: UnsafeMutablePointer<Float>
        var scratch: QuantizedScratch
        var bytes: Int { tokens * (9 * dim + 2 * ffn) * 4 + threads * maxSequence * 4 + scratch.capacityBytes }

        init(tokens: Int, dim: Int, ffn: Int, threads: Int, maxSequence: Int) {
            self.tokens = tokens; self.dim = dim; self.ffn = ffn; self.threads = threads; self.maxSequence = maxSequence
            let n = max(1, tokens)
            x = .allocate(capacity: n * dim); q = .allocate(capacity: n * dim); k = .allocate(capacity: n * dim)
            v = .allocate(capacity: n * dim); att = .allocate(capacity: n * dim); tmp = .allocate(capacity: n * dim)
            h = .allocate(capacity: n * ffn)
            qkv = .allocate(capacity: n * 3 * dim); h2 = .allocate(capacity: n * ffn)
            scores = .allocate(capacity: threads * maxSequence)
            scratch = QuantizedScratch(maxColumns: max(dim, ffn), maxRows: n)
        }
        func free() {
            for p in [x, q, k, v, att, tmp, h, qkv, h2, scores] { p.deallocate() }
        }
    }

    deinit { buffers.free() }

    public func embed(_ sequences: [[Int32]]) throws(InferenceError) -> [[Float]] {
        guard !sequences.isEmpty else { return [] }
        for s in sequences {
            guard !s.isEmpty else { throw .emptyPrompt }
            guard s.count <= maxTokens else { throw .contextOverflow(needed: s.count, limit: maxTokens) }
            for t in s where t < 0 || Int(t) >= vocab { throw .invalidToken(t) }
        }
        let total = sequences.reduce(0) { $0 + $1.count }
        if total > buffers.tokens {
            buffers.free()
            buffers = Buffers(tokens: total, dim: dimensions, ffn: ffn, threads: pool.threadCount, maxSequence: maxTokens)
        }
        let b = buffers, d = dimensions, T = total

        // x ← LayerNorm(token + position + type 0)
        var starts: [Int] = []
        var t = 0
        let row = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { row.deallocate() }
        for s in sequences {
            starts.append(t)
            for (p, token) in s.enumerated() {
                let x = b.x + t * d
                w.tokens.dequantizeRow(Int(token), into: x)
                if let positions = w.positions {
                    positions.dequantizeRow(p + positionOffset, into: row)
                    Ops.add(x, row, count: d)
                }
                if let types = w.types {
                    types.dequantizeRow(0, into: row)
                    Ops.add(x, row, count: d)
                }
                t += 1
            }
        }
        Self.layerNorm(b.x, weight: w.normW, bias: w.normB, eps: eps, n: d, rows: T)

        let hd = d / heads
        let scale = 1 / Float(hd).squareRoot()
        let table = UnsafeMutablePointer<Float>.allocate(capacity: hd)
        defer { table.deallocate() }
        for layer in w.layers {
            switch layer.attention {
            case .separate(let wq, let wk, let wv):
                project([wq, wk, wv], input: b.x, rows: T, columns: d, into: [b.q, b.k, b.v])
            case .fused(let wqkv):
                project([wqkv], input: b.x, rows: T, columns: d, into: [b.qkv])
                for t in 0..<T {
                    let row = b.qkv + t * 3 * d
                    (b.q + t * d).update(from: row, count: d)
                    (b.k + t * d).update(from: row + d, count: d)
                    (b.v + t * d).update(from: row + 2 * d, count: d)
                }
            }
            addBias(b.q, layer.bq, rows: T, n: d)
            addBias(b.k, layer.bk, rows: T, n: d)
            addBias(b.v, layer.bv, rows: T, n: d)
            if let thetaScale = ropeThetaScale {
                for (i, s) in sequences.enumerated() {
                    for p in 0..<s.count {
                        Ops.ropeTable(position: p, thetaScale: thetaScale, pairs: hd / 2, into: table)
                        Ops.ropeNeox(b.q + (starts[i] + p) * d, heads: heads, headDim: hd, rotatedDims: hd, table: table)
                        Ops.ropeNeox(b.k + (starts[i] + p) * d, heads: heads, headDim: hd, rotatedDims: hd, table: table)
                    }
                }
            }
            attend(sequences, starts: starts, headDim: hd, scale: scale)
            project([layer.wo], input: b.att, rows: T, columns: d, into: [b.tmp])
            addBias(b.tmp, layer.bo, rows: T, n: d)
            Ops.add(b.x, b.tmp, count: T * d)
            Self.layerNorm(b.x, weight: layer.attnNormW, bias: layer.attnNormB, eps: eps, n: d, rows: T)

            let ffn = ffn
            if let gate = layer.gate {
                project([gate, layer.up], input: b.x, rows: T, columns: d, into: [b.h, b.h2])
                addBias(b.h2, layer.bUp, rows: T, n: ffn)
                pool.runChunked(T, chunk: max(1, T / (pool.threadCount * 4))) { _, rows in
                    for r in rows { Ops.siluMul(b.h + r * ffn, b.h2 + r * ffn, count: ffn) }
                }
            } else {
                project([layer.up], input: b.x, rows: T, columns: d, into: [b.h])
                let up = layer.bUp
                pool.runChunked(T, chunk: max(1, T / (pool.threadCount * 4))) { _, rows in
                    for r in rows {
                        if let up { Self.biasGELU(b.h + r * ffn, up, count: ffn) }   // present: the loader requires it here
                    }
                }
            }
            project([layer.down], input: b.h, rows: T, columns: ffn, into: [b.tmp])
            addBias(b.tmp, layer.bDown, rows: T, n: d)
            Ops.add(b.x, b.tmp, count: T * d)
            Self.layerNorm(b.x, weight: layer.outNormW, bias: layer.outNormB, eps: eps, n: d, rows: T)
        }

        var out: [[Float]] = []
        out.reserveCapacity(sequences.count)
        for (i, s) in sequences.enumerated() {
            var v = [Float](repeating: 0, count: d)
            let first = b.x + starts[i] * d
            switch pooling {
            case .mean:
                var acc = [Double](repeating: 0, count: d)
                for p in 0..<s.count { for j in 0..<d { acc[j] += Double(first[p * d + j]) } }
                for j in 0..<d { v[j] = Float(acc[j] / Double(s.count)) }
            case .cls:
                for j in 0..<d { v[j] = first[j] }
            case .last:
                for j in 0..<d { v[j] = first[(s.count - 1) * d + j] }
            }
            if normalizes { Self.normalize(&v) }
            out.append(v)
        }
        return out
    }

    private func project(_ ws: [WeightMatrix], input: UnsafeMutablePointer<Float>, rows: Int, columns: Int, into outs: [UnsafeMutablePointer<Float>]) {
        let a = Ops.prepare(input, rows: rows, columns: columns, for: ws[0].type, scratch: buffers.scratch)
        if ws.count > 1, ws.allSatisfy({ $0.type.activationFormat == ws[0].type.activationFormat }) {
            Ops.matmulGroup(ws, a, into: outs, pool: pool)
            return
        }
        for (m, out) in zip(ws, outs) {
            Ops.matmul(m, Ops.prepare(input, rows: rows, columns: columns, for: m.type, scratch: buffers.scratch), into: out, pool: pool)
        }
    }

    private func addBias(_ x: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, rows: Int, n: Int) {
        guard let bias else { return }
        for r in 0..<rows { Ops.add(x + r * n, bias, count: n) }
    }

    /// Every query of every sequence attends to all positions of its own sequence (no mask: one sequence per input).
    private func attend(_ sequences: [[Int32]], starts: [Int], headDim hd: Int, scale: Float) {
        let b = buffers, d = dimensions, heads = heads, maxSeq = maxTokens
        var items: [(start: Int, count: Int, head: Int)] = []
        for (i, s) in sequences.enumerated() { for h in 0..<heads { items.append((starts[i], s.count, h)) } }
        items.withUnsafeBufferPointer { work in
            pool.runChunked(work.count, chunk: 1) { th, range in
                let scores = b.scores + th * maxSeq
                for item in range {
                    let (start, n, h) = work[item]
                    for i in 0..<n {
                        let q = b.q + (start + i) * d + h * hd
                        var best = -Float.infinity
                        for j in 0..<n {
                            let k = b.k + (start + j) * d + h * hd
                            scores[j] = Ops.dot(q, k, count: hd) * scale
                            best = max(best, scores[j])
                        }
                        var sum: Float = 0
                        for j in 0..<n { scores[j] = expf(scores[j] - best); sum += scores[j] }
                        let o = b.att + (start + i) * d + h * hd
                        for e in 0..<hd { o[e] = 0 }
                        for j in 0..<n {
                            let p = scores[j] / sum
                            let v = b.v + (start + j) * d + h * hd
                            for e in 0..<hd { o[e] += p * v[e] }
                        }
                    }
                }
            }
        }
    }

    /// x = LayerNorm(x) · weight + bias, row by row, in place.
    static func layerNorm(_ x: UnsafeMutablePointer<Float>, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>, eps: Float, n: Int, rows: Int) {
        for r in 0..<rows {
            let v = x + r * n
            var mean: Float = 0
            for i in 0..<n { mean += v[i] }
            mean /= Float(n)
            var variance: Float = 0
            for i in 0..<n { let c = v[i] - mean; variance += c * c }
            variance /= Float(n)
            let inv = 1 / (variance + eps).squareRoot()
            for i in 0..<n { v[i] = (v[i] - mean) * inv * weight[i] + bias[i] }
        }
    }

    /// h = gelu(h + bias) with the exact (erf) GELU, as BERT's `hidden_act: gelu`.
    static func biasGELU(_ h: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, count: Int) {
        Ops.biasGELU(h, bias, count: count)
    }

    static func normalize(_ v: inout [Float]) {
        var ss: Double = 0
        for x in v { ss += Double(x) * Double(x) }
        let norm = Float(ss.squareRoot())
        guard norm > 0 else { return }
        let inv = 1 / max(norm, 1e-12)
        for i in v.indices { v[i] *= inv }
    }
}
