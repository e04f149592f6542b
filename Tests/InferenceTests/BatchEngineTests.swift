import GGUF
@testable import Inference
import Testing
import Tokenizers

/// A vocabulary of `size` tokens where token i reads "<i>" and `end` (if any) ends generation.
private struct NumberTokenizer: Tokenizer {
    func isControl(_ id: Int32) -> Bool { false }
    var vocabularySize: Int
    var end: Int32?
    var bosTokenID: Int32? { nil }
    var eosTokenID: Int32? { end }
    var addBOS: Bool { false }
    var addEOS: Bool { false }
    func encode(_ text: String, parseSpecial: Bool) -> [Int32] { [] }
    func tokenBytes(_ id: Int32) -> [UInt8] { Array("<\(id)>".utf8) }
    func tokenID(for text: String) -> Int32? { nil }
    func isEndOfGeneration(_ id: Int32) -> Bool { id == end }
}

@Suite struct BatchEngineTests {
    static let prompts: [[Int32]] = [[3, 17, 42, 5, 77, 1], [9, 63, 20, 11, 2, 8, 30, 4], [12, 13], [3, 17, 42, 5, 40]]

    /// What `Generator` (one sequence at a time, no batching) produces for each prompt, greedily.
    static func alone(_ file: GGUFFile, tokenizer: any Tokenizer, maxTokens: Int) throws -> [GenerationResult] {
        let model = try Architectures.load(file, options: ModelOptions(threads: 2))
        return try prompts.map { prompt in
            let runner = LoadedModelRunner(model: model, tokenizer: tokenizer)
            return try runner.generate(prompt, GenerationParameters(sampling: .greedy, maxTokens: maxTokens))
        }
    }

    /// Runs `events` into per-sequence token lists and results.
    struct Collected {
        var pieces: [Int: [GeneratedToken]] = [:]
        var results: [Int: Result<GenerationResult, InferenceError>] = [:]
        mutating func take(_ events: [BatchEngine.Event]) {
            for e in events {
                switch e {
                case .tokens(let id, let p):
                    #expect(results[id] == nil, "tokens of \(id) after its end")
                    pieces[id, default: []] += p
                case .finished(let id, let r):
                    #expect(results[id] == nil, "\(id) finished twice")
                    results[id] = r
                }
            }
        }
    }

    /// Four sequences batched together on two slots (two wait for a slot; prompts chunked beside decodes) generate
    /// exactly the tokens each generates alone, and every one ends once.
    @Test func batchedSequencesGenerateWhatEachGeneratesAlone() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(weightType: .q8_0))
        let tokenizer = NumberTokenizer(vocabularySize: 80)
        let expected = try Self.alone(file, tokenizer: tokenizer, maxTokens: 12)
        let model = try Architectures.load(file, options: ModelOptions(threads: 2, slots: 2))
        var engine = BatchEngine(model: model, tokenizer: tokenizer, tokenBudget: 5)
        var got = Collected()
        for (i, p) in Self.prompts.enumerated() {
            got.take(engine.submit(id: i, prompt: p, parameters: GenerationParameters(sampling: .greedy, maxTokens: 12)))
        }
        #expect(engine.activeCount == 0 && engine.waitingCount == 4)
        var steps = 0
        while !engine.isIdle, steps < 200 { got.take(engine.step()); steps += 1 }
        #expect(engine.isIdle)
        for i in Self.prompts.indices {
            let result = try #require(try got.results[i]?.get())
            #expect(result.tokens == expected[i].tokens, "sequence \(i)")
            #expect(result.finishReason == .length)
            #expect(got.pieces[i]?.map(\.id) == expected[i].tokens)
            #expect(result.text == tokenizer.decode(expected[i].tokens))
        }
    }

    /// A slot keeps its cache: the same prompt again reuses all but its last token and gives the same answer.
    @Test func aRepeatedPromptReusesTheSlotsCache() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(weightType: .q4_1))
        let model = try Architectures.load(file, options: ModelOptions(threads: 2, slots: 1))
        var engine = BatchEngine(model: model, tokenizer: NumberTokenizer(vocabularySize: 80))
        var results: [GenerationResult] = []
        for id in 0..<2 {
            var got = Collected()
            got.take(engine.submit(id: id, prompt: Self.prompts[1], parameters: GenerationParameters(sampling: .greedy, maxTokens: 6)))
            while !engine.isIdle { got.take(engine.step()) }
            results.append(try #require(try got.results[id]?.get()))
        }
        #expect(results[0].cachedPromptTokens == 0)
        #expect(results[1].cachedPromptTokens == Self.prompts[1].count - 1)
        #expect(results[1].tokens == results[0].tokens)
    }

    /// Cancelling ends a sequence at once as `.cancelled` and frees its slot for the one waiting; the others go on.
    @Test func cancellingEndsOneSequenceAndFreesItsSlot() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(weightType: .q8_0))
        let model = try Architectures.load(file, options: ModelOptions(threads: 2, slots: 1))
        var engine = BatchEngine(model: model, tokenizer: NumberTokenizer(vocabularySize: 80))
        var got = Collected()
        got.take(engine.submit(id: 7, prompt: Self.prompts[0], parameters: GenerationParameters(sampling: .greedy, maxTokens: 20)))
        got.take(engine.submit(id: 8, prompt: Self.prompts[2], parameters: GenerationParameters(sampling: .greedy, maxTokens: 3)))
        got.take(engine.step())
        got.take(engine.step())
        #expect(engine.activeCount == 1 && engine.waitingCount == 1)
        got.take(engine.cancel(id: 7))
        #expect(try got.results[7]?.get().finishReason == .cancelled)
        #expect(try got.results[7]?.get().tokens.count == 2)
        #expect(engine.cancel(id: 7).isEmpty)
        while !engine.isIdle { got.take(engine.step()) }
        #expect(try got.results[8]?.get().finishReason == .length)
        #expect(try got.results[8]?.get().tokens.count == 3)
    }

    /// A prompt the model cannot take ends with the engine's error at once; nothing is queued for it.
    @Test func aPromptTheModelCannotTakeEndsWithItsError() throws {
        let file = try GGUFFile(bytes: TinyModel.bytes(weightType: .q8_0))
        let model = try Architectures.load(file, options: ModelOptions(threads: 1))
        var engine = BatchEngine(model: model, tokenizer: NumberTokenizer(vocabularySize: 80))
        var got = Collected()
        got.take(engine.submit(id: 1, prompt: [], parameters: GenerationParameters()))
        got.take(engine.submit(id: 2, prompt: [Int32](repeating: 3, count: 64), parameters: GenerationParameters()))
        #expect(throws: InferenceError.emptyPrompt) { try got.results[1]?.get() }
        #expect(throws: InferenceError.contextOverflow(needed: 65, limit: 64)) { try got.results[2]?.get() }
        #expect(engine.isIdle)
        // an id outside the vocabulary fails the pass: the sequence in it ends with that error
        got.take(engine.submit(id: 3, prompt: [5, 500], parameters: GenerationParameters(maxTokens: 2)))
        got.take(engine.step())
        #expect(throws: InferenceError.invalidToken(500)) { try got.results[3]?.get() }
        #expect(engine.isIdle)
    }
}

/// One sequence at a time through `SequenceRunner` and the model's unbatched forward pass (what `Generator` does,
/// without needing a `LoadedModel` file on disk).
private struct LoadedModelRunner {
    let model: any LanguageModel
    let tokenizer: any Tokenizer
    func generate(_ prompt: [Int32], _ parameters: GenerationParameters) throws -> GenerationResult {
        var runner = try SequenceRunner(prompt: prompt, parameters: parameters, tokenizer: tokenizer, shape: model.shape)
        var logits = try model.forward(prompt, startingAt: 0, logits: .last)
        while runner.finishReason == nil {
            _ = runner.advance(logits)
            guard runner.finishReason == nil, let next = runner.pendingToken else { break }
            logits = try model.forward([next], startingAt: runner.cachedCount, logits: .last)
            runner.fed()
        }
        return GenerationResult(text: runner.text, tokens: runner.generated, promptTokenCount: prompt.count,
                                finishReason: runner.finishReason ?? .length, promptSeconds: 0, generationSeconds: 0, seed: runner.seed)
    }
}
