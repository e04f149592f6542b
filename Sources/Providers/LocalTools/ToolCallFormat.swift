import Core
import Grammar

/// How a local model writes tool calls, chosen from its chat template the way llama.cpp chooses (the first match in
/// this order): DeepSeek R1, Command R7B, Qwen3-Coder's XML, Hermes 2 Pro / Qwen 2.5, Functionary v3.2, Functionary
/// v3.1, Llama 3.x, Mistral Nemo; a template with none of their markers gets the generic format (the whole answer is
/// one JSON object, always constrained, with the tools described in a system message).
enum ToolCallFormat: String, Sendable, CaseIterable {
    case deepSeekR1 = "deepseek-r1"
    case commandR7B = "command-r7b"
    case qwen3Coder = "qwen3-coder"
    case hermes
    case functionaryV32 = "functionary-v3.2"
    case functionaryV31 = "functionary-v3.1"
    case llama3
    case mistralNemo = "mistral-nemo"
    case generic

    static func detect(template: String?) -> ToolCallFormat {
        guard let t = template else { return .generic }
        if t.contains("<｜tool▁calls▁begin｜>") { return .deepSeekR1 }
        if t.contains("<|END_THINKING|><|START_ACTION|>") { return .commandR7B }
        if ["<tool_call>", "<function=", "<parameter="].allSatisfy(t.contains) { return .qwen3Coder }
        if t.contains("<tool_call>") { return .hermes }
        if t.contains(">>>all") { return .functionaryV32 }
        if t.contains("<|start_header_id|>"), t.contains("<function=") { return .functionaryV31 }
        if t.contains("<|start_header_id|>ipython<|end_header_id|>") { return .llama3 }
        if t.contains("[TOOL_CALLS]") { return .mistralNemo }
        return .generic
    }

    /// Text that opens a call (or a section of calls) in an answer.
    var startMarkers: [String] {
        switch self {
        case .deepSeekR1: ["<｜tool▁calls▁begin｜>"]
        case .commandR7B: ["<|START_ACTION|>"]
        case .qwen3Coder, .hermes: ["<tool_call>"]
        case .functionaryV32: []
        case .functionaryV31: ["<function="]
        case .llama3: ["<|python_tag|>"]
        case .mistralNemo: ["[TOOL_CALLS]"]
        case .generic: []
        }
    }

    // MARK: sections written whole

    /// Calls in a section's text (after its start marker, before its end marker), and text that is not part of a
    /// call (nil when the section is not in this format's shape: it is then shown as text).
    func parseSection(_ body: String) -> ([ToolCall], String?) {
        switch self {
        case .mistralNemo, .commandR7B:
            guard case .array(let items)? = try? OrderedJSON.parse(body.trimmingWhitespace) else { return ([], nil) }
            var calls: [ToolCall] = []
            for item in items {
                guard let call = Self.callFromObject(item) else { return ([], nil) }
                calls.append(call)
            }
            return (calls, "")
        case .deepSeekR1:
            var calls: [ToolCall] = []
            for part in body.components(separatedBy: "<｜tool▁call▁begin｜>").dropFirst() {
                // `function<｜tool▁sep｜>NAME\n```json\nARGS\n```<｜tool▁call▁end｜>`
                guard let sep = part.range(of: "<｜tool▁sep｜>") else { return ([], nil) }
                let rest = part[sep.upperBound...]
                let name = rest.prefix { $0 != "\n" }
                var args = String(rest.dropFirst(name.count))
                if let end = args.range(of: "<｜tool▁call▁end｜>") { args = String(args[..<end.lowerBound]) }
                args = args.trimmingWhitespace
                if args.hasPrefix("```json") { args = String(args.dropFirst(7)) } else if args.hasPrefix("```") { args = String(args.dropFirst(3)) }
                if args.hasSuffix("```") { args = String(args.dropLast(3)) }
                calls.append(ToolCall(id: "", name: String(name).trimmingWhitespace, arguments: Self.normalized(args)))
            }
            return (calls, "")
        case .qwen3Coder:
            guard let f = body.range(of: "<function="), let close = body[f.upperBound...].firstIndex(of: ">") else { return ([], nil) }
            let name = String(body[f.upperBound..<close])
            var members: [(String, OrderedJSON)] = []
            var rest = body[body.index(after: close)...]
            while let p = rest.range(of: "<parameter=") {
                guard let gt = rest[p.upperBound...].firstIndex(of: ">") else { break }
                let key = String(rest[p.upperBound..<gt])
                let valueStart = rest.index(after: gt)
                let end = rest[valueStart...].range(of: "</parameter>")?.lowerBound ?? rest.endIndex
                var raw = String(rest[valueStart..<end])
                if raw.hasPrefix("\n") { raw.removeFirst() }
                if raw.hasSuffix("\n") { raw.removeLast() }
                // Strings are written raw; anything that reads as JSON (numbers, objects, true…) is that value.
                let value: OrderedJSON = (try? OrderedJSON.parse(raw)) ?? .string(raw)
                members.append((key, value))
                rest = rest[(end == rest.endIndex ? end : rest.index(end, offsetBy: "</parameter>".count))...]
            }
            return ([ToolCall(id: "", name: name, arguments: OrderedJSON.object(members).text)], "")
        case .functionaryV32:
            // `NAME\n{…}` blocks separated by `>>>`; the recipient `all` is text.
            var calls: [ToolCall] = []
            var text = ""
            for block in body.components(separatedBy: ">>>") where !block.isEmpty {
                let name = block.prefix { $0 != "\n" }
                let content = block.dropFirst(name.count).drop { $0 == "\n" }
                if name == "all" { text += content.hasSuffix("\n") ? String(content.dropLast()) : String(content); continue }
                guard !name.isEmpty, !name.contains(" ") else { text += block; continue }
                let args = String(content).trimmingWhitespace
                calls.append(ToolCall(id: "", name: String(name), arguments: name == "python" && (try? OrderedJSON.parse(args)) == nil
                                      ? OrderedJSON.object([("code", .string(args))]).text : Self.normalized(args)))
            }
            return (calls, text)
        case .generic, .hermes, .llama3, .functionaryV31:
            return ([], nil)
        }
    }

    /// A call from a JSON object with the key names the formats use.
    static func callFromObject(_ o: OrderedJSON) -> ToolCall? {
        guard case .string(let name)? = o["name"] ?? o["tool_name"] else { return nil }
        var args = "{}"
        if let a = o["arguments"] ?? o["parameters"] {
            if case .string(let s) = a { args = normalized(s) } else { args = a.text }
        }
        var id = ""
        switch o["id"] ?? o["tool_call_id"] {
        case .string(let s)?: id = s
        case .number(_, let t)?: id = t
        default: break
        }
        return ToolCall(id: id, name: name, arguments: args)
    }

    /// Arguments' JSON text as written, compacted when it parses.
    static func normalized(_ text: String) -> String {
        (try? OrderedJSON.parse(text))?.text ?? text
    }

    // MARK: prompt and grammar

    /// The system message the generic format adds: the tools and the answer's JSON shape.
    static func genericInstruction(_ tools: [ToolDefinition], choice: ToolChoice, parallel: Bool) -> String {
        var lines = ["You can call these tools:"]
        for t in tools {
            var line = "- \(t.name)"
            if let d = t.description, !d.isEmpty { line += ": \(d)" }
            if let p = t.parametersJSON { line += " Parameters (JSON Schema): \(p)" }
            lines.append(line)
        }
        let call = parallel ? #"{"tool_calls": [{"name": "<tool name>", "arguments": {…}}]}"# : #"{"tool_call": {"name": "<tool name>", "arguments": {…}}}"#
        switch choice {
        case .required, .function:
            lines.append("Respond with a JSON object that calls a tool: \(call)")
        default:
            lines.append("Respond in JSON: either \(call) to call a tool, or {\"response\": \"<your answer>\"} to answer directly.")
        }
        return lines.joined(separator: "\n")
    }

    /// The grammar an answer in this format must follow, or nil when the answer is free (tool choice `auto` in a
    /// format with markers: the model decides and the parser finds the calls). `required` and a named function force
    /// calls to the request's tools, with arguments that follow each tool's schema.
    func grammar(tools: [ToolDefinition], choice: ToolChoice, parallel: Bool) throws(GrammarError) -> String? {
        let forced: Bool
        switch choice {
        case .none: return nil
        case .auto: forced = false
        case .required, .function: forced = true
        }
        if !forced && self != .generic { return nil }
        var offered = tools
        if case .function(let name) = choice { offered = tools.filter { $0.name == name } }
        var g = JSONSchemaGrammar()
        let ws = g.primitiveRule("ws")
        /// A JSON object of these keys, in this order, whose values follow the given GBNF expressions.
        func object(_ members: [(key: String, value: String)]) -> String {
            let body = members.map { "\(JSONSchemaGrammar.gbnfString(OrderedJSON.quoted($0.key))) \(ws) \":\" \(ws) \($0.value) \(ws)" }
            return "\"{\" \(ws) " + body.joined(separator: " \",\" \(ws) ") + " \"}\""
        }
        var alternatives: [String] = []
        for (i, tool) in offered.enumerated() {
            let params: OrderedJSON = try tool.parametersJSON.map { json throws(GrammarError) in try OrderedJSON.parse(json) }
                ?? .object([("type", .string("object"))])
            let args = try g.expression(for: params, name: "args-\(i)")
            let name = JSONSchemaGrammar.gbnfString(OrderedJSON.quoted(tool.name))
            switch self {
            case .functionaryV31:
                alternatives.append("\"<function=\" \(JSONSchemaGrammar.gbnfString(tool.name)) \">\" \(args) \"</function>\"")
            case .commandR7B:
                alternatives.append(object([("tool_call_id", #""\"" [0-9]{1,3} "\"""#), ("tool_name", name), ("parameters", args)]))
            case .mistralNemo:
                alternatives.append(object([("name", name), ("arguments", args), ("id", #""\"" [a-zA-Z0-9]{9} "\"""#)]))
            case .llama3:
                alternatives.append(object([("name", name), ("parameters", args)]))
            case .deepSeekR1:
                alternatives.append("\"<｜tool▁call▁begin｜>function<｜tool▁sep｜>\" \(JSONSchemaGrammar.gbnfString(tool.name)) \"\\n```json\\n\" \(args) \"\\n```<｜tool▁call▁end｜>\"")
            case .qwen3Coder, .functionaryV32:
                throw .unsupported("tool_choice '\(choice)' with the \(rawValue) tool-call format")
            case .hermes, .generic:
                alternatives.append(object([("name", name), ("arguments", args)]))
            }
        }
        guard !alternatives.isEmpty else { return nil }
        let call = "call ::= " + alternatives.joined(separator: " | ")
        let root: String
        switch self {
        case .hermes:
            let one = "\"<tool_call>\\n\" call \"\\n</tool_call>\""
            root = parallel ? "\(one) (\"\\n\" \(one))*" : one
        case .llama3:
            root = "call"
        case .mistralNemo:
            root = parallel ? "\"[TOOL_CALLS][\" call (\",\" \(ws) call)* \"]\"" : "\"[TOOL_CALLS][\" call \"]\""
        case .commandR7B:
            root = parallel ? "\"<|START_ACTION|>[\" call (\",\" \(ws) call)* \"]<|END_ACTION|>\"" : "\"<|START_ACTION|>[\" call \"]<|END_ACTION|>\""
        case .functionaryV31:
            root = parallel ? "call+" : "call"
        case .deepSeekR1:
            root = parallel ? "\"<｜tool▁calls▁begin｜>\" call+ \"<｜tool▁calls▁end｜>\"" : "\"<｜tool▁calls▁begin｜>\" call \"<｜tool▁calls▁end｜>\""
        case .qwen3Coder, .functionaryV32:
            return nil   // unreachable: refused above
        case .generic:
            let calls = parallel
                ? "\"{\" \(ws) \"\\\"tool_calls\\\"\" \(ws) \":\" \(ws) \"[\" \(ws) call (\",\" \(ws) call)* \(ws) \"]\" \(ws) \"}\""
                : "\"{\" \(ws) \"\\\"tool_call\\\"\" \(ws) \":\" \(ws) call \(ws) \"}\""
            let string = g.primitiveRule("string")
            let response = "\"{\" \(ws) \"\\\"response\\\"\" \(ws) \":\" \(ws) \(string) \(ws) \"}\""
            root = forced ? calls : "\(calls) | \(response)"
        }
        return "root ::= \(root)\n\(call)\n" + g.gbnfRules
    }
}

extension StringProtocol {
    var trimmingWhitespace: String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
