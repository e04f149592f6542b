import Core
import Grammar

/// Splits a local model's output, as it streams, into text and tool calls in the syntax of its format. Text never
/// carries call markup: a piece that could begin a marker is held back until it is known not to. Calls get ids
/// (`call_…`, or the model's own where its format writes one) and indexes in order; in the formats written as one JSON
/// object per call (Hermes, Llama 3, Functionary v3.1, generic) the arguments stream as they are generated, the
/// others' calls arrive whole when their section closes. The same pieces result however the text is cut.
struct ToolCallParser {
    enum Piece: Equatable {
        case text(String)
        case call(ToolCallDelta)
    }

    let format: ToolCallFormat
    private let makeID: () -> String
    private var buffer = ""
    private var state: State
    private var index = -1
    /// Generic: inside `"tool_calls": [` (more call objects may follow the current one).
    private var genericList = false
    /// An id the model wrote before the call's name.
    private var pendingID: String?
    /// A call's name, held until its arguments begin (or its object closes without any), so that an answer cut off
    /// right after a name does not end with a call the model never wrote.
    private var pendingName: String?

    private enum State {
        case start
        case content
        /// A JSON call object, then (optionally) its end marker.
        case object(CallObjectScanner, end: String?)
        case endMarker(String)
        /// Functionary v3.1: the name after `<function=`, then the arguments until `</function>`.
        case functionName
        case functionArguments
        /// Text kept whole until `end` (or the end of the answer), then parsed as calls.
        case section(end: String?)
        /// Generic: the answer is one JSON object; `response` text streams decoded.
        case genericResponse(escape: String?)
        case genericCalls
        case genericRest
    }

    init(format: ToolCallFormat, makeID: @escaping () -> String = { "call_" + ToolCallParser.randomID() }) {
        self.format = format
        self.makeID = makeID
        state = .start
    }

    static func randomID() -> String {
        var rng = SystemRandomNumberGenerator()
        let chars = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return String((0..<24).map { _ in chars[Int(rng.next() % UInt64(chars.count))] })
    }

    /// Whether any call was found.
    var foundCalls: Bool { index >= 0 }

    mutating func feed(_ text: String) -> [Piece] {
        buffer += text
        return process(final: false)
    }

    /// The end of the answer: what was held back, as text or calls.
    mutating func finish() -> [Piece] { process(final: true) }

    // MARK: the loop

    private mutating func process(final: Bool) -> [Piece] {
        var out: [Piece] = []
        while true {
            let before = (buffer.utf8.count, stateTag)
            step(final: final, &out)
            if (buffer.utf8.count, stateTag) == before { break }
        }
        if final { flushFinal(&out) }
        return out
    }

    private var stateTag: Int {
        switch state {
        case .start: 0
        case .content: 1
        case .object(let s, _): 2 + s.raw.utf8.count * 16
        case .endMarker: 3
        case .functionName: 4
        case .functionArguments: 5
        case .section: 6
        case .genericResponse(let e): 7 + (e?.utf8.count ?? 0) * 16
        case .genericCalls: 8
        case .genericRest: 9
        }
    }

    private mutating func step(final: Bool, _ out: inout [Piece]) {
        switch state {
        case .start:
            let trimmed = buffer.drop { $0.isWhitespace }
            switch format {
            case .llama3:
                guard let first = trimmed.first else { return }
                if first == "{" {
                    buffer = String(trimmed)
                    state = .object(CallObjectScanner(), end: nil)
                } else {
                    state = .content
                }
            case .generic:
                guard !trimmed.isEmpty else { return }
                let compact = trimmed.filter { !$0.isWhitespace }
                if compact.hasPrefix("{\"response\":\"") {
                    // Drop through the opening quote of the response string.
                    guard let q = Self.nthQuote(trimmed, 3) else { return }
                    buffer = String(trimmed[trimmed.index(after: q)...])
                    state = .genericResponse(escape: nil)
                } else if compact.hasPrefix("{\"tool_call\":{") {
                    guard let brace = trimmed.dropFirst().firstIndex(of: "{") else { return }
                    buffer = String(trimmed[brace...])
                    state = .object(CallObjectScanner(), end: nil)
                } else if compact.hasPrefix("{\"tool_calls\":[") {
                    guard let bracket = trimmed.firstIndex(of: "[") else { return }
                    buffer = String(trimmed[trimmed.index(after: bracket)...])
                    genericList = true
                    state = .genericCalls
                } else if !Self.couldBecome(compact, ["{\"response\":\"", "{\"tool_call\":{", "{\"tool_calls\":["]) || final {
                    state = .content   // not the generic shape: shown as it is
                }
            case .functionaryV32:
                state = .section(end: nil)
            default:
                state = .content
            }
        case .content:
            contentStep(final: final, &out)
        case .object(var scanner, let end):
            let (outputs, consumed) = scanner.feed(Substring(buffer))
            buffer = String(buffer.unicodeScalars.dropFirst(consumed))
            emit(outputs, &out)
            switch scanner.status {
            case .running: state = .object(scanner, end: end)
            case .done:
                openPendingCall(&out)   // a call with no arguments at all
                if format == .generic { state = genericList ? .genericCalls : .genericRest } else if let end { state = .endMarker(end) } else { state = .content }
            case .invalid:
                if scanner.name == nil {
                    // Not a call after all: its text is text.
                    out.append(.text(scanner.raw))
                    state = .content
                } else {
                    state = .content
                }
            }
        case .endMarker(let end):
            let trimmed = buffer.drop { $0.isWhitespace }
            if trimmed.hasPrefix(end) {
                buffer = String(trimmed.dropFirst(end.count))
                state = .content
            } else if !end.hasPrefix(trimmed) || final {
                state = .content   // no end marker: what follows is text
            }
        case .functionName:
            guard let close = buffer.firstIndex(of: ">") else { return }
            index += 1
            out.append(.call(ToolCallDelta(index: index, id: makeID(), name: String(buffer[..<close]))))
            buffer = String(buffer[buffer.index(after: close)...])
            state = .functionArguments
        case .functionArguments:
            let end = "</function>"
            if let r = buffer.range(of: end) {
                let args = String(buffer[..<r.lowerBound])
                if !args.isEmpty { out.append(.call(ToolCallDelta(index: index, arguments: args))) }
                buffer = String(buffer[r.upperBound...])
                state = .content
            } else {
                let keep = Self.heldBack(buffer, [end])
                let cut = buffer.index(buffer.endIndex, offsetBy: -keep)
                if cut > buffer.startIndex {
                    out.append(.call(ToolCallDelta(index: index, arguments: String(buffer[..<cut]))))
                    buffer = String(buffer[cut...])
                }
            }
        case .section(let end):
            guard let end else { return }   // kept until the end of the answer
            guard let r = buffer.range(of: end) else { return }
            let body = String(buffer[..<r.lowerBound])
            buffer = String(buffer[r.upperBound...])
            sectionCalls(body, &out)
            state = .content
        case .genericResponse(let escape):
            genericResponseStep(escape, &out)
        case .genericCalls:
            let trimmed = buffer.drop { $0.isWhitespace || $0 == "," }
            guard let first = trimmed.first else { return }
            if first == "{" {
                buffer = String(trimmed)
                state = .object(CallObjectScanner(), end: nil)
            } else {
                buffer = ""
                state = .genericRest
            }
        case .genericRest:
            buffer = ""
        }
    }

    private mutating func contentStep(final: Bool, _ out: inout [Piece]) {
        let markers = format.startMarkers
        var earliest: (Range<String.Index>, String)?
        for m in markers {
            if let r = buffer.range(of: m), earliest.map({ r.lowerBound < $0.0.lowerBound }) ?? true { earliest = (r, m) }
        }
        if let (r, marker) = earliest {
            emitText(String(buffer[..<r.lowerBound]), beforeMarker: true, &out)
            buffer = String(buffer[r.upperBound...])
            begin(marker)
            return
        }
        let keep = final ? 0 : Self.heldBack(buffer, markers)
        let cut = buffer.index(buffer.endIndex, offsetBy: -keep)
        guard cut > buffer.startIndex else { return }
        let text = String(buffer[..<cut])
        // Whitespace after a call is held: dropped if another call or the end follows, sent if text does.
        if foundCalls, !final, text.allSatisfy(\.isWhitespace) { return }
        emitText(text, beforeMarker: false, &out)
        buffer = String(buffer[cut...])
    }

    private mutating func emitText(_ text: String, beforeMarker: Bool, _ out: inout [Piece]) {
        guard !text.isEmpty else { return }
        if foundCalls, beforeMarker || text.allSatisfy(\.isWhitespace), text.allSatisfy(\.isWhitespace) { return }
        out.append(.text(text))
    }

    /// Enters the state that a start marker opens.
    private mutating func begin(_ marker: String) {
        switch format {
        case .hermes:
            state = .object(CallObjectScanner(), end: "</tool_call>")
        case .llama3:
            state = .object(CallObjectScanner(), end: nil)
        case .functionaryV31:
            state = .functionName
        case .qwen3Coder:
            state = .section(end: "</tool_call>")
        case .mistralNemo:
            state = .section(end: nil)
        case .commandR7B:
            state = .section(end: "<|END_ACTION|>")
        case .deepSeekR1:
            state = .section(end: "<｜tool▁calls▁end｜>")
        case .functionaryV32, .generic:
            state = .section(end: nil)
        }
    }

    private mutating func emit(_ outputs: [CallObjectScanner.Output], _ out: inout [Piece]) {
        for o in outputs {
            switch o {
            case .name(let n):
                pendingName = n
            case .id(let id):
                pendingID = id
            case .arguments(let a):
                openPendingCall(&out)
                // Consecutive pieces of the same call's arguments go out as one.
                if case .call(var last)? = out.last, last.index == max(index, 0), last.id == nil, last.name == nil {
                    last.arguments += a
                    out[out.count - 1] = .call(last)
                } else {
                    out.append(.call(ToolCallDelta(index: max(index, 0), arguments: a)))
                }
            }
        }
    }

    /// The held call's first piece (its index, id and name).
    private mutating func openPendingCall(_ out: inout [Piece]) {
        guard let n = pendingName else { return }
        index += 1
        out.append(.call(ToolCallDelta(index: index, id: pendingID ?? makeID(), name: n)))
        pendingID = nil
        pendingName = nil
    }

    private mutating func genericResponseStep(_ escape: String?, _ out: inout [Piece]) {
        var text = ""
        var pending = escape
        var consumed = 0
        var ended = false
        for c in buffer.unicodeScalars {
            consumed += 1
            if var e = pending {
                e.unicodeScalars.append(c)
                if e.count == 2, e != "\\u" {
                    text += Self.unescape(e); pending = nil
                } else if e.hasPrefix("\\u"), e.count == 6 {
                    text += Self.unescape(e); pending = nil
                } else {
                    pending = e
                }
                continue
            }
            if c == "\\" { pending = "\\"; continue }
            if c == "\"" { ended = true; break }
            text.unicodeScalars.append(c)
        }
        buffer = String(buffer.unicodeScalars.dropFirst(consumed))
        if !text.isEmpty { out.append(.text(text)) }
        state = ended ? .genericRest : .genericResponse(escape: pending)
    }

    private static func unescape(_ e: String) -> String {
        if case .string(let s)? = try? OrderedJSON.parse("\"" + e + "\"") { return s }
        return ""
    }

    private mutating func flushFinal(_ out: inout [Piece]) {
        switch state {
        case .section:
            let body = buffer
            buffer = ""
            sectionCalls(body, &out)
        case .object(let scanner, _):
            // Cut off inside an object: a call without its arguments is dropped (the answer ends `length`). Where a
            // marker or the generic shape said a call comes, an object cut before its name is not text either; only
            // Llama 3's bare `{` may have been an answer in JSON.
            if scanner.name == nil, format == .llama3, !foundCalls { out.append(.text(scanner.raw)) }
            pendingName = nil
            pendingID = nil
            buffer = ""
        case .start, .content, .endMarker:
            if !buffer.isEmpty { out.append(.text(buffer)) }
            buffer = ""
        default:
            buffer = ""
        }
        state = .content
    }

    // MARK: whole sections

    /// Calls from a closed section (or the whole answer, for Functionary v3.2 and Mistral Nemo).
    private mutating func sectionCalls(_ body: String, _ out: inout [Piece]) {
        let (calls, text) = format.parseSection(body)
        if let text, !text.isEmpty { out.append(.text(text)) }
        for call in calls {
            index += 1
            out.append(.call(ToolCallDelta(index: index, id: call.id.isEmpty ? makeID() : call.id, name: call.name,
                                           arguments: call.arguments)))
        }
        if calls.isEmpty, text == nil, !body.isEmpty { out.append(.text(format.startMarkers.first.map { $0 + body } ?? body)) }
    }

    // MARK: helpers

    /// How many characters at the end of `text` could begin one of `markers`.
    static func heldBack(_ text: String, _ markers: [String]) -> Int {
        var keep = 0
        for m in markers {
            var n = min(m.count, text.count)
            while n > 0 {
                if text.hasSuffix(m.prefix(n)) { keep = max(keep, n); break }
                n -= 1
            }
        }
        return keep
    }

    static func couldBecome(_ compact: String, _ prefixes: [String]) -> Bool {
        prefixes.contains { $0.hasPrefix(compact) || compact.hasPrefix($0) }
    }

    /// The index of the `n`th double quote in `s` (1-based).
    static func nthQuote(_ s: Substring, _ n: Int) -> String.Index? {
        var seen = 0
        var i = s.startIndex
        while i < s.endIndex {
            if s[i] == "\"" { seen += 1; if seen == n { return i } }
            i = s.index(after: i)
        }
        return nil
    }
}
