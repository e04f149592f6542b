import Kernels

/// Key and value caches in half precision, one per slot (sequence): per layer (contextLength, kvDim) each.
final class KVCache: @unchecked Sendable {
    let slots: Int, layers: Int, contextLength: Int, kvDim: Int
    let k: UnsafeMutablePointer<UInt16>   // (slot, layer, position, kvDim)
    let v: UnsafeMutablePointer<UInt16>   // (slot, layer, position, kvDim)

    init(slots: Int, layers: Int, contextLength: Int, kvDim: Int) {
        self.slots = slots; self.layers = layers; self.contextLength = contextLength; self.kvDim = kvDim
        let n = slots * layers * contextLength * kvDim
        // Left uninitialized: only positions already written are read, and untouched pages cost no memory.
        k = .allocate(capacity: n)
        v = .allocate(capacity: n)
    }
    deinit { k.deallocate(); v.deallocate() }

    /// Address space reserved; pages are committed only as positions are written.
    var bytes: Int { 2 * slots * layers * contextLength * kvDim * 2 }
    func keys(slot: Int, layer: Int) -> UnsafeMutablePointer<UInt16> { k + (slot * layers + layer) * contextLength * kvDim }
    func values(slot: Int, layer: Int) -> UnsafeMutablePointer<UInt16> { v + (slot * layers + layer) * contextLength * kvDim }
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
        var owned: [UnsafeMutablePointer<Float>] = []
        var bytes = 0
        func alloc(_ n: Int) -> UnsafeMutablePointer<Float> {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: max(1, n))
            p.initialize(repeating: 0, count: max(1, n))
            owned.append(p); bytes += n * 4
            return p
        }
        x = alloc(batch * dim); xn = alloc(batch * dim); q = alloc(batch * dim)
        k = alloc(batch * kvDim); v = alloc(batch * kvDim); att = alloc(batch * dim); tmp = alloc(batch * dim)
        gate = alloc(batch * ffn); up = alloc(batch * ffn)
        rope = alloc(batch * ropeDims)
        attnScratch = alloc(threads * s.contextLength)
        logitRows = 1
        logits = .allocate(capacity: vocab)
        quantized = QuantizedScratch(maxColumns: max(dim, ffn), maxRows: batch)
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
