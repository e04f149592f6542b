import Core
import Crypto
import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import NIOCore
import Storage

/// OpenAI's Conversations API: `POST /v1/conversations` (with up to 20 first items and metadata),
/// `GET` / `POST` (metadata) / `DELETE /v1/conversations/{id}`, and its items: `POST` / `GET
/// /v1/conversations/{id}/items`, `GET` / `DELETE /v1/conversations/{id}/items/{item_id}`. Items are the Responses
/// API's (messages, function calls and their outputs, reasoning) and a response made with `conversation` adds its
/// input and output to them; the native API's `session` keeps its turns in one too. Kept in the server's database:
/// they outlive restarts and are shared by replicas over one PostgreSQL. A key sees only the conversations it made;
/// without keys (auth off) every caller sees all. `serve --conversation-retention` deletes those left idle.
struct ConversationsSurface {
    /// Where conversations are kept; nil: nowhere (every route answers that this server keeps none).
    let store: ConversationStore?

    /// OpenAI's limits: items added by one request, metadata pairs and their sizes.
    static let maxItemsPerRequest = 20
    static let maxMetadataPairs = 16

    func register(on router: Router<GatewayContext>) {
        router.post("/v1/conversations") { request, context in try await create(request, context) }
        router.get("/v1/conversations/{id}") { _, context in
            Self.object(try await find(try context.parameters.require("id"), for: context.caller))
        }
        router.post("/v1/conversations/{id}") { request, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            let body = try await Self.body(request)
            guard let metadata = body["metadata"], metadata != .null else {
                throw APIError(.badRequest, "metadata: field required", param: "metadata")
            }
            guard let updated = try await stored().update(found.id, metadata: try Self.metadata(metadata).text) else {
                throw Self.notFound(found.id)
            }
            return Self.object(updated)
        }
        router.delete("/v1/conversations/{id}") { _, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            try await stored().delete(found.id)
            return ResponsesSurface.jsonResponse(.object([("id", .string(found.id)), ("object", .string("conversation.deleted")),
                                                          ("deleted", .bool(true))]))
        }
        router.post("/v1/conversations/{id}/items") { request, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            let body = try await Self.body(request)
            let items = try Self.newItems(body["items"], required: true)
            guard try await stored().append(found.id, items: Self.rows(items)) else { throw Self.notFound(found.id) }
            return ResponsesSurface.jsonResponse(ListPage.object(items, hasMore: false))
        }
        router.get("/v1/conversations/{id}/items") { request, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
            return ResponsesSurface.jsonResponse(try ListPage.page(try await items(of: found.id), query: query, maxLimit: 100, defaultLimit: 20))
        }
        router.get("/v1/conversations/{id}/items/{item}") { _, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            let itemID = try context.parameters.require("item")
            guard let item = try await items(of: found.id).last(where: { $0["id"]?.stringValue == itemID }) else {
                throw Self.itemNotFound(itemID)
            }
            return ResponsesSurface.jsonResponse(item)
        }
        router.delete("/v1/conversations/{id}/items/{item}") { _, context in
            let found = try await find(try context.parameters.require("id"), for: context.caller)
            let itemID = try context.parameters.require("item")
            guard try await stored().deleteItem(found.id, itemID: itemID) else { throw Self.itemNotFound(itemID) }
            return Self.object(try await stored().find(found.id) ?? found)
        }
    }

    // MARK: routes

    private func create(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let store = try stored()
        let body = try await Self.body(request, emptyIsObject: true)
        let items = try Self.newItems(body["items"], required: false)
        let metadata = try Self.metadata(body["metadata"] ?? .null)
        let now = Date()
        let conversation = StoredConversation(id: OpenAISurface.newID("conv_"), owner: context.caller.key?.name, createdAt: now,
                                              updatedAt: now, metadata: metadata.text)
        try await store.create(conversation, items: Self.rows(items, at: now))
        return Self.object(conversation)
    }

    private func stored() throws -> ConversationStore {
        guard let store else {
            throw APIError(.notFound, "this server keeps no conversations (it has no database)", code: "conversation_not_found")
        }
        return store
    }

    private func find(_ id: String, for caller: GuardCaller) async throws -> StoredConversation {
        guard let found = try await stored().find(id), ResponsesSurface.visible(owner: found.owner, toKey: caller.key?.name) else {
            throw Self.notFound(id)
        }
        return found
    }

    private func items(of id: String) async throws -> [OrderedJSON] {
        try await Self.parsedItems(of: id, in: stored())
    }

    /// A conversation's items, read back as JSON (a conversation, a Responses `conversation`, a native session).
    static func parsedItems(of id: String, in store: ConversationStore) async throws -> [OrderedJSON] {
        try await store.items(id).map { try ResponsesSurface.parse($0.item, what: "stored conversation item") }
    }

    // MARK: shapes

    static func notFound(_ id: String) -> APIError {
        APIError(.notFound, "no conversation with id '\(id)' is stored here", code: "conversation_not_found")
    }

    static func itemNotFound(_ id: String) -> APIError {
        APIError(.notFound, "this conversation has no item with id '\(id)'", code: "item_not_found")
    }

    /// The conversation object: `{"id", "object": "conversation", "created_at", "metadata"}`.
    static func object(_ c: StoredConversation) -> Response {
        let metadata = (try? OrderedJSON.parse(c.metadata, maxDepth: 4)) ?? .object([])
        return ResponsesSurface.jsonResponse(.object([
            ("id", .string(c.id)), ("object", .string("conversation")),
            ("created_at", .int(Int(c.createdAt.timeIntervalSince1970))),
            ("metadata", metadata),
        ]))
    }

    static func body(_ request: Request, emptyIsObject: Bool = false) async throws -> OrderedJSON {
        var request = request
        let raw = try await request.collectBody(limit: BodyLimit.maxBytes)
        if emptyIsObject && raw.readableBytes == 0 { return .object([]) }
        guard let body = try? OrderedJSON.parse(String(decoding: raw.readableBytesView, as: UTF8.self), maxDepth: 256),
              case .object = body else {
            throw APIError(.badRequest, "the body must be a JSON object")
        }
        return body
    }

    /// Metadata as OpenAI allows it: an object of at most 16 string values, keys up to 64 characters, values up to 512.
    static func metadata(_ value: OrderedJSON) throws -> OrderedJSON {
        switch value {
        case .null: return .object([])
        case .object(let members):
            guard members.count <= maxMetadataPairs else {
                throw APIError(.badRequest, "metadata may hold at most \(maxMetadataPairs) pairs", param: "metadata")
            }
            for (key, v) in members {
                guard key.count <= 64 else { throw APIError(.badRequest, "metadata keys are at most 64 characters", param: "metadata") }
                guard case .string(let s) = v, s.count <= 512 else {
                    throw APIError(.badRequest, "metadata.\(key) must be a string of at most 512 characters", param: "metadata.\(key)")
                }
            }
            return value
        default: throw APIError(.badRequest, "metadata must be an object", param: "metadata")
        }
    }

    /// Items a client adds: at most 20, each with an id (given or made), each of a kind the models here can read.
    static func newItems(_ value: OrderedJSON?, required: Bool) throws -> [OrderedJSON] {
        switch value {
        case nil, .null?:
            if required { throw APIError(.badRequest, "items: field required", param: "items") }
            return []
        case .array(let list)?:
            guard list.count <= maxItemsPerRequest else {
                throw APIError(.badRequest, "at most \(maxItemsPerRequest) items may be added at once", param: "items")
            }
            if required && list.isEmpty { throw APIError(.badRequest, "items must not be empty", param: "items") }
            let items = try ResponsesRequest.inputItems(.array(list)).map(completed)
            _ = try ResponsesRequest.messages(instructions: nil, items: items)
            return items
        default:
            throw APIError(.badRequest, "items must be a list of items", param: "items")
        }
    }

    /// An item as a conversation lists it: `status: completed` on messages and calls that carry none, and a message's
    /// text given as a string made a text part (`input_text`, `output_text` for the assistant), as OpenAI lists them.
    static func completed(_ item: OrderedJSON) -> OrderedJSON {
        var item = item
        let type = item["type"]?.stringValue ?? ""
        if type == "message", case .string(let text)? = item["content"] {
            let part = item["role"]?.stringValue == "assistant" ? "output_text" : "input_text"
            var members: [(String, OrderedJSON)] = [("type", .string(part)), ("text", .string(text))]
            if part == "output_text" { members.append(("annotations", .array([]))) }
            item = item.setting("content", .array([.object(members)]))
        }
        if item["status"] == nil, ["message", "function_call", "function_call_output"].contains(type) {
            item = item.setting("status", .string("completed"))
        }
        return item
    }

    static func rows(_ items: [OrderedJSON], at date: Date = Date()) -> [StoredConversationItem] {
        items.map { StoredConversationItem(id: $0["id"]?.stringValue ?? "", item: $0.text, createdAt: date) }
    }

    /// The items that record canonical messages: system and user messages (`input_text`), an assistant's text
    /// (`output_text`) and its tool calls (`function_call`), tool results (`function_call_output`).
    static func items(of messages: [ChatMessage]) -> [OrderedJSON] {
        var out: [OrderedJSON] = []
        for m in messages {
            switch m.role {
            case .system, .user:
                out.append(completed(ResponsesRequest.message(role: m.role.rawValue, text: m.content)))
            case .assistant:
                if !m.content.isEmpty || m.toolCalls.isEmpty {
                    out.append(.object([
                        ("id", .string(OpenAISurface.newID("msg_"))), ("type", .string("message")), ("status", .string("completed")),
                        ("role", .string("assistant")),
                        ("content", .array([.object([("type", .string("output_text")), ("text", .string(m.content)), ("annotations", .array([]))])])),
                    ]))
                }
                for call in m.toolCalls {
                    out.append(.object([
                        ("id", .string(OpenAISurface.newID("fc_"))), ("type", .string("function_call")), ("status", .string("completed")),
                        ("call_id", .string(call.id)), ("name", .string(call.name)), ("arguments", .string(call.arguments)),
                    ]))
                }
            case .tool:
                out.append(.object([
                    ("id", .string(OpenAISurface.newID("fco_"))), ("type", .string("function_call_output")), ("status", .string("completed")),
                    ("call_id", .string(m.toolCallID ?? "")), ("output", .string(m.content)),
                ]))
            }
        }
        return out
    }

    /// The conversation id of a native API session: derived from the key's name and the session's name, so that two
    /// keys' sessions of the same name never meet, and a session is also readable as a conversation.
    static func sessionID(owner: String?, session: String) -> String {
        let digest = SHA256.hash(data: Data("switchyard-session\u{0}\(owner ?? "")\u{0}\(session)".utf8))
        return "conv_" + digest.prefix(20).map { String(format: "%02x", $0) }.joined()
    }
}
