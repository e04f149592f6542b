import Foundation
import NIOCore

/// A `multipart/form-data` body (RFC 7578), as the Files API's uploads send it: each part's field name, file name
/// and content. Malformed bodies are a 400 naming what is wrong; nothing is read past the body.
struct MultipartForm {
    struct Part: Equatable {
        var name: String
        var filename: String?
        /// A slice of the body (no copy).
        var content: ArraySlice<UInt8>
        var text: String { String(decoding: content, as: UTF8.self) }
    }

    var parts: [Part]

    func part(_ name: String) -> Part? { parts.first { $0.name == name } }

    static func bad(_ why: String) -> APIError { APIError(.badRequest, "the multipart/form-data body is malformed: \(why)") }

    /// The boundary of a `multipart/form-data; boundary=…` content type; nil for any other type.
    static func boundary(of contentType: String?) -> String? {
        guard let contentType else { return nil }
        let fields = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.first?.lowercased() == "multipart/form-data" else { return nil }
        for f in fields.dropFirst() where f.lowercased().hasPrefix("boundary=") {
            var b = String(f.dropFirst("boundary=".count))
            if b.hasPrefix("\""), b.hasSuffix("\""), b.count >= 2 { b = String(b.dropFirst().dropLast()) }
            return (1...70).contains(b.utf8.count) ? b : nil
        }
        return nil
    }

    init(parts: [Part]) { self.parts = parts }

    init(_ body: [UInt8], boundary: String) throws(APIError) {
        let delimiter = Array(("--" + boundary).utf8)
        let separator = Array(("\r\n--" + boundary).utf8)
        guard var at = Self.find(delimiter, in: body, from: 0) else { throw Self.bad("no boundary") }
        at += delimiter.count
        var parts: [Part] = []
        while true {
            if body.count >= at + 2, body[at] == UInt8(ascii: "-"), body[at + 1] == UInt8(ascii: "-") { break }
            // Optional transport padding, then CRLF.
            while at < body.count, body[at] == UInt8(ascii: " ") || body[at] == UInt8(ascii: "\t") { at += 1 }
            guard body.count >= at + 2, body[at] == 13, body[at + 1] == 10 else { throw Self.bad("a boundary line does not end in CRLF") }
            at += 2
            guard let headersEnd = Self.find([13, 10, 13, 10], in: body, from: at) else { throw Self.bad("a part's headers do not end") }
            guard headersEnd - at <= 16 * 1024 else { throw Self.bad("a part's headers are longer than 16 KiB") }
            let headers = String(decoding: body[at..<headersEnd], as: UTF8.self)
            at = headersEnd + 4
            guard let end = Self.find(separator, in: body, from: at) else { throw Self.bad("a part does not end with the boundary") }
            let (name, filename) = try Self.disposition(headers)
            parts.append(Part(name: name, filename: filename, content: body[at..<end]))
            at = end + separator.count
            guard parts.count <= 64 else { throw Self.bad("more than 64 parts") }
        }
        self.parts = parts
    }

    /// The `name` and `filename` of a part's `Content-Disposition: form-data` header.
    static func disposition(_ headers: String) throws(APIError) -> (String, String?) {
        for line in headers.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":"),
                  line[..<colon].trimmingCharacters(in: .whitespaces).lowercased() == "content-disposition" else { continue }
            var name: String?, filename: String?
            for field in Self.parameters(String(line[line.index(after: colon)...])) {
                switch field.0.lowercased() {
                case "name": name = field.1
                case "filename": filename = field.1
                default: continue
                }
            }
            guard let name else { throw Self.bad("a part's Content-Disposition has no name") }
            return (name, filename)
        }
        throw Self.bad("a part has no Content-Disposition header")
    }

    /// `form-data; name="file"; filename="a;b.jsonl"` → [("name", "file"), ("filename", "a;b.jsonl")]: quoted values may
    /// hold `;` and escaped quotes.
    static func parameters(_ text: String) -> [(String, String)] {
        var out: [(String, String)] = []
        var chars = Substring(text)
        while let semicolon = chars.firstIndex(of: ";") {
            chars = chars[chars.index(after: semicolon)...].drop { $0 == " " || $0 == "\t" }
            guard let eq = chars.firstIndex(of: "=") else { break }
            let key = chars[..<eq].trimmingCharacters(in: .whitespaces)
            chars = chars[chars.index(after: eq)...]
            var value = ""
            if chars.first == "\"" {
                chars = chars.dropFirst()
                var escaped = false
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if escaped { value.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { break } else { value.append(c) }
                }
            } else {
                let end = chars.firstIndex(of: ";") ?? chars.endIndex
                value = chars[..<end].trimmingCharacters(in: .whitespaces)
                chars = chars[end...]
            }
            out.append((key, value))
        }
        return out
    }

    /// The first index of `needle` in `haystack` at or after `from`.
    static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var i = from
        let last = haystack.count - needle.count
        return haystack.withUnsafeBufferPointer { h in
            needle.withUnsafeBufferPointer { n in
                while i <= last {
                    guard let base = h.baseAddress, let pattern = n.baseAddress,
                          let found = memchr(base + i, Int32(first), last - i + 1) else { return nil }
                    let j = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
                    if memcmp(base + j, pattern, n.count) == 0 { return j }
                    i = j + 1
                }
                return nil
            }
        }
    }
}
