import GGUF

/// Qwen 3 MoE (`general.architecture = qwen3moe`: Qwen3-30B-A3B, Qwen3-235B-A22B): Qwen 3's attention (per-head
/// query/key RMSNorm, NeoX rotation, its own head size) with a mixture of experts in place of every feed-forward —
/// `qwen3moe.expert_count` experts of width `expert_feed_forward_length`, `expert_used_count` of them chosen per token
/// by a softmax router and their weights renormalized (`ExpertFeedForward`).
enum Qwen3MoE {
    static let variant = LlamaModel.Variant(architecture: "qwen3moe", neoxRope: true, qkNorm: true, experts: true)

    static func load(_ file: GGUFFile, options: ModelOptions) throws(InferenceError) -> LlamaModel {
        try LlamaModel(file: file, options: options, variant: variant)
    }
}
