import GGUF

/// What Gemma 2 and Gemma 3 files declare alike: the shape (a head size of its own from `key_length`, grouped key-value
/// heads), the RMSNorm epsilon and the sliding window.
enum GemmaFamily {
    struct Header {
        let shape: ModelShape
        let eps: Float
        let window: Int
    }

    static func header(_ file: GGUFFile, architecture a: String, trainedContext: Int, window defaultWindow: Int,
                       options: ModelOptions) throws(InferenceError) -> Header {
        let dim = try file.requireInt("\(a).embedding_length")
        let layers = try file.requireInt("\(a).block_count")
        let heads = try file.requireInt("\(a).attention.head_count")
        let kvHeads = file.int("\(a).attention.head_count_kv") ?? heads
        let ffn = try file.requireInt("\(a).feed_forward_length")
        let headDim = file.int("\(a).attention.key_length") ?? dim / heads
        guard headDim > 0, headDim % 2 == 0, file.int("\(a).attention.value_length") ?? headDim == headDim else {
            throw .badMetadata(key: "\(a).attention.key_length", expected: "an even head size equal to value_length")
        }
        guard kvHeads > 0, heads % kvHeads == 0 else { throw .badMetadata(key: "\(a).attention.head_count_kv", expected: "a divisor of \(heads)") }
        let trained = file.int("\(a).context_length") ?? trainedContext
        let ctx = try DecoderRuntime.contextLength(trained: trained, layers: layers, kvDim: kvHeads * headDim, options: options)
        let window = file.int("\(a).attention.sliding_window") ?? defaultWindow
        guard window > 0 else { throw .badMetadata(key: "\(a).attention.sliding_window", expected: "a positive number of positions") }
        let shape = ModelShape(architecture: a, vocabularySize: try file.vocabularySize(), embeddingLength: dim, layerCount: layers,
                               headCount: heads, kvHeadCount: kvHeads, headDim: headDim, feedForwardLength: ffn,
                               trainedContextLength: trained, contextLength: ctx)
        return Header(shape: shape, eps: Float(file.float("\(a).attention.layer_norm_rms_epsilon") ?? 1e-6), window: window)
    }
}
