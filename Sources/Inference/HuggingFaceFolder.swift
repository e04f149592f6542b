import Foundation
import SafeTensors
import Tokenizers

/// A Hugging Face model folder: `config.json`, the weights as `model.safetensors` (or shards with their index),
/// `tokenizer.json`, and for sentence-transformers models `modules.json`, `1_Pooling/config.json` and
/// `sentence_bert_config.json`.
public enum HuggingFaceFolder {
    /// `config.json`'s `architectures[0]` (or `model_type`), e.g. `BertModel`.
    public static func architecture(_ url: URL) -> String? {
        guard let c = try? json(url.appendingPathComponent("config.json")) else { return nil }
        return (c["architectures"] as? [Any])?.first as? String ?? c["model_type"] as? String
    }

    /// Architectures served as embedders from a folder.
    public static let embeddingArchitectures: Set<String> = ["BertModel", "BertForMaskedLM", "bert", "XLMRobertaModel", "xlm-roberta"]

    public static func isEmbedding(_ url: URL) -> Bool {
        architecture(url).map(embeddingArchitectures.contains) ?? false
    }

    /// The embedding model and its tokenizer.
    public static func loadEmbedding(_ url: URL, options: ModelOptions = ModelOptions()) throws -> (model: any EmbeddingModel, tokenizer: any Tokenizer) {
        let path = url.path
        let config = try json(url.appendingPathComponent("config.json"))
        let arch = architecture(url) ?? "?"
        guard embeddingArchitectures.contains(arch) else {
            throw InferenceError.badModelFolder(path: path, reason: "config.json names architecture \(arch); embedding folders support \(embeddingArchitectures.sorted().joined(separator: ", "))")
        }
        func int(_ key: String) throws(InferenceError) -> Int {
            guard let v = (config[key] as? NSNumber)?.intValue, v > 0 else {
                throw .badModelFolder(path: path, reason: "config.json lacks a positive \(key)")
            }
            return v
        }
        let act = config["hidden_act"] as? String ?? "gelu"
        guard act == "gelu" else { throw InferenceError.badModelFolder(path: path, reason: "hidden_act \(act) is not supported (gelu is)") }
        if let kind = config["position_embedding_type"] as? String, kind != "absolute" {
            throw InferenceError.badModelFolder(path: path, reason: "position_embedding_type \(kind) is not supported (absolute is)")
        }
        let c = BertModel.Configuration(hidden: try int("hidden_size"), layers: try int("num_hidden_layers"), heads: try int("num_attention_heads"),
                                        ffn: try int("intermediate_size"), positions: try int("max_position_embeddings"),
                                        eps: Float((config["layer_norm_eps"] as? NSNumber)?.doubleValue ?? 1e-12))
        let (pooling, normalizes, maxLength) = try sentenceTransformers(url)
        let weights: SafeTensorsFolder
        do { weights = try SafeTensorsFolder(folder: url) } catch {
            throw InferenceError.badModelFolder(path: path, reason: error.description)
        }
        let source = SafeTensorsWeights(weights)
        // XLM-RoBERTa: positions counted from the padding id + 1, as fairseq did
        let roberta = arch == "XLMRobertaModel" || arch == "xlm-roberta"
        let positionOffset = roberta ? ((config["pad_token_id"] as? NSNumber)?.intValue ?? 1) + 1 : 0
        let prefix = source.has("embeddings.word_embeddings.weight") ? "" : roberta ? "roberta." : "bert."
        let model = try BertModel(source: source, names: .huggingFace(prefix: prefix), config: c, pooling: pooling, normalizes: normalizes,
                                  maxTokens: maxLength, options: options, positionOffset: positionOffset)
        let tokenizerURL = url.appendingPathComponent("tokenizer.json")
        guard FileManager.default.fileExists(atPath: tokenizerURL.path) else {
            throw InferenceError.badModelFolder(path: path, reason: "it has no tokenizer.json")
        }
        let tokenizer = try HuggingFaceTokenizer.load(contentsOf: tokenizerURL)
        guard tokenizer.vocabularySize <= (try int("vocab_size")) else {
            throw InferenceError.badModelFolder(path: path, reason: "tokenizer.json has \(tokenizer.vocabularySize) tokens, more than config.json's vocab_size")
        }
        return (model, tokenizer)
    }

    /// Pooling, normalization and the longest input from the sentence-transformers files; mean pooling, normalized,
    /// the model's positions when they are absent.
    static func sentenceTransformers(_ url: URL) throws -> (EmbeddingPooling, Bool, Int?) {
        var pooling = EmbeddingPooling.mean, normalizes = true, maxLength: Int?
        let modulesURL = url.appendingPathComponent("modules.json")
        if FileManager.default.fileExists(atPath: modulesURL.path) {
            let data = try Data(contentsOf: modulesURL)
            guard let modules = (try? JSONSerialization.jsonObject(with: data)) as? [[String: Any]] else {
                throw InferenceError.badModelFolder(path: url.path, reason: "modules.json is not a list of modules")
            }
            normalizes = modules.contains { ($0["type"] as? String)?.hasSuffix(".Normalize") ?? false }
            if let p = modules.first(where: { ($0["type"] as? String)?.hasSuffix(".Pooling") ?? false }), let sub = p["path"] as? String,
               !sub.contains(".."), let cfg = try? json(url.appendingPathComponent(sub).appendingPathComponent("config.json")) {
                if let mode = cfg["pooling_mode"] as? String {
                    // sentence-transformers 5 and later write one name
                    switch mode {
                    case "mean": pooling = .mean
                    case "cls": pooling = .cls
                    case "lasttoken": pooling = .last
                    default:
                        throw InferenceError.badModelFolder(path: url.path, reason: "\(sub)/config.json asks for pooling_mode \(mode) (mean, cls and lasttoken are supported)")
                    }
                } else if cfg["pooling_mode_cls_token"] as? Bool == true { pooling = .cls }
                else if cfg["pooling_mode_lasttoken"] as? Bool == true { pooling = .last }
                else if cfg["pooling_mode_mean_tokens"] as? Bool == true { pooling = .mean }
                else {
                    throw InferenceError.badModelFolder(path: url.path, reason: "\(sub)/config.json asks for a pooling mode other than mean, cls or last token")
                }
            }
        }
        if let st = try? json(url.appendingPathComponent("sentence_bert_config.json")), let n = (st["max_seq_length"] as? NSNumber)?.intValue, n > 0 {
            maxLength = n
        }
        return (pooling, normalizes, maxLength)
    }

    static func json(_ url: URL) throws -> [String: Any] {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw InferenceError.badModelFolder(path: url.deletingLastPathComponent().path, reason: "cannot read \(url.lastPathComponent)")
        }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw InferenceError.badModelFolder(path: url.deletingLastPathComponent().path, reason: "\(url.lastPathComponent) is not a JSON object")
        }
        return object
    }
}

extension HuggingFaceFolder {
    /// What `show` and the model lists say about a folder, read from `config.json` and the safetensors headers
    /// (the weights are not loaded).
    public struct Summary: Sendable, Equatable {
        public var architecture: String?
        /// The most common weight dtype, e.g. `F32`.
        public var dtype: String?
        public var parameterCount: Int
        public var contextLength: Int?
        /// `config.json`'s scalar entries, as text.
        public var config: [String: String]
    }

    public static func summary(_ url: URL) -> Summary? {
        guard let config = try? json(url.appendingPathComponent("config.json")) else { return nil }
        var counts: [String: Int] = [:], total = 0
        if let weights = try? SafeTensorsFolder(folder: url) {
            for name in weights.tensorNames {
                guard let info = weights.info(name), [.f32, .f16, .bf16].contains(info.type) else { continue }
                total += info.elementCount
                counts[info.type.rawValue, default: 0] += info.elementCount
            }
        }
        var scalars: [String: String] = [:]
        for (k, v) in config {
            if let s = v as? String { scalars[k] = s } else if let n = v as? NSNumber { scalars[k] = n.stringValue }
        }
        let positions = (config["max_position_embeddings"] as? NSNumber)?.intValue
        let limit = (try? json(url.appendingPathComponent("sentence_bert_config.json")))?["max_seq_length"] as? NSNumber
        return Summary(architecture: architecture(url), dtype: counts.max { $0.value < $1.value }?.key, parameterCount: total,
                       contextLength: limit.map { min($0.intValue, positions ?? Int.max) } ?? positions, config: scalars)
    }
}
