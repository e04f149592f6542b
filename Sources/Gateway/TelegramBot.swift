import AsyncHTTPClient
import Core
import Crypto
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Registry
import Storage
import Synchronization

/// The Telegram Bot API, as far as the bots use it, with Telegram's 429 `retry_after` honoured. The token is part of
/// every URL: nothing here logs a URL.
struct TelegramBotAPI: Sendable {
    let base: String
    let token: String

    enum Failure: Error, CustomStringConvertible {
        case refused(code: Int, description: String)
        case unreadable(String)
        var description: String {
            switch self {
            case .refused(let code, let d): "the Bot API refused (\(code)): \(d)"
            case .unreadable(let d): "the Bot API's answer could not be read: \(d)"
            }
        }
    }

    /// Calls `method` with `body`; a 429 is tried again after its `retry_after` (at most 60 s each, `attempts` in all).
    @discardableResult
    func call(_ method: String, _ body: OrderedJSON, attempts: Int = 4) async throws -> OrderedJSON {
        var attempt = 0
        while true {
            attempt += 1
            var request = HTTPClientRequest(url: "\(base)/bot\(token)/\(method)")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.text))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            let data = try await response.body.collect(upTo: 1 << 20)
            guard let json = try? OrderedJSON.parse(String(buffer: data), maxDepth: 64) else {
                throw Failure.unreadable("HTTP \(response.status.code), not JSON")
            }
            if json["ok"] == .bool(true) { return json["result"] ?? .null }
            let code = json["error_code"].flatMap(Self.int) ?? Int(response.status.code)
            let description = json["description"]?.stringValue ?? "HTTP \(response.status.code)"
            if code == 429, attempt < attempts {
                let wait = min(60, max(1, json["parameters"]?["retry_after"].flatMap(Self.int) ?? 1))
                try await Task.sleep(for: .seconds(wait))
                continue
            }
            throw Failure.refused(code: code, description: description)
        }
    }

    static func int(_ v: OrderedJSON) -> Int? {
        if case .number(let n, _) = v, n == n.rounded(), abs(n) < 1e15 { return Int(n) }
        return nil
    }
}

/// One Telegram bot (`telegram:` in the registry) at `POST /api/v1/webhooks/telegram/{name}`.
///
/// Telegram's request is checked (`X-Telegram-Bot-Api-Secret-Token`, compared in constant time) and answered at once;
/// each chat's messages are then handled in order, one at a time: commands (`/start`, `/help`, `/model [NAME]`,
/// `/reset`), or a turn answered by the chat's model through the server's own routes with the chat's memory (a native
/// session, kept in the server's database), the reply sent as Telegram HTML in pieces of at most 4,096 characters
/// with "typing…" shown meanwhile. Chats outside `allowed_chats` are ignored; a chat past `requests_per_minute` is
/// told to wait; an update Telegram sends twice is handled once.
final class TelegramBot: Sendable {
    let declaration: TelegramBotDeclaration
    let api: TelegramBotAPI
    private let secretToken: [UInt8]
    private let conversations: ConversationStore?
    private let responder: Mutex<(@Sendable (Request, GatewayContext) async throws -> Response)?> = Mutex(nil)
    private let logger = Logger(label: "switchyard.telegram")

    private struct Chat {
        var tail: Task<Void, Never>?
        /// Messages queued or being handled.
        var pending = 0
        var tokens: Double
        var refilled: ContinuousClock.Instant
        var toldToWait = false
        /// The model chosen with /model when the server keeps no database (with one, it is the session's).
        var model: String?
    }
    private struct State {
        var chats: [Int64: Chat] = [:]
        var recentUpdates: Set<Int64> = []
        var updateOrder: [Int64] = []
    }
    private let state = Mutex(State())

    init(declaration: TelegramBotDeclaration, token: String, secretToken: String, conversations: ConversationStore?) {
        self.declaration = declaration
        api = TelegramBotAPI(base: declaration.apiBase, token: token)
        self.secretToken = Array(secretToken.utf8)
        self.conversations = conversations
    }

    /// The routes a turn runs through (set once the server's routes are built).
    func attach(_ respond: @escaping @Sendable (Request, GatewayContext) async throws -> Response) {
        responder.withLock { $0 = respond }
    }

    /// Telegram's secret token: 1 to 256 of letters, digits, `_` and `-`.
    static func validSecret(_ s: String) -> Bool {
        (1...256).contains(s.utf8.count) && s.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || (48...57).contains($0)
            || (65...90).contains($0) || (97...122).contains($0) }
    }

    func accepts(secret presented: String?) -> Bool {
        guard let presented else { return false }
        let given = Array(presented.utf8)
        // Constant time over the expected length, whatever was presented.
        var diff = UInt8(given.count == secretToken.count ? 0 : 1)
        for i in 0..<secretToken.count { diff |= secretToken[i] ^ (i < given.count ? given[i] : 0) }
        return diff == 0
    }

    // MARK: Updates

    /// Takes one update: returns at once, the work queued behind the chat's earlier messages.
    func receive(_ update: OrderedJSON) {
        guard let updateID = update["update_id"].flatMap(TelegramBotAPI.int).map(Int64.init),
              let message = update["message"], let chatID = message["chat"]?["id"].flatMap(TelegramBotAPI.int).map(Int64.init),
              let messageID = message["message_id"].flatMap(TelegramBotAPI.int) else { return }   // not a message: nothing to do
        if let allowed = declaration.allowedChats, !allowed.contains(chatID) {
            logger.notice("telegram \(declaration.name): a message from chat \(chatID), not in allowed_chats, ignored")
            return
        }
        let text = message["text"]?.stringValue.flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        // Without text: a photo or sticker is told the bot reads text, in a private chat only (a group's service
        // messages — someone joined, a pin — are not answered).
        guard text != nil || message["chat"]?["type"]?.stringValue == "private" else { return }
        state.withLock { s in
            guard s.recentUpdates.insert(updateID).inserted else { return }   // Telegram delivered it again
            s.updateOrder.append(updateID)
            if s.updateOrder.count > 1024 { s.recentUpdates.remove(s.updateOrder.removeFirst()) }
            if s.chats.count > 10_000 { Self.forgetIdle(&s) }
            var chat = s.chats[chatID] ?? Chat(tokens: Double(declaration.requestsPerMinute), refilled: .now)
            // The chat's rate is taken as messages arrive (not as they are handled), so a burst never queues more
            // than a minute's worth: past it, the chat is told once to wait and the rest is dropped.
            let work: Work
            switch Self.admit(&chat, perMinute: declaration.requestsPerMinute) {
            case .allowed: work = text.map(Work.message) ?? .notText
            case .tell(let wait): work = .tooMany(wait: wait)
            case .drop:
                s.chats[chatID] = chat
                return
            }
            let previous = chat.tail
            chat.pending += 1
            chat.tail = Task { [self] in
                await previous?.value
                await handle(work, chat: chatID, messageID: messageID)
                state.withLock { $0.chats[chatID]?.pending -= 1 }
            }
            s.chats[chatID] = chat
        }
    }

    private enum Work: Sendable { case message(String), notText, tooMany(wait: Int) }
    private enum Admission { case allowed, tell(wait: Int), drop }

    /// Takes one message from the chat's bucket (`requests_per_minute`, refilled continuously).
    private static func admit(_ chat: inout Chat, perMinute: Int) -> Admission {
        let rate = Double(perMinute) / 60
        let now = ContinuousClock.now
        let elapsed = now - chat.refilled
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        chat.tokens = min(Double(perMinute), chat.tokens + seconds * rate)
        chat.refilled = now
        if chat.tokens >= 1 {
            chat.tokens -= 1
            chat.toldToWait = false
            return .allowed
        }
        guard !chat.toldToWait else { return .drop }
        chat.toldToWait = true
        return .tell(wait: Int(((1 - chat.tokens) / rate).rounded(.up)))
    }

    /// Drops the state of chats with nothing queued whose rate bucket has refilled (a minute since the last message)
    /// and that chose no model in memory.
    private static func forgetIdle(_ s: inout State) {
        let now = ContinuousClock.now
        s.chats = s.chats.filter { _, c in c.pending > 0 || c.model != nil || now - c.refilled < .seconds(60) }
    }

    /// The session of a chat: its conversation in the server's database.
    private func session(_ chatID: Int64) -> String { "telegram:\(declaration.name):\(chatID)" }
    private func conversationID(_ chatID: Int64) -> String { ConversationsSurface.sessionID(owner: nil, session: session(chatID)) }

    private func handle(_ work: Work, chat chatID: Int64, messageID: Int) async {
        do {
            switch work {
            case .notText:
                try await reply(chatID, to: messageID, "I read text messages only.")
            case .tooMany(let wait):
                try await reply(chatID, to: messageID,
                                "Too many messages: at most \(declaration.requestsPerMinute) a minute here. Try again in \(wait) s.")
            case .message(let text) where text.hasPrefix("/"):
                try await command(text, chat: chatID, messageID: messageID)
            case .message(let text):
                try await answer(text, chat: chatID, messageID: messageID)
            }
        } catch {
            logger.error("telegram \(declaration.name): chat \(chatID): \(error)")
            RequestLogMiddleware<GatewayContext>.writeToStderr("telegram \(declaration.name): chat \(chatID): \(error)\n")
        }
    }

    static let help = """
        /help — this list
        /model — the model answering here; /model NAME — switch to another
        /reset — forget this conversation
        Anything else is a message to the model, which remembers the conversation.
        """

    private func command(_ text: String, chat chatID: Int64, messageID: Int) async throws {
        let words = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)
        // `/model@SomeBot` in groups.
        let name = (words.first ?? "").split(separator: "@").first.map(String.init) ?? ""
        switch name {
        case "/start":
            try await reply(chatID, to: messageID, "Hello! I answer with \(await model(of: chatID)).\n\n" + Self.help)
        case "/help":
            try await reply(chatID, to: messageID, Self.help)
        case "/model":
            guard words.count > 1 else {
                try await reply(chatID, to: messageID, "This chat uses \(await model(of: chatID)).")
                return
            }
            let wanted = words[1]
            let known = try await servedModels()
            guard known.contains(wanted) else {
                try await reply(chatID, to: messageID, "There is no model \(wanted) here. Models: \(known.sorted().joined(separator: ", ")).")
                return
            }
            try await setModel(wanted, of: chatID)
            try await reply(chatID, to: messageID, "This chat now uses \(wanted).")
        case "/reset":
            let model = await storedModel(of: chatID)
            if let conversations { _ = try await conversations.delete(conversationID(chatID)) }
            if let model { try await setModel(model, of: chatID) }   // the chosen model outlives the reset
            try await reply(chatID, to: messageID, "I forgot our conversation.")
        default:
            try await reply(chatID, to: messageID, "I do not know \(name).\n\n" + Self.help)
        }
    }

    /// The chat's model: chosen with /model, else the bot's.
    private func model(of chatID: Int64) async -> String { await storedModel(of: chatID) ?? declaration.model }

    private func storedModel(of chatID: Int64) async -> String? {
        if let memory = state.withLock({ $0.chats[chatID]?.model }) { return memory }
        guard let conversations, let found = try? await conversations.find(conversationID(chatID)),
              let metadata = try? OrderedJSON.parse(found.metadata, maxDepth: 8) else { return nil }
        return metadata["model"]?.stringValue
    }

    private func setModel(_ model: String, of chatID: Int64) async throws {
        guard let conversations else {
            state.withLock { $0.chats[chatID]?.model = model }
            return
        }
        let id = conversationID(chatID)
        let metadata = OrderedJSON.object([("session", .string(session(chatID))), ("model", .string(model))]).text
        if try await conversations.update(id, metadata: metadata) == nil {
            let now = Date()
            try await conversations.create(StoredConversation(id: id, owner: nil, createdAt: now, updatedAt: now, metadata: metadata), items: [])
        }
    }

    /// The names `/model` may choose: what `/v1/models` lists.
    private func servedModels() async throws -> Set<String> {
        let response = try await run(.get, "/v1/models", body: nil)
        let json = try OrderedJSON.parse(response.text, maxDepth: 16)
        guard case .array(let data)? = json["data"] else { return [] }
        return Set(data.compactMap { $0["id"]?.stringValue })
    }

    /// A turn: the model's answer to `text`, with the chat's memory; "typing…" shown until it is sent.
    private func answer(_ text: String, chat chatID: Int64, messageID: Int) async throws {
        let typing = Task { [api] in
            while !Task.isCancelled {
                _ = try? await api.call("sendChatAction", .object([("chat_id", .number(Double(chatID), String(chatID))),
                                                                   ("action", .string("typing"))]), attempts: 1)
                try? await Task.sleep(for: .seconds(4))
            }
        }
        defer { typing.cancel() }
        var messages: [OrderedJSON] = []
        if let system = declaration.system { messages.append(.object([("role", .string("system")), ("content", .string(system))])) }
        messages.append(.object([("role", .string("user")), ("content", .string(text))]))
        var body: [(String, OrderedJSON)] = [("model", .string(await model(of: chatID))), ("messages", .array(messages)),
                                             ("max_tokens", .number(Double(declaration.maxTokens), String(declaration.maxTokens)))]
        if conversations != nil { body.append(("session", .string(session(chatID)))) }
        let answered = try await run(.post, "/api/v1/chat", body: OrderedJSON.object(body).text)
        let json = try? OrderedJSON.parse(answered.text, maxDepth: 512)
        typing.cancel()
        guard answered.status == 200, let reply = json?["response"]?.stringValue else {
            let why = json?["error"]?["message"]?.stringValue ?? "HTTP \(answered.status)"
            try await self.reply(chatID, to: messageID, "Sorry, I could not answer: \(why)")
            return
        }
        let said = reply.trimmingCharacters(in: .whitespacesAndNewlines)
        try await self.reply(chatID, to: messageID, said.isEmpty ? "(no answer)" : reply)
    }

    /// Sends `text` in pieces, the first as a reply to the user's message; Markdown as Telegram HTML, and the piece as
    /// plain text should Telegram refuse its markup.
    private func reply(_ chatID: Int64, to messageID: Int, _ text: String) async throws {
        let chat = OrderedJSON.number(Double(chatID), String(chatID))
        for (i, piece) in TelegramText.pieces(text).enumerated() {
            var body: [(String, OrderedJSON)] = [("chat_id", chat), ("text", .string(TelegramText.html(piece))), ("parse_mode", .string("HTML"))]
            if i == 0 {
                body.append(("reply_parameters", .object([("message_id", .number(Double(messageID), String(messageID))),
                                                          ("allow_sending_without_reply", .bool(true))])))
            }
            do {
                try await api.call("sendMessage", .object(body))
            } catch TelegramBotAPI.Failure.refused(400, _) {
                // Markup Telegram would not take (or a piece that is only markup, such as an empty code block).
                body[1] = ("text", .string(piece))
                body.remove(at: 2)
                try await api.call("sendMessage", .object(body))
            }
        }
    }

    /// A request through the server's routes, as the admin (the bot's usage is recorded as the admin's), counted as
    /// interactive traffic.
    private func run(_ method: HTTPRequest.Method, _ path: String, body: String?) async throws -> (status: Int, text: String) {
        guard let respond = responder.withLock({ $0 }) else { throw APIError(.serviceUnavailable, "the server is starting") }
        var head = HTTPRequest(method: method, scheme: "http", authority: "telegram", path: path)
        if body != nil { head.headerFields[.contentType] = "application/json" }
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body ?? "")))
        do {
            let response = try await respond(request, GatewayContext(delegating: .admin, logger: logger, batch: false))
            return (response.status.code, try await BatchRunner.Collector.text(of: response))
        } catch {
            let e = APIError.from(error)
            return (e.status.code, String(buffer: e.body))
        }
    }
}

/// `POST /api/v1/webhooks/telegram/{bot}`: where Telegram delivers a bot's updates (`switchyard telegram
/// set-webhook` tells it so). Open without an API key: Telegram proves itself with the bot's secret token.
struct TelegramRoutes {
    let bots: [String: TelegramBot]
    static let secretHeader = HTTPField.Name("X-Telegram-Bot-Api-Secret-Token")!
    static let pathPrefix = "/api/v1/webhooks/telegram/"

    func register(on router: Router<GatewayContext>) {
        router.post("/api/v1/webhooks/telegram/:bot") { [bots] request, context -> Response in
            let name = context.parameters.get("bot") ?? ""
            guard let bot = bots[name] else {
                throw APIError(.notFound, "no Telegram bot '\(name)' here (the registry's telegram: section declares them)", code: "bot_not_found")
            }
            guard bot.accepts(secret: request.headers[Self.secretHeader]) else {
                throw APIError(.unauthorized, "X-Telegram-Bot-Api-Secret-Token is missing or wrong", type: "authentication_error",
                               code: "invalid_secret_token")
            }
            var request = request
            let body = try await request.collectBody(limit: 1 << 20)
            guard let update = try? OrderedJSON.parse(String(buffer: body), maxDepth: 64), case .object = update else {
                throw APIError(.badRequest, "an update must be a JSON object")
            }
            bot.receive(update)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: "{}")))
        }
    }
}

/// `switchyard telegram set-webhook`: registers a bot's webhook with Telegram.
public enum TelegramWebhook {
    /// Calls setWebhook (updates of kind `message` only); Telegram's description of the result.
    public static func set(_ bot: TelegramBotDeclaration, token: String, secretToken: String, url: String,
                           dropPendingUpdates: Bool) async throws -> String {
        guard TelegramBot.validSecret(secretToken) else {
            throw TelegramBotAPI.Failure.refused(code: 400, description: "\(bot.secretTokenEnv) must be 1–256 letters, digits, _ or -")
        }
        let api = TelegramBotAPI(base: bot.apiBase, token: token)
        _ = try await api.call("setWebhook", .object([
            ("url", .string(url)), ("secret_token", .string(secretToken)), ("allowed_updates", .array([.string("message")])),
            ("drop_pending_updates", .bool(dropPendingUpdates)),
        ]))
        return "Telegram accepted it"
    }
}
