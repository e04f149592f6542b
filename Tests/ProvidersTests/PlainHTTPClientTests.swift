import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
@testable import Providers

/// A raw HTTP/1.1 server on loopback whose answer to each request is scripted, counting the connections it accepts.
final class ScriptedServer: Sendable {
    enum Action: Sendable {
        case answer(status: Int, body: String, close: Bool = false)
        /// Reads the request and never answers.
        case hang
        /// Sends the head and part of the body, then closes the connection.
        case cutOff
    }

    final class Counts: Sendable {
        let connections = Mutex(0)
        let requests = Mutex(0)
    }

    let channel: any Channel
    let counts: Counts
    var connections: Int { counts.connections.withLock { $0 } }
    var requests: Int { counts.requests.withLock { $0 } }
    var port: Int { channel.localAddress?.port ?? 0 }

    init(_ script: @escaping @Sendable (Int) -> Action) async throws {
        let counts = Counts()
        self.counts = counts
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counts.connections.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Responder(script: script, counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async { try? await channel.close() }

    final class Responder: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let script: @Sendable (Int) -> Action
        let counts: Counts
        init(script: @escaping @Sendable (Int) -> Action, counts: Counts) { self.script = script; self.counts = counts }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .end = unwrapInboundIn(data) else { return }
            let n = counts.requests.withLock { $0 += 1; return $0 }
            switch script(n) {
            case .answer(let status, let body, let close):
                var head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: status))
                head.headers.add(name: "Content-Length", value: String(body.utf8.count))
                if close { head.headers.add(name: "Connection", value: "close") }
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if close { context.close(promise: nil) } }
            case .hang:
                break
            case .cutOff:
                var head = HTTPResponseHead(version: .http1_1, status: .ok)
                head.headers.add(name: "Content-Length", value: "100")
                context.write(wrapOutboundOut(.head(head)), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{\"partial")))), promise: nil)
                context.close(promise: nil)
            }
        }
    }
}

@Suite struct PlainHTTPClientTests {
    let client = PlainHTTPClient(group: MultiThreadedEventLoopGroup.singleton)

    func post(_ server: ScriptedServer, timeout: TimeAmount = .seconds(10), maxBody: Int = 1 << 20) async throws -> PlainHTTPClient.Response {
        try await client.execute(.init(host: "127.0.0.1", port: server.port), method: .POST, path: "/v1/chat/completions",
                                 headers: ["Content-Type": "application/json"], body: ByteBuffer(string: "{}"),
                                 timeout: timeout, maxBody: maxBody)
    }

    @Test func answersComeWholeOverOneKeptAliveConnection() async throws {
        let server = try await ScriptedServer { n in .answer(status: 200, body: "{\"n\":\(n)}") }
        for i in 1...20 {
            let r = try await post(server)
            #expect(r.status == 200 && String(buffer: r.body) == "{\"n\":\(i)}")
        }
        #expect(server.connections == 1)
        await server.stop()
    }

    @Test func aConnectionTheServerClosedIsReplaced() async throws {
        // Every answer closes its connection: the next request must not fail on the closed one.
        let server = try await ScriptedServer { n in .answer(status: 200, body: "ok \(n)", close: true) }
        for i in 1...5 {
            #expect(String(buffer: try await post(server).body) == "ok \(i)")
        }
        #expect(server.connections == 5)
        await server.stop()
    }

    @Test func errorStatusesComeBackWithTheirBodies() async throws {
        let server = try await ScriptedServer { _ in .answer(status: 503, body: "{\"error\":{\"message\":\"busy\"}}") }
        let r = try await post(server)
        #expect(r.status == 503 && String(buffer: r.body).contains("busy"))
        await server.stop()
    }

    @Test func aSilentServerTimesOutAndItsConnectionIsNotReused() async throws {
        let server = try await ScriptedServer { n in n == 1 ? .hang : .answer(status: 200, body: "late") }
        let start = ContinuousClock.now
        await #expect(throws: PlainHTTPClient.Failure.self) { try await post(server, timeout: .milliseconds(200)) }
        #expect(ContinuousClock.now - start >= .milliseconds(190))
        #expect(String(buffer: try await post(server).body) == "late")
        #expect(server.connections == 2)
        await server.stop()
    }

    @Test func anAnswerPastTheLimitIsRefused() async throws {
        let server = try await ScriptedServer { _ in .answer(status: 200, body: String(repeating: "x", count: 5000)) }
        await #expect {
            try await post(server, maxBody: 1000)
        } throws: { error in
            if case .bodyTooLarge(1000)? = error as? PlainHTTPClient.Failure { return true } else { return false }
        }
        await server.stop()
    }

    @Test func anAnswerCutOffIsAnErrorAndNotRetried() async throws {
        let server = try await ScriptedServer { _ in .cutOff }
        await #expect {
            try await post(server)
        } throws: { error in
            if case .closed(answered: true)? = error as? PlainHTTPClient.Failure { return true } else { return false }
        }
        #expect(server.requests == 1)
        await server.stop()
    }

    @Test func aRefusedConnectionFailsAtOnce() async throws {
        let server = try await ScriptedServer { _ in .hang }
        let port = server.port
        await server.stop()
        await #expect(throws: (any Error).self) {
            try await client.execute(.init(host: "127.0.0.1", port: port), method: .GET, path: "/", headers: [:], body: nil,
                                     timeout: .seconds(10), maxBody: 1000)
        }
    }

    @Test func cancellingTheCallerEndsTheExchange() async throws {
        let server = try await ScriptedServer { _ in .hang }
        let task = Task { try await post(server) }
        try await Task.sleep(for: .milliseconds(100))
        task.cancel()
        let result = await task.result
        #expect(throws: (any Error).self) { try result.get() }
        await server.stop()
    }

    @Test func baseURLsOfPlainUpstreams() {
        let p = OpenAICompatibleProvider.plainEndpoint("http://127.0.0.1:9001/v1")
        #expect(p?.endpoint == .init(host: "127.0.0.1", port: 9001) && p?.path == "/v1")
        #expect(OpenAICompatibleProvider.plainEndpoint("http://localhost/")?.endpoint == .init(host: "localhost", port: 80))
        #expect(OpenAICompatibleProvider.plainEndpoint("https://api.openai.com/v1") == nil)
        #expect(OpenAICompatibleProvider.plainEndpoint("http://user:pw@host/v1") == nil)
    }
}
