import ArgumentParser
import Core
import Foundation
import GGUF
import Inference
import Kernels
import ModelStore
import Tokenizers

struct ModelOptionsGroup: ParsableArguments {
    @Argument(help: "Catalogue name, file name in the model directory, or path to a .gguf file or a Hugging Face model folder.")
    var model: String

    @Option(help: "How a Hugging Face folder of a chat model is stored once converted: none (its weights as they are), q8_0 (8-bit) or q4_k (4-bit K-quants; embeddings and rows that are not whole 256-value blocks in 8-bit).")
    var quantize: String = "none"

    @Option(name: .long, help: "Compute threads (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: ArgumentHelp("A LoRA adapter to apply: a GGUF adapter file (llama.cpp's convert_lora_to_gguf.py) or a PEFT folder (adapter_config.json + adapter_model.safetensors), with its scale as PATH:SCALE (default 1). Repeat to apply several together.", valueName: "path[:scale]"))
    var lora: [String] = []

    @Option(name: .customLong("ctx"), help: "Context length in tokens (default: the model's, at most 4096).")
    var contextLength: Int?

    func resolvedPath() throws -> String {
        do { return try ModelResolver.resolve(model).path } catch let e as ModelStoreError { throw CLIError(e.description) }
    }

    /// Threads and context within what the machine and the model allow.
    func check() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let c = contextLength, c < 16 { throw ValidationError("--ctx must be at least 16") }
        guard HuggingFaceConversion.Quantization(rawValue: quantize) != nil else { throw ValidationError("--quantize must be none, q8_0 or q4_k") }
        _ = try adapters()
    }

    /// `--lora PATH[:SCALE]` as adapter specifications (a scale only where what follows the last colon is a number).
    func adapters() throws -> [AdapterSpec] {
        try lora.map { text in
            if let colon = text.lastIndex(of: ":"), let scale = Float(text[text.index(after: colon)...]) {
                guard scale.isFinite else { throw ValidationError("--lora \(text): the scale must be a finite number") }
                return AdapterSpec(path: String(text[..<colon]), scale: scale)
            }
            return AdapterSpec(path: text)
        }
    }

    /// `--ctx` within the positions the model was trained on (read from its file before loading it).
    func checkContext(path: String) throws {
        guard let c = contextLength, let file = try? GGUFFile(path: path), let arch = file.string("general.architecture"),
              let trained = file.int("\(arch).context_length"), c > trained else { return }
        throw ValidationError("--ctx \(c) is more than the \(trained) positions \(model) was trained on")
    }

    func load(batch: Int = 512) throws -> LoadedModel {
        let path = try resolvedPath()
        try checkContext(path: path)
        let t0 = monotonicSeconds()
        var options = ModelOptions(contextLength: contextLength, threads: threads, batchSize: batch)
        options.quantize = HuggingFaceConversion.Quantization(rawValue: quantize) ?? .none
        options.adapters = try adapters()
        let url = URL(fileURLWithPath: path)
        if HuggingFaceConversion.isChat(url), HuggingFaceConversion.existingConversion(folder: url, quantize: options.quantize) == nil {
            note("converting \(url.lastPathComponent) for the engine (once; later loads reuse .converted/\(url.lastPathComponent)\(options.quantize == .none ? "" : "-" + options.quantize.rawValue).gguf)")
        }
        let loaded = try LoadedModel(path: path, options: options)
        note(String(format: "loaded %@ (%@, %d layers, ctx %d) in %.0f ms — kernels: %@, threads: %d",
                    (path as NSString).lastPathComponent, loaded.model.shape.architecture, loaded.model.shape.layerCount,
                    loaded.model.shape.contextLength, (monotonicSeconds() - t0) * 1000, CPUKernels.active.description,
                    threads ?? ThreadPool.availableCores))
        for (id, a) in loaded.model.adapters.enumerated() {
            note("adapter \(id): \(a.adapter.name) (LoRA rank \(a.adapter.rank), \(a.adapter.tensorCount) matrices) at scale \(a.scale)")
        }
        return loaded
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer one prompt, streaming the reply to stdout (without a prompt at a terminal: a chat).",
        discussion: """
        The prompt is the words after MODEL (joined by spaces), or standard input when it is `-` or when there are no \
        words and input comes from a pipe. It is sent as a chat turn through the model's chat format unless --raw is \
        given. Progress and timings go to stderr. With --server the prompt goes to a running server, and MODEL may be \
        any name it serves.
        """)

    @OptionGroup var options: ModelOptionsGroup
    @Argument(help: "The prompt (several words are joined; `-` reads standard input).") var prompt: [String] = []
    @OptionGroup var address: ServerAddress
    @Flag(help: "Send the prompt as raw text, without the chat template.") var raw = false
    @Option(help: "System prompt for the chat turn.") var system: String?
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Double = 0.8
    @Option(name: .customLong("top-k"), help: "Keep the k most likely tokens (0: all).") var topK: Int = 40
    @Option(name: .customLong("top-p"), help: "Nucleus sampling threshold (1: off).") var topP: Double = 0.95
    @Option(name: .customLong("min-p"), help: "Drop tokens less likely than min-p × the best (0: off).") var minP: Double = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Penalty for recently seen tokens (1: off).") var repeatPenalty: Double = 1.0
    @Option(name: .customLong("presence-penalty"), help: "Subtracted from the logit of every token already generated (0: off).")
    var presencePenalty: Double = 0
    @Option(name: .customLong("frequency-penalty"), help: "Subtracted once per earlier occurrence of a generated token (0: off).")
    var frequencyPenalty: Double = 0
    @Option(help: "Random seed (same seed and settings give the same text).") var seed: UInt64?
    @Option(name: [.customShort("n"), .customLong("max-tokens")], help: "Most tokens to generate.") var maxTokens: Int = 512
    @Option(help: "Stop before this text (repeatable, at most 4).") var stop: [String] = []
    @Flag(help: "Print timings to stderr when done.") var verbose = false

    /// The settings as the server would take them (and checked by its rule).
    var sampling: SamplingSettings {
        SamplingSettings(temperature: temperature, topP: topP, topK: topK, minP: minP, repeatPenalty: repeatPenalty,
                         presencePenalty: presencePenalty, frequencyPenalty: frequencyPenalty, seed: seed, maxTokens: maxTokens, stop: stop)
    }

    /// The command line's name of a setting the server names `field`.
    static func option(_ field: String) -> String {
        ["max_tokens": "-n/--max-tokens", "top_p": "--top-p", "top_k": "--top-k", "min_p": "--min-p", "repeat_penalty": "--repeat-penalty",
         "presence_penalty": "--presence-penalty", "frequency_penalty": "--frequency-penalty", "stop": "--stop"][field] ?? "--" + field
    }

    func validate() throws {
        if let (field, message) = sampling.problem { throw ValidationError("\(Self.option(field)) \(message)") }
        try options.check()
        if raw && address.named { throw ValidationError("--raw works on this machine only (a server takes chat turns)") }
    }

    /// The prompt: the words, or standard input.
    func promptText() throws -> String? {
        let fromInput = prompt == ["-"] || (prompt.isEmpty && isatty(STDIN_FILENO) == 0)
        if !fromInput && prompt.isEmpty { return nil }
        var text = fromInput ? String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self) : prompt.joined(separator: " ")
        if fromInput, text.hasSuffix("\n") { text.removeLast() }
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw ValidationError(fromInput ? "standard input held no prompt" : "the prompt is empty")
        }
        return text
    }

    func run() async throws {
        guard let prompt = try promptText() else {
            // `run MODEL` at a terminal, as Ollama's: a chat.
            let source = try await AnswerSource.open(model: options.model, address: address, threads: options.threads,
                                                     contextLength: options.contextLength)
            var session = ChatSession(source: source)
            session.system = system
            session.sampling = sampling
            try await session.loop()
            return
        }
        if address.named {
            let source = try await AnswerSource.open(model: options.model, address: address, threads: nil, contextLength: nil)
            let messages = (system.map { [ChatMessage(role: .system, content: $0)] } ?? []) + [ChatMessage(role: .user, content: prompt)]
            _ = try await source.answer(ChatRequest(model: options.model, messages: messages, sampling: sampling, stream: true))
            emit("\n")
            return
        }
        let loaded = try options.load()
        let text = raw ? prompt : try loaded.chat.render(
            (system.map { [PromptMessage(role: "system", content: $0)] } ?? []) + [PromptMessage(role: "user", content: prompt)])
        let ids = loaded.tokenize(text)
        var sampling = SamplingParameters()
        sampling.temperature = Float(temperature); sampling.topK = topK; sampling.topP = Float(topP); sampling.minP = Float(minP)
        sampling.repeatPenalty = Float(repeatPenalty); sampling.presencePenalty = Float(presencePenalty)
        sampling.frequencyPenalty = Float(frequencyPenalty); sampling.seed = seed
        let result = try Generator(loaded).generate(
            prompt: ids, parameters: GenerationParameters(sampling: sampling, maxTokens: maxTokens, stop: stop)) { step in
            emit(step.text)
            return true
        }
        emit("\n")
        let tg = result.generationSeconds > 0 ? Double(result.tokens.count) / result.generationSeconds : 0
        let pp = result.promptSeconds > 0 ? Double(result.promptTokenCount) / result.promptSeconds : 0
        if verbose {
            note(String(format: "prompt: %d tokens, %.1f tok/s · generated: %d tokens, %.1f tok/s · finish: %@ · seed %llu",
                        result.promptTokenCount, pp, result.tokens.count, tg, result.finishReason.rawValue, result.seed))
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how a model's tokenizer splits text.",
        discussion: "Special tokens such as <|im_start|> are parsed; no BOS is added.")

    @Argument(help: "Catalogue name, file name in the model directory, or path to a .gguf file.") var model: String
    @Argument(help: "Text to tokenize (or use --file).") var text: String?
    @Option(help: "Read the text from this file.") var file: String?
    @Flag(help: "Print only the ids, as a JSON array.") var ids = false

    func run() throws {
        let input: String
        if let file { input = try String(contentsOfFile: file, encoding: .utf8) }
        else if let text { input = text }
        else { throw ValidationError("give TEXT or --file FILE") }
        let gguf = try GGUFFile(path: try ModelResolver.resolve(model).path)
        let tokenizer = try TokenizerFactory.load(from: gguf)
        let out = tokenizer.encode(input, parseSpecial: true)
        if ids {
            print("[" + out.map(String.init).joined(separator: ", ") + "]")
        } else {
            for id in out {
                let piece = String(decoding: tokenizer.tokenBytes(id), as: UTF8.self)
                print("\(id)\t\(piece.debugDescription)")
            }
            note("\(out.count) tokens")
        }
    }
}

struct Perplexity: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure perplexity over a text file, as llama.cpp's perplexity tool does.",
        discussion: """
        The file is tokenized whole and cut into chunks of --ctx tokens; each chunk is evaluated from an empty \
        context and only its second half is scored. The last line is `PPL = <value>`.
        """)

    @OptionGroup var options: ModelOptionsGroup
    @Argument(help: "Text file.") var file: String

    func run() throws {
        let n = options.contextLength ?? 512
        guard n >= 16 else { throw ValidationError("--ctx must be at least 16") }
        var o = options
        o.contextLength = n
        let loaded = try o.load(batch: n)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let tokens = loaded.tokenize(text)
        let addBOS = loaded.tokenizer.addBOS ? loaded.tokenizer.bosTokenID : nil
        let chunks = tokens.count / n
        guard chunks > 0 else { throw CLIError("the file has \(tokens.count) tokens, fewer than one chunk of \(n)") }
        note("\(tokens.count) tokens, \(chunks) chunks of \(n)")
        let t0 = monotonicSeconds()
        let result = try PerplexityEvaluator.evaluate(loaded.model, tokens: tokens, context: n, bos: addBOS) { done, total, ppl in
            note(String(format: "[%d]%.4f", done, ppl), terminator: done == total ? "\n" : ",")
        }
        let ppl = result.perplexity
        note(String(format: "%d chunks, %d tokens scored in %.1f s; PPL = %.4f ± %.4f", result.chunks, result.scoredTokens,
                    monotonicSeconds() - t0, ppl, result.uncertainty))
        print(String(format: "PPL = %.4f", ppl))
    }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt and generation speed, like llama-bench.",
        discussion: """
        pp: one batch of -p random tokens from an empty context. tg: -n tokens generated one at a time from an empty \
        context. Each is run once to warm up, then --repetitions times; the median is reported.
        """)

    @OptionGroup var options: ModelOptionsGroup
    @Option(name: .customShort("p"), help: "Prompt tokens.") var promptTokens: Int = 512
    @Option(name: .customShort("n"), help: "Generated tokens.") var genTokens: Int = 128
    @Option(name: [.customShort("r"), .long], help: "Timed runs per test.") var repetitions: Int = 5
    @Flag(help: "Print one JSON object instead of a table.") var json = false

    func run() throws {
        var o = options
        o.contextLength = max(options.contextLength ?? 0, promptTokens + genTokens + 1)
        let loaded = try o.load(batch: max(1, promptTokens))
        let model = loaded.model
        var rng = SeededGenerator(seed: 42)
        let vocab = model.shape.vocabularySize
        let prompt = (0..<promptTokens).map { _ in Int32(rng.next() % UInt64(vocab)) }

        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }
        var pp: [Double] = [], tg: [Double] = []
        for rep in 0...max(1, repetitions) {
            if promptTokens > 0 {
                let t0 = monotonicSeconds()
                _ = try model.forward(prompt, startingAt: 0, logits: .last)
                if rep > 0 { pp.append(Double(promptTokens) / (monotonicSeconds() - t0)) }
            }
            if genTokens > 0 {
                var token = Int32(1)
                let t0 = monotonicSeconds()
                for i in 0..<genTokens {
                    let logits = try model.forward([token], startingAt: i, logits: .last)
                    token = Sampler.argmax(logits)
                }
                if rep > 0 { tg.append(Double(genTokens) / (monotonicSeconds() - t0)) }
            }
        }
        let threads = o.threads ?? ThreadPool.availableCores
        let ppv = pp.isEmpty ? 0 : median(pp), tgv = tg.isEmpty ? 0 : median(tg)
        if json {
            print(String(format: "{\"pp_tok_s\": %.2f, \"tg_tok_s\": %.2f, \"threads\": %d, \"pp\": %d, \"tg\": %d, \"kernels\": \"%@\"}",
                         ppv, tgv, threads, promptTokens, genTokens, CPUKernels.active.description))
        } else {
            print("| model | threads | test | t/s |")
            print("| --- | --- | --- | --- |")
            let name = (try? o.resolvedPath()).map { ($0 as NSString).lastPathComponent } ?? o.model
            if promptTokens > 0 { print(String(format: "| %@ | %d | pp%d | %.2f |", name, threads, promptTokens, ppv)) }
            if genTokens > 0 { print(String(format: "| %@ | %d | tg%d | %.2f |", name, threads, genTokens, tgv)) }
        }
    }
}
