import Core
import Foundation
import Providers

/// How a conversation kept on the server is fitted to a model's context ("truncation: auto" on the Responses API,
/// every native `session`): each system message is kept; the rest is cut into turns, a turn being a user message and
/// what follows it up to the next user message (the answer, its tool calls and their outputs); the oldest turns go
/// first, until the prompt fits in the context less the room kept for the answer. The last turn — the one being
/// asked, with its tool loop — is never dropped: when it alone does not fit, the request is refused as too long
/// (`CoreError.contextTooLong`), never cut inside.
struct ContextWindow: Sendable {
    /// The model's context, in tokens.
    let context: Int
    /// Tokens kept free for the answer.
    let reserve: Int
    /// The prompt tokens of a list of messages on the model (its template applied).
    let count: @Sendable ([ChatMessage]) async throws -> Int

    /// The most prompt tokens allowed.
    var limit: Int { max(1, context - reserve) }

    /// What fitting did: the messages to send, and how many messages (and whole turns) were left out.
    struct Fitted: Sendable, Equatable {
        var messages: [ChatMessage]
        var droppedMessages: Int
        var droppedTurns: Int
        var promptTokens: Int
    }

    /// The room kept for the answer: the request's `max_tokens` when it sets one (at most half the context), else a
    /// quarter of the context, at most 1,024 tokens.
    static func reserve(context: Int, maxTokens: Int?) -> Int {
        if let maxTokens { return min(maxTokens, context / 2) }
        return min(1024, context / 4)
    }

    /// Where the messages may be cut: 0 (nothing dropped), then each user message after the first message that is
    /// not a system message; cutting at `c` drops every message before `c` that is not a system message.
    static func cuts(_ messages: [ChatMessage]) -> [Int] {
        guard let first = messages.firstIndex(where: { $0.role != .system }) else { return [0] }
        return [0] + messages.indices.filter { $0 > first && messages[$0].role == .user }
    }

    /// The messages with every non-system message before `cut` left out.
    static func keeping(_ messages: [ChatMessage], from cut: Int) -> [ChatMessage] {
        messages.enumerated().filter { $0.offset >= cut || $0.element.role == .system }.map(\.element)
    }

    /// Drops the fewest oldest turns that make the prompt fit (a binary search over the cuts: the count shrinks as
    /// turns go, so about log2(turns) counts are made).
    func fit(_ messages: [ChatMessage]) async throws -> Fitted {
        let cuts = Self.cuts(messages)
        var tokens: [Int: Int] = [:]
        func tokensKeeping(_ i: Int) async throws -> Int {
            if let t = tokens[i] { return t }
            let t = try await count(Self.keeping(messages, from: cuts[i]))
            tokens[i] = t
            return t
        }
        let last = cuts.count - 1
        let shortest = try await tokensKeeping(last)
        guard shortest <= limit else {
            throw CoreError.contextTooLong(needed: shortest + reserve, limit: context)
        }
        var lo = 0, hi = last
        while lo < hi {
            let mid = (lo + hi) / 2
            if try await tokensKeeping(mid) <= limit { hi = mid } else { lo = mid + 1 }
        }
        let kept = Self.keeping(messages, from: cuts[lo])
        return Fitted(messages: kept, droppedMessages: messages.count - kept.count, droppedTurns: lo,
                      promptTokens: try await tokensKeeping(lo))
    }
}

extension Backend {
    /// The window of `request`'s model when it is a local model (its context, loaded if needed, and its tokenizer and
    /// template to count); nil for a model served elsewhere, whose context is the upstream's to enforce.
    func contextWindow(for request: ChatRequest) async -> ContextWindow? {
        guard let context = try? await models.contextLength(of: request.model) else { return nil }
        let models = self.models
        return ContextWindow(context: context, reserve: ContextWindow.reserve(context: context, maxTokens: request.sampling.maxTokens)) { messages in
            var r = request
            r.messages = messages
            return try await models.countPromptTokens(r)
        }
    }
}
