import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `/api/v1/streams/{id}`: the rest of a stream after a dropped connection (`GET`, from the event after the SSE
/// `Last-Event-ID` header's, or the `after` query's, number: for NDJSON the count of lines read), and its cancellation
/// from any connection (`DELETE`). Only the key that started a stream (or the admin) sees it; to anyone else it does
/// not exist.
struct StreamRoutes {
    let hub: StreamHub

    func register(on router: Router<GatewayContext>) {
        router.get("/api/v1/streams/:id") { [hub] request, context in
            let stream = try Self.stream(hub, request, context)
            let after = try Self.after(request)
            if after > stream.lastSeq {
                throw APIError(.badRequest, "stream \(stream.id) has sent \(stream.lastSeq) events so far, not \(after)", param: "after",
                               code: "stream_position_invalid")
            }
            if after < stream.firstSeq - 1 {
                throw APIError(.gone, "the events after \(after) of stream \(stream.id) are no longer kept (the first kept is \(stream.firstSeq))",
                               code: "stream_events_gone")
            }
            var headers: HTTPFields = [.contentType: stream.framing.contentType, .cacheControl: "no-cache"]
            headers[StreamHub.idHeader] = stream.id
            return Response(status: .ok, headers: headers, body: stream.body(after: after, original: false))
        }
        router.delete("/api/v1/streams/:id") { [hub] request, context in
            let stream = try Self.stream(hub, request, context)
            stream.cancel()
            // The engine stops at its next token: answered once the stream has ended, with how.
            let ending = await stream.ended()
            return try json(Status(id: stream.id, status: ending == .completed ? "completed" : "cancelled"))
        }
    }

    struct Status: Encodable {
        let id: String
        var object = "stream"
        let status: String
        init(id: String, status: String) { self.id = id; self.status = status }
    }

    private static func stream(_ hub: StreamHub, _ request: Request, _ context: GatewayContext) throws -> ResumableStream {
        let id = context.parameters.get("id") ?? ""
        guard let stream = hub.find(id, for: context.caller) else {
            throw APIError(.notFound, "no stream '\(id)' here: it ended longer ago than the grace period, or another server runs it",
                           code: "stream_not_found")
        }
        return stream
    }

    /// The number of the last event the client has: `Last-Event-ID`, else `?after=`, else 0 (from the start).
    private static func after(_ request: Request) throws -> Int {
        let given = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("after")
        guard let given else { return 0 }
        guard let n = Int(given.trimmingCharacters(in: .whitespaces)), n >= 0 else {
            throw APIError(.badRequest, "Last-Event-ID (or after) must be the number of an event the stream sent", param: "after")
        }
        return n
    }
}
