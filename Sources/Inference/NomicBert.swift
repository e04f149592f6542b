import GGUF

/// nomic-bert (`general.architecture = nomic-bert`: nomic-embed-text v1 and v1.5) from llama.cpp's GGUF layout:
/// BERT's post-norm encoder with rotary positions (NeoX layout, `nomic-bert.rope.freq_base`, 1000 in the published
/// models) instead of a learned position table, one fused `attn_qkv` matrix, no biases, and a SwiGLU feed-forward
/// (`ffn_gate`, `ffn_up`, `ffn_down`); token type 0 added to every token; pooling as `nomic-bert.pooling_type` says
/// (mean in the published models). The forward pass is `BertModel`'s.
extension BertModel {
    convenience init(nomicBERT file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        let a = "nomic-bert"
        let (config, pooling) = try Self.ggufShape(file, architecture: a, positions: 2048)
        guard let theta = file.float("\(a).rope.freq_base"), theta > 0 else {
            throw .badMetadata(key: "\(a).rope.freq_base", expected: "a positive rotary base")
        }
        for i in 0..<config.layers where file.tensor(named: "blk.\(i).ffn_gate.weight") == nil {
            throw .missingTensor("blk.\(i).ffn_gate.weight")
        }
        try self.init(source: file, names: .gguf, config: config, pooling: pooling, normalizes: true, maxTokens: nil,
                      options: options, ropeTheta: Float(theta))
    }
}
