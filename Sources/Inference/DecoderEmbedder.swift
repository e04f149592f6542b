import GGUF
import Kernels
import Tokenizers

/// A generating model used as an embedder, as llama-server's `--embedding --pooling last` does: each input's last
/// token's hidden state after the final norm, scaled to unit length.
public final class DecoderEmbedder: EmbeddingModel {
    let model: DecoderModel
    public var dimensions: Int { model.shape.embeddingLength }
    public var maxTokens: Int { model.shape.contextLength }
    public var pooling: EmbeddingPooling { .last }
    public var normalizes: Bool { true }
    public var memoryBytes: Int { model.memoryBytes }

    /// One sequence at a time (slot 0), its context as the options say.
    public init(_ file: GGUFFile, options: ModelOptions) throws(InferenceError) {
        var o = options
        o.slots = 1
        guard let m = try Architectures.load(file, options: o) as? DecoderModel else {
            throw .unsupportedArchitecture(file.string("general.architecture") ?? "")
        }
        guard m.shape.embeddingLength <= m.shape.vocabularySize else {
            throw .badMetadata(key: "embedding_length", expected: "at most the vocabulary size to be read as embeddings")
        }
        model = m
    }

    public func embed(_ sequences: [[Int32]]) throws(InferenceError) -> [[Float]] {
        var out: [[Float]] = []
        out.reserveCapacity(sequences.count)
        for s in sequences {
            var v = try model.lastHiddenState(s)
            BertModel.normalize(&v)
            out.append(v)
        }
        return out
    }
}
