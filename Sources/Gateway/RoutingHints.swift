import Core
import Foundation
import Hummingbird
import HTTPTypes
import Registry
import Routing

/// The routing headers of a response.
enum RouteHeaders {
    static let route = HTTPField.Name("x-switchyard-route")!
    static let fallbackFrom = HTTPField.Name("x-switchyard-fallback-from")!
    static let reason = HTTPField.Name("x-switchyard-route-reason")!
    static let servedBy = HTTPField.Name("x-switchyard-served-by")!

    /// `x-switchyard-served-by`, and for a routed answer `x-switchyard-route`, `x-switchyard-fallback-from` and
    /// `x-switchyard-route-reason`.
    static func fields(servedBy: String, route: RouteInfo?) -> HTTPFields {
        var fields = HTTPFields()
        fields[Self.servedBy] = servedBy
        guard let route else { return fields }
        fields[Self.route] = route.deployment
        if !route.fallbackFrom.isEmpty { fields[fallbackFrom] = route.fallbackFrom.joined(separator: ", ") }
        if let reason = route.reason { fields[Self.reason] = headerSafe(reason) }
        return fields
    }

    /// Printable ASCII only (a header value), at most 512 bytes.
    static func headerSafe(_ s: String) -> String {
        let arrowsReplaced = s.replacingOccurrences(of: "→", with: "->").replacingOccurrences(of: "≥", with: ">=").replacingOccurrences(of: "≤", with: "<=")
        let ascii = String(String.UnicodeScalarView(arrowsReplaced.unicodeScalars.map { (0x20...0x7e).contains($0.value) ? $0 : "?" }))
        return ascii.utf8.count <= 512 ? ascii : String(ascii.prefix(509)) + "..."
    }
}

/// A value of a request's `metadata` (OpenAI sends strings; a boolean or a number is taken as its text).
struct MetadataValue: Decodable, Sendable {
    let text: String
    init(text: String) { self.text = text }
    init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { text = s }
        else if let b = try? c.decode(Bool.self) { text = b ? "true" : "false" }
        else if let n = try? c.decode(Double.self) { text = n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n) }
        else if c.decodeNil() { text = "" }
        else { throw DecodingError.dataCorruptedError(in: c, debugDescription: "metadata values must be strings") }
    }
}

extension RequestHints {
    static let taskHeader = HTTPField.Name("x-switchyard-task")!
    static let localOnlyHeader = HTTPField.Name("x-switchyard-local-only")!

    /// The task (`x-switchyard-task` header, else `metadata.task`) and local-only (`x-switchyard-local-only:
    /// true` or `metadata.local_only`; either is enough) a request carries. Values that mean nothing are refused
    /// with 400 rather than ignored.
    static func from(_ request: Request, metadata: [String: MetadataValue]?) throws -> RequestHints {
        var hints = RequestHints()
        if let t = request.headers[taskHeader] {
            hints.task = try task(t, param: "x-switchyard-task"); hints.taskSource = "x-switchyard-task header"
        } else if let t = metadata?["task"]?.text {
            hints.task = try task(t, param: "metadata.task"); hints.taskSource = "metadata.task"
        }
        if let v = request.headers[localOnlyHeader], try flag(v, param: "x-switchyard-local-only") { hints.localOnly = true }
        if let v = metadata?["local_only"]?.text, try flag(v, param: "metadata.local_only") { hints.localOnly = true }
        return hints
    }

    private static func task(_ value: String, param: String) throws -> String {
        let t = value.trimmingCharacters(in: .whitespaces).lowercased()
        guard ModelRegistry.isTaskName(t) else {
            throw APIError(.badRequest, "\(param) must be a task name such as code or general (letters, digits, '_', '-')", param: param)
        }
        return t
    }

    private static func flag(_ value: String, param: String) throws -> Bool {
        switch value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off", "": return false
        default: throw APIError(.badRequest, "\(param) must be true or false, not '\(value)'", param: param)
        }
    }
}
