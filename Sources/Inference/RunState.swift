import Kernels

/// Key and value caches, one per slot (sequence): per layer (contextLength, kvDim) each, in half precision or in
/// 8-bit blocks of 32 (`KVCacheType.q8_0`, about half the memory again).
final class KVCache: @unchecked Sendable {
    let slots: Int, layers: Int, contextLength: Int, kvDim: Int
    let type: KVCacheType
    /// Bytes of one position's keys (or values) of one layer.
    let rowBytes: Int
    let k: UnsafeMutableRawPointer   // (slot, layer, position, rowBytes)
    let v: UnsafeMutableRawPointer   // (slot, layer, position, rowBytes)

    init(slots: Int, layers: Int, contextLength: Int, kvDim: Int, type: KVCacheType) {
        self.slots = slots; self.layers = layers; self.contextLength = contextLength; self.kvDim = kvDim; self.type = type
        rowBytes = type == .f16 ? kvDim * 2 : kvDim / 32 * 34
        let n = slots * layers * contextLength * rowBytes
        // Left uninitialized: only positions already written are read, and untouched pages cost no memory.
        k = .allocate(byteCount: max(1, n), alignment: 64)
        v = .allocate(byteCount: max(1, n), alignment: 64)
    }
    deinit { k.deallocate(); v.deallocate() }

    /// Address space reserved; pages are committed only as positions are written.
    var bytes: Int { 2 * slots * layers * contextLength * rowBytes }
    func keys(slot: Int, layer: Int) -> UnsafeMutableRawPointer { k + (slot * layers + layer) * contextLength * rowBytes }
    func values(slot: Int, layer: Int) -> UnsafeMutableRawPointer { v + (slot * layers + layer) * contextLength * rowBytes }
}

/// Activation buffers for one batch of up to `batch` tokens, allocated once; nothing is allocated per token.
final class RunState: @unchecked Sendable {
    let batch: Int
    let x, xn, q, k, v, att, tmp, gate, up: UnsafeMutablePointer<Float>
    let rope: UnsafeMutablePointer<Float>          // (batch, ropeDims): cos/sin pairs per position
    let thetaScale: Float                          // base^(-2/ropeDims)
    let attnScratch: UnsafeMutablePointer<Float>   // (threads, contextLength)
    private(set) var logits: UnsafeMutablePointer<Float>  // (logitRows, vocab)
    private var logitRows: Int
    let quantized: QuantizedScratch
    let vocab: Int
    private var owned: [UnsafeMutablePointer<Float>] = []
    private(set) var bytes = 0

    init(shape s: ModelShape, batch: Int, threads: Int, ropeDims: Int, theta: Float) {
        self.batch = batch
        vocab = s.vocabularySize
        let dim = s.embeddingLength, kvDim = s.kvHeadCount * s.headDim, ffn = s.feedForwardLength
        let qDim = s.headCount * s.headDim   // the embedding width for llama; wider for Gemma
        var owned: [UnsafeMutablePointer<Float>] = []
        var bytes = 0
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            owned.append(p); bytes += n * 4
            return p
        }
        x = alloc(batch * dim); xn = alloc(batch * dim); q = alloc(batch * qDim)
        k = alloc(batch * kvDim); v = alloc(batch * kvDim); att = alloc(batch * qDim); tmp = alloc(batch * dim)
        gate = alloc(batch * ffn); up = alloc(batch * ffn)
        rope = alloc(batch * ropeDims)
        attnScratch = alloc(threads * s.contextLength)
        logitRows = 1
        logits = .allocate(capacity: vocab)
        quantized = QuantizedScratch(maxColumns: max(dim, ffn, qDim), maxRows: batch)
        thetaScale = powf(theta, -2.0 / Float(ropeDims))
        self.owned = owned
        self.bytes = bytes + vocab * 4 + quantized.capacityBytes
    }

    /// Makes room for logits of `rows` rows (perplexity needs every row).
    func ensureLogitRows(_ rows: Int) {
        guard rows > logitRows else { return }
        logits.deallocate()
        logits = .allocate(capacity: rows * vocab)
        bytes += (rows - logitRows) * vocab * 4
        logitRows = rows
    }

    deinit {
        for p in owned { p.deallocate() }
        logits.deallocate()
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
