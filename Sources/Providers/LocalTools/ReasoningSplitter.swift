/// Splits a model's reasoning (`<think>…</think>` at the start of its answer, as DeepSeek R1, Qwen3 and QwQ write
/// it) from the answer's text as it streams. A prompt that already opened the block (its generation prompt ends with
/// `<think>`) starts inside it. `<think>` later in an answer is text: only a leading block is reasoning.
struct ReasoningSplitter {
    enum Piece: Equatable {
        case text(String)
        case reasoning(String)
    }

    static let open = "<think>"
    static let close = "</think>"

    private enum State { case before, inside, separator, after }
    private var state: State
    private var buffer = ""

    init(startsInside: Bool) { state = startsInside ? .inside : .before }

    /// Whether a model's template writes reasoning blocks.
    static func applies(toTemplate template: String?) -> Bool {
        template.map { $0.contains(open) && $0.contains(close) } ?? false
    }

    /// Whether a rendered prompt ends inside an opened block.
    static func promptOpensBlock(_ prompt: String) -> Bool {
        String(prompt.reversed().drop { $0.isWhitespace }.reversed()).hasSuffix(open)
    }

    mutating func feed(_ text: String) -> [Piece] {
        buffer += text
        return drain(final: false)
    }

    mutating func finish() -> [Piece] { drain(final: true) }

    private mutating func drain(final: Bool) -> [Piece] {
        var out: [Piece] = []
        while true {
            switch state {
            case .before:
                let trimmed = buffer.drop { $0.isWhitespace }
                if trimmed.hasPrefix(Self.open) {
                    buffer = String(trimmed.dropFirst(Self.open.count))
                    state = .inside
                    continue
                }
                if !final, trimmed.isEmpty || Self.open.hasPrefix(trimmed) { return out }
                state = .after
                continue
            case .inside:
                if let r = buffer.range(of: Self.close) {
                    let thought = String(buffer[..<r.lowerBound])
                    if !thought.isEmpty { out.append(.reasoning(thought)) }
                    buffer = String(buffer[r.upperBound...])
                    state = .separator
                    continue
                }
                let keep = final ? 0 : ToolCallParser.heldBack(buffer, [Self.close])
                let cut = buffer.index(buffer.endIndex, offsetBy: -keep)
                if cut > buffer.startIndex {
                    out.append(.reasoning(String(buffer[..<cut])))
                    buffer = String(buffer[cut...])
                }
                return out
            case .separator:
                // The blank lines between the block and the answer belong to neither.
                buffer = String(buffer.drop { $0.isWhitespace })
                if buffer.isEmpty { return out }
                state = .after
                continue
            case .after:
                if !buffer.isEmpty { out.append(.text(buffer)); buffer = "" }
                return out
            }
        }
    }
}
