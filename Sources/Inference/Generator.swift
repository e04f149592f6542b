import Foundation
import GGUF
import Grammar
import Kernels
import Tokenizers

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What to generate.
public struct GenerationParameters: Sendable, Equatable {
    public var sampling: SamplingParameters
    /// nil → until EOS or the context is full.
    public var maxTokens: Int?
    /// Generation stops before the first occurrence of any of these; the stop text is not emitted.
    public var stop: [String]
    /// How many most-likely alternatives to report per token (0 → no log-probabilities).
    public var topLogprobs: Int
    public var logprobs: Bool
    /// Never sample an end-of-generation token: generate until `maxTokens`, a stop string or the context's end.
    public var ignoreEOS: Bool
    /// A grammar the output must follow: only tokens it allows are sampled, end-of-generation only where it is
    /// complete, and generation ends when nothing more can follow.
    public var constraint: TokenConstraint?
    /// The LoRA adapters to run with, by id and scale (adapters not listed are off); nil or empty: the model's
    /// default scales (as llama-server reads `lora`). The base model alone: every adapter at scale 0.
    public var adapters: [AdapterUse]?

    public init(sampling: SamplingParameters = SamplingParameters(), maxTokens: Int? = nil, stop: [String] = [],
                logprobs: Bool = false, topLogprobs: Int = 0, ignoreEOS: Bool = false, constraint: TokenConstraint? = nil) {
        self.sampling = sampling; self.maxTokens = maxTokens; self.stop = stop
        self.logprobs = logprobs; self.topLogprobs = topLogprobs; self.ignoreEOS = ignoreEOS; self.constraint = constraint
    }
}

public enum FinishReason: String, Sendable, Equatable, Codable {
    case stop, length, cancelled
}

/// One step of output.
public struct GeneratedToken: Sendable {
    public var id: Int32
    /// Text that became complete with this token (may be "" mid-character or while a stop string is possible).
    public var text: String
    public var logprob: Float?
    public var topLogprobs: [(id: Int32, logprob: Float)]
}

public struct GenerationResult: Sendable {
    public var text: String
    public var tokens: [Int32]
    public var promptTokenCount: Int
    public var finishReason: FinishReason
    /// Seconds spent on the prompt and on generation.
    public var promptSeconds: Double
    public var generationSeconds: Double
    public var seed: UInt64
    /// Prompt tokens whose keys and values were reused from a cache instead of computed.
    public var cachedPromptTokens: Int

    public init(text: String, tokens: [Int32], promptTokenCount: Int, finishReason: FinishReason, promptSeconds: Double,
                generationSeconds: Double, seed: UInt64, cachedPromptTokens: Int = 0) {
        self.text = text; self.tokens = tokens; self.promptTokenCount = promptTokenCount; self.finishReason = finishReason
        self.promptSeconds = promptSeconds; self.generationSeconds = generationSeconds; self.seed = seed
        self.cachedPromptTokens = cachedPromptTokens
    }
}

/// A loaded model with its tokenizer: the unit the CLI and the server hold.
public final class LoadedModel: @unchecked Sendable {
    public let file: GGUFFile
    public let model: any LanguageModel
    public let tokenizer: any Tokenizer
    /// The model's chat template (ChatML when the file has none).
    public let chat: ChatPromptRenderer
    public let name: String
    /// Constrained decoding over this model's vocabulary.
    public let grammars: GrammarCache

    /// A GGUF file, or a Hugging Face folder of a chat model (converted once, `HuggingFaceConversion`).
    public init(path: String, options: ModelOptions = ModelOptions()) throws {
        var isDirectory: ObjCBool = false
        var path = path
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            let url = URL(fileURLWithPath: path)
            let arch = HuggingFaceFolder.architecture(url) ?? "unknown architecture"
            if HuggingFaceFolder.embeddingArchitectures.contains(arch) { throw InferenceError.embeddingModel(path: path, architecture: arch) }
            guard HuggingFaceConversion.isChat(url) else {
                let served = HuggingFaceConversion.chatArchitectures.keys.sorted().joined(separator: ", ")
                throw InferenceError.badModelFolder(path: path, reason: "Hugging Face folders of \(arch) are not served yet (\(served) are, and embedding folders)")
            }
            path = try HuggingFaceConversion.convertedFile(folder: url, quantize: options.quantize)
        }
        file = try GGUFFile(path: path)
        if file.string("general.type") == "adapter" {
            throw InferenceError.badAdapter(path: path, reason: "it is a LoRA adapter, not a model: attach it to its base model (the registry's adapters:, or --lora)")
        }
        if EmbeddingModels.isEmbedding(file) {
            throw InferenceError.embeddingModel(path: path, architecture: file.string("general.architecture") ?? "")
        }
        tokenizer = try TokenizerFactory.load(from: file)
        model = try Architectures.load(file, options: options)
        for spec in options.adapters {
            guard let decoder = model as? DecoderModel else {
                throw InferenceError.badAdapter(path: spec.path, reason: "this model's architecture takes no adapters")
            }
            try decoder.attach(try LoRAAdapter.load(path: spec.path, base: file), scale: spec.scale)
        }
        let special = { [tokenizer] (id: Int32?) in id.map { String(decoding: tokenizer.tokenBytes($0), as: UTF8.self) } ?? "" }
        chat = ChatPromptRenderer(template: file.string("tokenizer.chat_template"),
                                  bosToken: special(tokenizer.bosTokenID), eosToken: special(tokenizer.eosTokenID))
        name = file.string("general.name") ?? path
        grammars = GrammarCache(tokenizer: tokenizer, vocabularySize: model.shape.vocabularySize)
    }

    /// Prompt tokens for raw text (BOS added when the vocabulary asks for it; special tokens parsed).
    public func tokenize(_ text: String) -> [Int32] {
        var ids = tokenizer.encode(text, parseSpecial: true)
        if tokenizer.addBOS, let bos = tokenizer.bosTokenID, ids.first != bos { ids.insert(bos, at: 0) }
        return ids
    }
}

/// The generation state of one sequence, independent of how its forward passes are run (alone or batched):
/// given the logits after its last token, `advance` samples the next one and says what to emit and whether it is
/// done. `Generator` runs one sequence with it; the batching scheduler runs many.
public struct SequenceRunner {
    public let prompt: [Int32]
    public let parameters: GenerationParameters
    public private(set) var generated: [Int32] = []
    public private(set) var text = ""
    public private(set) var finishReason: FinishReason?
    public var seed: UInt64 { sampler.seed }
    /// The token to feed next (the last one sampled), once the prompt is in the cache.
    public private(set) var pendingToken: Int32?

    private let tokenizer: any Tokenizer
    private let limit: Int
    private var sampler: Sampler
    private var history: [Int32]
    private var detok: StreamingDetokenizer
    private var stops: StopMatcher
    private var scratch: [Float]
    /// The end-of-generation ids masked out of every step when `ignoreEOS` is set (empty otherwise).
    private let masked: [Int]
    /// Where the output stands in its grammar, when it has one.
    private var grammar: ConstraintState?

    public init(prompt: [Int32], parameters: GenerationParameters, tokenizer: any Tokenizer, shape: ModelShape) throws(InferenceError) {
        guard !prompt.isEmpty else { throw .emptyPrompt }
        guard prompt.count < shape.contextLength else { throw .contextOverflow(needed: prompt.count + 1, limit: shape.contextLength) }
        self.prompt = prompt
        self.parameters = parameters
        self.tokenizer = tokenizer
        limit = min(parameters.maxTokens ?? Int.max, shape.contextLength - prompt.count)
        sampler = Sampler(parameters.sampling)
        history = prompt
        detok = StreamingDetokenizer(tokenizer: tokenizer)
        stops = StopMatcher(parameters.stop)
        scratch = [Float](repeating: 0, count: shape.vocabularySize)
        let vocabulary = min(shape.vocabularySize, tokenizer.vocabularySize)
        masked = parameters.ignoreEOS ? (0..<vocabulary).filter { tokenizer.isEndOfGeneration(Int32($0)) } : []
        grammar = parameters.constraint?.start()
        if limit <= 0 { finishReason = .length }
    }

    /// Positions of this sequence already in (or going into) the cache: the prompt and every fed token.
    public var cachedCount: Int { prompt.count + max(0, generated.count - (pendingToken == nil ? 0 : 1)) }

    /// Samples from `logits` (the distribution after the last fed token) and returns what to emit.
    /// When this returns with `finishReason` set, the sequence is done (its last pieces are in the result).
    public mutating func advance(_ logits: UnsafeBufferPointer<Float>) -> [GeneratedToken] {
        guard finishReason == nil else { return [] }
        var chosen: Int32?
        do {   // the copies go out of scope before `history` grows (no copy of it)
            let masked = masked, grammar = grammar, tokenizer = tokenizer, history = history, count = generated.count
            chosen = scratch.withUnsafeMutableBufferPointer { buf in
                _ = buf.initialize(from: logits)
                for i in masked { buf[i] = -.infinity }
                guard let grammar else { return sampler.sample(buf, history: history, generatedCount: count) }
                let canEnd = grammar.canEnd && masked.isEmpty
                return sampler.sample(buf, history: history, generatedCount: count,
                                      allows: { tokenizer.isEndOfGeneration($0) ? canEnd : grammar.allows($0) },
                                      mask: {
                                          let m = grammar.mask()
                                          return { tokenizer.isEndOfGeneration($0) ? canEnd : m.contains($0) }
                                      })
            }
        }
        // No token can continue the grammar (its next bytes are in no token): the answer ends here.
        guard let id = chosen else { return finish(.stop) }
        var step = GeneratedToken(id: id, text: "", logprob: nil, topLogprobs: [])
        if parameters.logprobs {
            let (lp, top) = Sampler.logProbabilities(logits, chosen: id, top: parameters.topLogprobs)
            step.logprob = lp
            step.topLogprobs = top.map { (id: $0.0, logprob: $0.1) }
        }
        if tokenizer.isEndOfGeneration(id) { return finish(.stop) }
        grammar?.accept(id)
        generated.append(id)
        history.append(id)
        pendingToken = id
        let (emit, hitStop) = stops.feed(detok.append(id))
        step.text = emit
        text += emit
        if hitStop { return [step] + finish(.stop) }
        if grammar?.mustEnd == true { return [step] + finish(.stop) }   // complete, and nothing may follow
        if generated.count >= limit { return [step] + finish(.length) }
        return [step]
    }

    /// Marks the pending token as fed to the model.
    public mutating func fed() { pendingToken = nil }

    /// Ends the sequence (cancelled by its client, or for `reason`), flushing held-back text.
    public mutating func finish(_ reason: FinishReason) -> [GeneratedToken] {
        guard finishReason == nil else { return [] }
        finishReason = reason
        let tail = stops.finish(detok.flush(), stopped: reason == .stop && stops.matched)
        guard !tail.isEmpty else { return [] }
        text += tail
        return [GeneratedToken(id: -1, text: tail, logprob: nil, topLogprobs: [])]
    }
}

/// Runs prompt + decode loops on the calling thread (an engine thread), reporting each token.
public struct Generator {
    public let loaded: LoadedModel

    public init(_ loaded: LoadedModel) { self.loaded = loaded }

    /// Generates from `prompt` tokens. `onToken` returns false to cancel.
    public func generate(prompt: [Int32], parameters: GenerationParameters,
                         onToken: (GeneratedToken) -> Bool = { _ in true }) throws -> GenerationResult {
        let model = loaded.model
        var runner = try SequenceRunner(prompt: prompt, parameters: parameters, tokenizer: loaded.tokenizer, shape: model.shape)
        let t0 = monotonicSeconds()
        let adapters = try model.resolveAdapters(parameters.adapters)
        var logits = try model.forward(prompt, startingAt: 0, logits: .last, adapters: adapters)
        let t1 = monotonicSeconds()
        while runner.finishReason == nil {
            var keepGoing = true
            for step in runner.advance(logits) where keepGoing {
                keepGoing = onToken(step)
            }
            if !keepGoing {
                for step in runner.finish(.cancelled) { _ = onToken(step) }
                break
            }
            guard runner.finishReason == nil, let next = runner.pendingToken else { break }
            logits = try model.forward([next], startingAt: runner.cachedCount, logits: .last, adapters: adapters)
            runner.fed()
        }
        let t2 = monotonicSeconds()
        return GenerationResult(text: runner.text, tokens: runner.generated, promptTokenCount: prompt.count,
                                finishReason: runner.finishReason ?? .length,
                                promptSeconds: t1 - t0, generationSeconds: t2 - t1, seed: runner.seed)
    }
}

/// Holds back text that could be the start of a stop string; reports when one appears.
struct StopMatcher {
    let stops: [String]
    private var pending = ""
    private(set) var matched = false

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty } }

    /// Returns the text safe to emit, and whether a stop string was found (text before it is emitted).
    mutating func feed(_ piece: String) -> (String, Bool) {
        guard !stops.isEmpty else { return (piece, false) }
        pending += piece
        var earliest: String.Index?
        for s in stops {
            if let r = pending.firstRange(of: s), earliest.map({ r.lowerBound < $0 }) ?? true { earliest = r.lowerBound }
        }
        if let e = earliest {
            let out = String(pending[..<e])
            pending = ""
            matched = true
            return (out, true)
        }
        // keep the longest suffix that is a prefix of some stop string
        var keep = 0
        for s in stops {
            var n = min(s.count, pending.count)
            while n > 0 {
                if pending.hasSuffix(s.prefix(n)) { keep = max(keep, n); break }
                n -= 1
            }
        }
        let cut = pending.index(pending.endIndex, offsetBy: -keep)
        let out = String(pending[..<cut])
        pending = String(pending[cut...])
        return (out, false)
    }

    /// Flushes what is left at the end (nothing if a stop string ended generation).
    mutating func finish(_ tail: String, stopped: Bool) -> String {
        if stopped { return "" }
        let (out, hit) = feed(tail)
        if hit { return out }
        let rest = out + pending
        pending = ""
        return rest
    }
}

public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
