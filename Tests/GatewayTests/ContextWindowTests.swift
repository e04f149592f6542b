import Core
@testable import Gateway
import Grammar
import Synchronization
import Testing

/// Fitting a kept conversation to a model's context: the fewest oldest turns go, system messages and the turn being
/// asked (with its tool loop) always stay, and a last turn that cannot fit is refused rather than cut; the
/// conversation items that record canonical messages read back as the same messages.
@Suite struct ContextWindowTests {
    /// A stand-in for the model's tokenizer: one token per character of content, plus 3 per message.
    static func tokens(_ messages: [ChatMessage]) -> Int { messages.reduce(0) { $0 + $1.content.count + 3 } }

    final class Counter: Sendable { let n = Mutex(0) }

    func window(context: Int, reserve: Int = 0, counts: Counter? = nil) -> ContextWindow {
        ContextWindow(context: context, reserve: reserve) { messages in
            counts?.n.withLock { $0 += 1 }
            return Self.tokens(messages)
        }
    }

    static let system = ChatMessage(role: .system, content: "Be brief.")
    /// Five turns of 2 messages, each message 10 characters (13 tokens), after a 12-token system message.
    static var conversation: [ChatMessage] {
        [system] + (1...5).flatMap { i in
            [ChatMessage(role: .user, content: "question\(i)\(i)"), ChatMessage(role: .assistant, content: "answer.\(i)\(i)\(i)")]
        }
    }

    @Test func aConversationThatFitsIsSentWhole() async throws {
        let all = Self.conversation
        let fitted = try await window(context: Self.tokens(all)).fit(all)
        #expect(fitted.messages == all)
        #expect(fitted.droppedMessages == 0 && fitted.droppedTurns == 0)
        #expect(fitted.promptTokens == Self.tokens(all))
    }

    @Test(arguments: [0, 1, 25, 26, 27, 52, 77, 90])
    func theFewestOldestTurnsGoAndTheSystemMessageStays(short: Int) async throws {
        let all = Self.conversation
        let total = Self.tokens(all)   // 12 + 10 × 13 = 142; each turn is 26
        let fitted = try await window(context: total - short + 10, reserve: 10).fit(all)
        let turns = (short + 25) / 26
        #expect(fitted.droppedTurns == turns)
        #expect(fitted.droppedMessages == 2 * turns)
        #expect(fitted.messages == [Self.system] + Array(all.dropFirst(1 + 2 * turns)))
        #expect(fitted.promptTokens == total - 26 * turns)
        #expect(fitted.promptTokens <= total - short)
    }

    @Test func aLastTurnThatCannotFitIsRefusedNotCut() async throws {
        let all = Self.conversation
        // The system message and the last turn need 38; 37 leaves no way to fit.
        await #expect(throws: CoreError.contextTooLong(needed: 38 + 5, limit: 37 + 5)) {
            try await window(context: 37 + 5, reserve: 5).fit(all)
        }
        let fitted = try await window(context: 38 + 5, reserve: 5).fit(all)
        #expect(fitted.messages == [Self.system] + all.suffix(2))
    }

    @Test func aToolLoopStaysWithTheQuestionThatStartedIt() async throws {
        let call = ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Oslo"}"#)
        let all = Self.conversation + [
            ChatMessage(role: .user, content: "weather?"),
            ChatMessage(role: .assistant, content: "", toolCalls: [call]),
            ChatMessage(role: .tool, content: "cold", toolCallID: "call_1"),
        ]
        // Room for the system message and the last turn only: every earlier turn goes, the call and its output stay.
        let needed = Self.tokens([Self.system] + all.suffix(3))
        let fitted = try await window(context: needed).fit(all)
        #expect(fitted.messages == [Self.system] + all.suffix(3))
        #expect(fitted.droppedTurns == 5)
    }

    @Test func systemMessagesAnywhereAreKept() async throws {
        var all = Self.conversation
        all.insert(ChatMessage(role: .system, content: "Mid-way rule."), at: 3)
        let fitted = try await window(context: Self.tokens(all) - 26).fit(all)
        #expect(fitted.messages.filter { $0.role == ChatMessage.Role.system }.count == 2)
        #expect(fitted.droppedTurns == 1)
    }

    @Test func countsGrowAsTheLogarithmOfTheTurns() async throws {
        let long = [Self.system] + (1...64).flatMap { i in
            [ChatMessage(role: .user, content: "question\(i)"), ChatMessage(role: .assistant, content: "answer\(i)")]
        }
        let counts = Counter()
        _ = try await window(context: Self.tokens(long) / 2, counts: counts).fit(long)
        #expect(counts.n.withLock { $0 } <= 2 + 7, "one count of the shortest, ⌈log2(65)⌉ of the search, one of the result at most")
    }

    @Test func theReserveIsMaxTokensOrAQuarterOfTheContext() {
        #expect(ContextWindow.reserve(context: 2048, maxTokens: nil) == 512)
        #expect(ContextWindow.reserve(context: 8192, maxTokens: nil) == 1024)
        #expect(ContextWindow.reserve(context: 2048, maxTokens: 100) == 100)
        #expect(ContextWindow.reserve(context: 2048, maxTokens: 5000) == 1024)
    }

    @Test func conversationItemsReadBackAsTheMessagesTheyRecord() throws {
        let call = ToolCall(id: "call_1", name: "weather", arguments: #"{"city":"Oslo"}"#)
        let messages = [
            ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "weather in Oslo?"),
            ChatMessage(role: .assistant, content: "Checking.", toolCalls: [call]),
            ChatMessage(role: .tool, content: "cold", toolCallID: "call_1"), ChatMessage(role: .assistant, content: "It is cold."),
        ]
        let items = ConversationsSurface.items(of: messages)
        #expect(items.map { $0["type"]?.stringValue } == ["message", "message", "message", "function_call", "function_call_output", "message"])
        #expect(items.allSatisfy { $0["status"]?.stringValue == "completed" && $0["id"]?.stringValue != nil })
        #expect(try ResponsesRequest.messages(instructions: nil, items: items) == messages)
    }

    @Test func sessionIDsAreKeyedByOwnerAndName() {
        let a = ConversationsSurface.sessionID(owner: "alice", session: "support")
        #expect(a == ConversationsSurface.sessionID(owner: "alice", session: "support"))
        #expect(a != ConversationsSurface.sessionID(owner: "bob", session: "support"))
        #expect(a != ConversationsSurface.sessionID(owner: nil, session: "support"))
        #expect(a != ConversationsSurface.sessionID(owner: "alice", session: "support2"))
        #expect(a.hasPrefix("conv_") && a.count == 45)
    }

    @Test func conversationAndTruncationOnResponsesAreRead() throws {
        let r = try ResponsesRequest(try OrderedJSON.parse(#"{"model": "m", "input": "hi", "conversation": {"id": "conv_1"}, "truncation": "auto"}"#))
        #expect(r.conversationID == "conv_1" && r.truncate)
        #expect(r.echo.contains { $0.0 == "conversation" && $0.1 == .object([("id", .string("conv_1"))]) })
        #expect(try ResponsesRequest(try OrderedJSON.parse(#"{"model": "m", "input": "hi", "conversation": "conv_2"}"#)).conversationID == "conv_2")
    }
}
