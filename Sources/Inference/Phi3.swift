import GGUF

/// Phi-3 (`general.architecture = phi3`: Phi-3 mini/medium, Phi-3.5 mini, Phi-4 mini): the llama forward pass with
/// NeoX-style rotary embedding, one fused `attn_qkv` matrix and one fused `ffn_up` holding the gate rows then the up
/// rows (used as views of their parts, never copied). Phi-3's sliding window is not applied, as llama.cpp does not
/// apply it. The long-context models' LongRoPE (`rope_factors_long` / `rope_factors_short` and an attention factor)
/// is read by `LlamaModel`: the long factors when the context exceeds `rope.scaling.original_context_length`.
enum Phi3 {
    static let variant = LlamaModel.Variant(architecture: "phi3", neoxRope: true, fused: true)

    static func load(_ file: GGUFFile, options: ModelOptions) throws(InferenceError) -> LlamaModel {
        try LlamaModel(file: file, options: options, variant: variant)
    }
}
