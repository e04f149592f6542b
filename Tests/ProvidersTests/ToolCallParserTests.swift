import Core
import Grammar
@testable import Providers
import Testing

/// Tool calls out of a local model's text, for every format, from the shapes llama.cpp's `tests/test-chat.cpp`
/// gives for each: the same text and calls result however the text is cut into pieces, and text never carries
/// call markup.
@Suite struct ToolCallParserTests {
    struct Result: Equatable {
        var text: String
        var calls: [ToolCall]
    }

    struct Case: CustomTestStringConvertible, Sendable {
        let format: ToolCallFormat
        let output: String
        let text: String
        /// name, arguments (JSON), id (nil: one the parser makes)
        let calls: [(String, String, String?)]
        var testDescription: String { "\(format.rawValue): \(output.prefix(40).debugDescription)" }
    }

    static let cases: [Case] = [
        Case(format: .hermes, output: "<tool_call>\n{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}</tool_call>",
             text: "", calls: [("special_function", #"{"arg1":1}"#, nil)]),
        Case(format: .hermes, output: "Hello, world!\nWhat's up?<tool_call>\n{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}\n</tool_call>\n<tool_call>\n{\"arguments\": {\"location\": \"Paris\"}, \"name\": \"get_weather\"}\n</tool_call>",
             text: "Hello, world!\nWhat's up?", calls: [("special_function", #"{"arg1":1}"#, nil), ("get_weather", #"{"location":"Paris"}"#, nil)]),
        Case(format: .hermes, output: "Just text, with < and <tool and a { brace.", text: "Just text, with < and <tool and a { brace.", calls: []),
        Case(format: .llama3, output: "{\"name\": \"special_function\", \"parameters\": {\"arg1\": 1}}",
             text: "", calls: [("special_function", #"{"arg1":1}"#, nil)]),
        Case(format: .llama3, output: "{\"a\": [1, {\"b\": 2}]} is JSON but no call", text: "{\"a\": [1, {\"b\": 2}]} is JSON but no call", calls: []),
        Case(format: .llama3, output: "Hello", text: "Hello", calls: []),
        Case(format: .mistralNemo, output: "[TOOL_CALLS][{\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}, \"id\": \"123456789\"}]",
             text: "", calls: [("special_function", #"{"arg1":1}"#, "123456789")]),
        Case(format: .mistralNemo, output: "Hi[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}, \"id\": \"abcdefghi\"}, {\"name\": \"b\", \"arguments\": {\"x\": \"y\"}, \"id\": \"ABCDEFGHI\"}]",
             text: "Hi", calls: [("a", "{}", "abcdefghi"), ("b", #"{"x":"y"}"#, "ABCDEFGHI")]),
        Case(format: .functionaryV31, output: "Sure<function=special_function>{\"arg1\": 1}</function><function=get_weather>{\"location\": \"Paris\"}</function>",
             text: "Sure", calls: [("special_function", #"{"arg1":1}"#, nil), ("get_weather", #"{"location":"Paris"}"#, nil)]),
        Case(format: .functionaryV32, output: "all\nHello, world!\nnono\nWhat's up?\n>>>special_function\n{\"arg1\": 1}\n",
             text: "Hello, world!\nnono\nWhat's up?", calls: [("special_function", #"{"arg1":1}"#, nil)]),
        Case(format: .functionaryV32, output: "python\n# This is a program:\nprint('hey')",
             text: "", calls: [("python", ##"{"code":"# This is a program:\nprint('hey')"}"##, nil)]),
        Case(format: .functionaryV32, output: "all\nHello, world!\nWhat's up?", text: "Hello, world!\nWhat's up?", calls: []),
        Case(format: .commandR7B, output: "<|START_ACTION|>[\n    {\"tool_call_id\": \"0\", \"tool_name\": \"special_function\", \"parameters\": {\"arg1\": 1}}\n]<|END_ACTION|>",
             text: "", calls: [("special_function", #"{"arg1":1}"#, "0")]),
        Case(format: .deepSeekR1, output: "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>special_function\n```json\n{\"arg1\": 1}\n```<｜tool▁call▁end｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n```json\n{\"location\": \"Paris\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>",
             text: "", calls: [("special_function", #"{"arg1":1}"#, nil), ("get_weather", #"{"location":"Paris"}"#, nil)]),
        Case(format: .qwen3Coder, output: "Let me check.<tool_call>\n<function=get_weather>\n<parameter=location>\nParis, France\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>",
             text: "Let me check.", calls: [("get_weather", #"{"location":"Paris, France","days":3}"#, nil)]),
        Case(format: .generic, output: "{\"tool_call\": {\"name\": \"special_function\", \"arguments\": {\"arg1\": 1}}}",
             text: "", calls: [("special_function", #"{"arg1":1}"#, nil)]),
        Case(format: .generic, output: "{\n  \"tool_calls\": [{\"name\": \"a\", \"arguments\": {\"x\": [1, 2]}}, {\"name\": \"b\", \"arguments\": {}}]\n}",
             text: "", calls: [("a", #"{"x":[1,2]}"#, nil), ("b", "{}", nil)]),
        Case(format: .generic, output: "{\n  \"response\": \"Hello, world!\\nWhat's up? \\\"Quoted\\\" \\u00e9\"\n}",
             text: "Hello, world!\nWhat's up? \"Quoted\" é", calls: []),
    ]

    /// Feeds `pieces` and returns the text and the joined calls (ids from a counter, so runs compare).
    static func run(_ format: ToolCallFormat, _ pieces: [String]) -> Result {
        var counter = 0
        var parser = ToolCallParser(format: format, makeID: { counter += 1; return "id\(counter)" })
        var text = ""
        var calls = ToolCallAccumulator()
        func take(_ out: [ToolCallParser.Piece]) {
            for p in out {
                switch p {
                case .text(let t): text += t
                case .call(let c): calls.add(c)
                }
            }
        }
        for p in pieces { take(parser.feed(p)) }
        take(parser.finish())
        return Result(text: text, calls: calls.calls)
    }

    /// An answer cut off by max_tokens inside a call (the answer then ends `length`): no markup reaches the text,
    /// and a call whose arguments never began is not made up. Every cut of the same answer gives the same result.
    @Test(arguments: [
        // The generic list, cut inside the second object before its name, then right after its name.
        (ToolCallFormat.generic, "{\n  \"tool_calls\": [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\n    \"name\": \"", "", ["a"]),
        (ToolCallFormat.generic, "{\n  \"tool_calls\": [{\"name\": \"a\", \"arguments\": {\"x\": 1}}, {\"name\": \"b\", \"argu", "", ["a"]),
        (ToolCallFormat.hermes, "Sure.<tool_call>\n{\"name\": \"get_weather\"", "Sure.", []),
        (ToolCallFormat.hermes, "Sure.<tool_call>\n{\"na", "Sure.", []),
        // Llama 3's bare `{` may have been an answer in JSON: cut before any name, it stays text.
        (ToolCallFormat.llama3, "{\"a\": [1, 2", "{\"a\": [1, 2", []),
    ])
    func anAnswerCutInsideACallLeavesNoMarkupAndNoMadeUpCall(_ format: ToolCallFormat, _ output: String, _ text: String, _ names: [String]) {
        for cut in [1, 3, 7, output.count] {
            let pieces = stride(from: 0, to: output.count, by: cut).map { i in
                String(Array(output)[i..<min(output.count, i + cut)])
            }
            let r = Self.run(format, pieces)
            #expect(r.text == text, "cut every \(cut)")
            #expect(r.calls.map(\.name) == names, "cut every \(cut)")
        }
    }

    static func randomPieces(_ s: String, _ rng: inout some RandomNumberGenerator) -> [String] {
        let chars = Array(s)
        var out: [String] = []
        var i = 0
        while i < chars.count {
            let n = Int.random(in: 1...6, using: &rng)
            out.append(String(chars[i..<min(chars.count, i + n)]))
            i += n
        }
        return out
    }

    @Test(arguments: cases)
    func callsAndTextWhateverTheChunking(_ c: Case) throws {
        let whole = Self.run(c.format, [c.output])
        #expect(whole.text == c.text)
        #expect(whole.calls.count == c.calls.count)
        for (got, want) in zip(whole.calls, c.calls) {
            #expect(got.name == want.0)
            #expect(try OrderedJSON.parse(got.arguments) == OrderedJSON.parse(want.1), "\(got.arguments)")
            if let id = want.2 { #expect(got.id == id) } else { #expect(got.id.hasPrefix("id")) }
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<40 {
            let pieces = Self.randomPieces(c.output, &rng)
            #expect(Self.run(c.format, pieces) == whole, "\(pieces)")
        }
        #expect(Self.run(c.format, c.output.map { String($0) }) == whole)
    }

    @Test func formatsAreDetectedFromTemplates() {
        #expect(ToolCallFormat.detect(template: "{% if tools %}<tool_call>{{ x }}</tool_call>{% endif %}") == .hermes)
        #expect(ToolCallFormat.detect(template: "<tool_call>\n<function={{n}}>\n<parameter={{k}}>") == .qwen3Coder)
        #expect(ToolCallFormat.detect(template: "<|start_header_id|>ipython<|end_header_id|>") == .llama3)
        #expect(ToolCallFormat.detect(template: "{{ '[TOOL_CALLS]' }}") == .mistralNemo)
        #expect(ToolCallFormat.detect(template: "<｜tool▁calls▁begin｜><tool_call>") == .deepSeekR1)
        #expect(ToolCallFormat.detect(template: "{{ '<|im_start|>' + message['role'] }}") == .generic)
        #expect(ToolCallFormat.detect(template: nil) == .generic)
    }

    /// Forced calls: the grammar of each format accepts a call to an offered tool with valid arguments and refuses
    /// a call to another tool or with arguments that break the schema.
    @Test func forcedCallGrammars() throws {
        let tools = [ToolDefinition(name: "get_weather", parametersJSON: #"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#),
                     ToolDefinition(name: "add", parametersJSON: #"{"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"integer"}},"required":["a","b"]}"#)]
        func accepts(_ gbnf: String, _ text: String) throws -> Bool {
            var m = GrammarMatcher(try Grammar(gbnf: gbnf))
            return m.accept(Array(text.utf8)) && m.canEnd
        }
        let hermes = try #require(try ToolCallFormat.hermes.grammar(tools: tools, choice: .required, parallel: false))
        #expect(try accepts(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"))
        #expect(try !accepts(hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"))
        #expect(try !accepts(hermes, "Sure! <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>"))
        let named = try #require(try ToolCallFormat.generic.grammar(tools: tools, choice: .function("add"), parallel: false))
        #expect(try accepts(named, #"{"tool_call": {"name": "add", "arguments": {"a": 1, "b": 2}}}"#))
        #expect(try !accepts(named, #"{"tool_call": {"name": "get_weather", "arguments": {"city": "x"}}}"#))
        #expect(try !accepts(named, #"{"response": "hi"}"#))
        let auto = try #require(try ToolCallFormat.generic.grammar(tools: tools, choice: .auto, parallel: true))
        #expect(try accepts(auto, #"{"response": "hi"}"#))
        #expect(try accepts(auto, #"{"tool_calls": [{"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "get_weather", "arguments": {"city": "Oslo"}}]}"#))
        #expect(try ToolCallFormat.hermes.grammar(tools: tools, choice: .auto, parallel: true) == nil)
        let nemo = try #require(try ToolCallFormat.mistralNemo.grammar(tools: tools, choice: .required, parallel: true))
        #expect(try accepts(nemo, #"[TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 2}, "id": "abcdefghi"}]"#))
        let llama = try #require(try ToolCallFormat.llama3.grammar(tools: tools, choice: .required, parallel: false))
        #expect(try accepts(llama, #"{"name": "add", "parameters": {"a": 1, "b": 2}}"#))
        #expect(try !accepts(llama, #"{"name": "add", "arguments": {"a": 1, "b": 2}}"#))
        let r7b = try #require(try ToolCallFormat.commandR7B.grammar(tools: tools, choice: .required, parallel: false))
        #expect(try accepts(r7b, #"<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "get_weather", "parameters": {"city": "Oslo"}}]<|END_ACTION|>"#))
        #expect(try !accepts(r7b, #"<|START_ACTION|>[{"tool_call_id": "x", "tool_name": "get_weather", "parameters": {"city": "Oslo"}}]<|END_ACTION|>"#))
        #expect(try !accepts(nemo, #"[TOOL_CALLS][{"name": "add", "arguments": {"a": 1, "b": 2}, "id": "short"}]"#))
        #expect(throws: GrammarError.unsupported("tool_choice 'required' with the qwen3-coder tool-call format")) {
            try ToolCallFormat.qwen3Coder.grammar(tools: tools, choice: .required, parallel: true)
        }
    }
}

/// Reasoning apart from the answer: a leading `<think>` block (or one the prompt opened) is reasoning, the rest is
/// text, however the output is cut.
@Suite struct ReasoningSplitterTests {
    static func run(_ pieces: [String], startsInside: Bool) -> (reasoning: String, text: String) {
        var s = ReasoningSplitter(startsInside: startsInside)
        var reasoning = "", text = ""
        for p in pieces.flatMap({ s.feed($0) }) + s.finish() {
            switch p {
            case .reasoning(let r): reasoning += r
            case .text(let t): text += t
            }
        }
        return (reasoning, text)
    }

    @Test(arguments: [
        ("<think>\nI should greet.\n</think>\n\nHello!", false, "\nI should greet.\n", "Hello!"),
        ("I should greet.</think>Hello!", true, "I should greet.", "Hello!"),
        ("Hello <think>not reasoning</think>", false, "", "Hello <think>not reasoning</think>"),
        ("  <think>a</think>b", false, "a", "b"),
        ("<thi", false, "", "<thi"),
        ("<think>cut off before the end", false, "cut off before the end", ""),
    ])
    func splitsWhateverTheChunking(_ output: String, _ inside: Bool, _ reasoning: String, _ text: String) {
        let whole = Self.run([output], startsInside: inside)
        #expect(whole.reasoning == reasoning && whole.text == text)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<30 {
            let pieces = ToolCallParserTests.randomPieces(output, &rng)
            let r = Self.run(pieces, startsInside: inside)
            #expect(r.reasoning == reasoning && r.text == text, "\(pieces)")
        }
    }

    @Test func promptsThatOpenTheBlock() {
        #expect(ReasoningSplitter.promptOpensBlock("<|im_start|>assistant\n<think>\n"))
        #expect(!ReasoningSplitter.promptOpensBlock("<|im_start|>assistant\n"))
        #expect(ReasoningSplitter.applies(toTemplate: "{{ '<think>' }}…{{ '</think>' }}"))
        #expect(!ReasoningSplitter.applies(toTemplate: "{{ '<|im_start|>' }}"))
    }
}
