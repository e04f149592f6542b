import GGUF

/// Qwen2 (`general.architecture = qwen2`): the llama forward pass with biases on the query, key and value
/// projections and NeoX-style rotary embedding (halves rotated together); an untied `output.weight` when present.
enum Qwen2 {
    static let variant = LlamaModel.Variant(architecture: "qwen2", neoxRope: true, qkvBias: true)

    static func load(_ file: GGUFFile, options: ModelOptions) throws(InferenceError) -> LlamaModel {
        try LlamaModel(file: file, options: options, variant: variant)
    }
}
