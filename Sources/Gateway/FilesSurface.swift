import Foundation
import Grammar
import HTTPTypes
import Hummingbird
import NIOCore
import Storage
import Synchronization

/// OpenAI's Files API, for the Batch API: `POST /v1/files` (multipart: `file`, `purpose: batch`; at most
/// `maxBytes`), `GET /v1/files` (`purpose`, `limit`, `order`, `after`), `GET` / `DELETE /v1/files/{id}`,
/// `GET /v1/files/{id}/content`. A batch's output and error files are files too (`purpose: batch_output`). Kept in the
/// server's database; a key sees only its own (the admin key, and everyone on a server without keys, see all).
struct FilesSurface {
    let store: BatchStore?

    /// The largest upload (OpenAI takes batch input files up to 200 MB; files live in the database here).
    static let maxBytes = 100 << 20
    static let path = "/v1/files"
    /// Uploads read at once (each holds its body in memory, up to `maxBytes`); more are a 429.
    static let maxConcurrentUploads = 2
    static let uploading = Mutex(0)

    func register(on router: Router<GatewayContext>) {
        router.post("/v1/files") { request, context in try await upload(request, context) }
        router.get("/v1/files") { request, context in
            let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { $1 })
            let all = try await stored().files(purpose: query["purpose"]).filter {
                ResponsesSurface.visible(owner: $0.owner, toKey: context.caller.key?.name)
            }
            return ResponsesSurface.jsonResponse(try ListPage.page(all.reversed().map(Self.object), query: query, maxLimit: 10_000,
                                                                   defaultLimit: 10_000))
        }
        router.get("/v1/files/{id}") { _, context in
            Self.response(Self.object(try await find(try context.parameters.require("id"), for: context.caller)))
        }
        router.get("/v1/files/{id}/content") { _, context in
            let file = try await find(try context.parameters.require("id"), for: context.caller)
            guard let content = try await stored().content(ofFile: file.id) else { throw Self.notFound(file.id) }
            return Response(status: .ok, headers: [.contentType: "application/octet-stream",
                                                   .contentDisposition: "attachment; filename=\"\(Self.safeName(file.filename))\""],
                            body: ResponseBody(byteBuffer: ByteBuffer(bytes: content)))
        }
        router.delete("/v1/files/{id}") { _, context in
            let file = try await find(try context.parameters.require("id"), for: context.caller)
            try await stored().deleteFile(file.id)
            return ResponsesSurface.jsonResponse(.object([("id", .string(file.id)), ("object", .string("file")), ("deleted", .bool(true))]))
        }
    }

    private func upload(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let store = try stored()
        guard let boundary = MultipartForm.boundary(of: request.headers[.contentType]) else {
            throw APIError(.badRequest, "upload the file as multipart/form-data with the fields file and purpose")
        }
        guard Self.uploading.withLock({ n -> Bool in
            guard n < Self.maxConcurrentUploads else { return false }
            n += 1
            return true
        }) else {
            throw APIError(.tooManyRequests, "\(Self.maxConcurrentUploads) uploads are being read; retry shortly", type: "requests",
                           code: "uploads_busy", retryAfter: 1)
        }
        defer { Self.uploading.withLock { $0 -= 1 } }
        var request = request
        var body = try await request.collectBody(limit: Self.maxBytes + 64 * 1024)
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        body = ByteBuffer()
        let form = try MultipartForm(bytes, boundary: boundary)
        guard let purpose = form.part("purpose")?.text.trimmingCharacters(in: .whitespacesAndNewlines) else {
            throw APIError(.badRequest, "purpose: field required", param: "purpose")
        }
        guard purpose == "batch" else {
            throw APIError(.badRequest, "purpose '\(purpose.prefix(40))' is not supported here; files are for the Batch API (purpose: batch)",
                           param: "purpose")
        }
        guard let file = form.part("file") else { throw APIError(.badRequest, "file: field required", param: "file") }
        guard file.content.count <= Self.maxBytes else { throw BodyLimit.tooLarge(limit: Self.maxBytes) }
        guard !file.content.isEmpty else { throw APIError(.badRequest, "the file is empty", param: "file") }
        let stored = StoredFile(id: OpenAISurface.newID("file-"), owner: context.caller.key?.name, purpose: purpose,
                                filename: String((file.filename ?? "upload.jsonl").prefix(255)), bytes: file.content.count, createdAt: Date())
        try await store.saveFile(stored, content: Data(file.content))
        return Self.response(Self.object(stored))
    }

    private func stored() throws -> BatchStore {
        guard let store else { throw APIError(.notFound, "this server keeps no files (it has no database)", code: "file_not_found") }
        return store
    }

    private func find(_ id: String, for caller: GuardCaller) async throws -> StoredFile {
        guard let file = try await stored().file(id), ResponsesSurface.visible(owner: file.owner, toKey: caller.key?.name) else {
            throw Self.notFound(id)
        }
        return file
    }

    static func notFound(_ id: String) -> APIError {
        APIError(.notFound, "no file with id '\(id)' is stored here", param: "file_id", code: "file_not_found")
    }

    /// A file name fit for a header: printable ASCII without quotes or backslashes.
    static func safeName(_ name: String) -> String {
        String(name.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }.map(Character.init))
    }

    static func object(_ f: StoredFile) -> OrderedJSON {
        .object([
            ("id", .string(f.id)), ("object", .string("file")), ("bytes", .int(f.bytes)),
            ("created_at", .int(Int(f.createdAt.timeIntervalSince1970))), ("expires_at", .null), ("filename", .string(f.filename)),
            ("purpose", .string(f.purpose)), ("status", .string("processed")), ("status_details", .null),
        ])
    }

    static func response(_ value: OrderedJSON) -> Response { ResponsesSurface.jsonResponse(value) }
}
