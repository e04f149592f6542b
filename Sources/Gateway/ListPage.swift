import Grammar

/// OpenAI's paged lists (a response's input items, a conversation's items, files, batches): `{"object": "list",
/// "data", "first_id", "last_id", "has_more"}`, read with `limit`, `order` (`desc`, the default: newest first; or
/// `asc`) and `after` (the id the page starts after, in the order asked).
enum ListPage {
    /// One page of `items` (given oldest first).
    static func page(_ items: [OrderedJSON], query: [String: String], maxLimit: Int, defaultLimit: Int) throws -> OrderedJSON {
        var items = items
        var limit = defaultLimit
        if let l = query["limit"] {
            guard let n = Int(l), (1...maxLimit).contains(n) else {
                throw APIError(.badRequest, "limit must be between 1 and \(maxLimit)", param: "limit")
            }
            limit = n
        }
        switch query["order"] {
        case nil, "desc": items.reverse()
        case "asc": break
        default: throw APIError(.badRequest, "order must be asc or desc", param: "order")
        }
        if let after = query["after"] {
            guard let i = items.firstIndex(where: { $0["id"]?.stringValue == after }) else {
                throw APIError(.badRequest, "no item with id '\(after)' in this list", param: "after")
            }
            items.removeFirst(i + 1)
        }
        let page = Array(items.prefix(limit))
        return object(page, hasMore: items.count > page.count)
    }

    static func object(_ items: [OrderedJSON], hasMore: Bool) -> OrderedJSON {
        .object([
            ("object", .string("list")), ("data", .array(items)),
            ("first_id", .optional(items.first?["id"]?.stringValue)), ("last_id", .optional(items.last?["id"]?.stringValue)),
            ("has_more", .bool(hasMore)),
        ])
    }
}
