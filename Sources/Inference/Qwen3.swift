import GGUF

/// Qwen 3 (`general.architecture = qwen3`): the llama forward pass with NeoX-style rotary embedding, no projection
/// biases, an RMSNorm of every head's query and key before the rotation (`attn_q_norm`, `attn_k_norm`), and a head
/// size of its own (`qwen3.attention.key_length`, 128 in the published models whatever their width); an untied
/// `output.weight` when present.
enum Qwen3 {
    static let variant = LlamaModel.Variant(architecture: "qwen3", neoxRope: true, qkNorm: true)

    static func load(_ file: GGUFFile, options: ModelOptions) throws(InferenceError) -> LlamaModel {
        try LlamaModel(file: file, options: options, variant: variant)
    }
}
