import Core
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A small HTTP/1.1 client for plain-HTTP upstreams (servers on loopback or the local network), for answers read
/// whole: one request per connection at a time, connections kept alive and reused, each exchange bounded in time
/// and in the size of its answer. It does far less than AsyncHTTPClient (no TLS, no redirects, no streaming bodies)
/// and so costs far less per request; HTTPS upstreams and streams go through AsyncHTTPClient.
final class PlainHTTPClient: Sendable {
    struct Endpoint: Hashable, Sendable {
        var host: String
        var port: Int
    }

    struct Response: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: ByteBuffer
    }

    enum Failure: Error, CustomStringConvertible {
        case timedOut(TimeAmount)
        case bodyTooLarge(Int)
        /// The connection closed before the answer was complete; `answered`: some of it had arrived.
        case closed(answered: Bool)
        case malformed(String)

        var description: String {
            switch self {
            case .timedOut(let t): "no answer within \(t.nanoseconds / 1_000_000) ms"
            case .bodyTooLarge(let n): "answered more than \(n) bytes"
            case .closed: "the connection closed before the answer was complete"
            case .malformed(let m): "malformed answer: \(m)"
            }
        }
    }

    static let shared = PlainHTTPClient(group: MultiThreadedEventLoopGroup.singleton)

    private let group: any EventLoopGroup
    private let idle = Mutex<[Endpoint: [any Channel]]>([:])
    /// Connections kept open per endpoint once idle; more are closed after their answer.
    let maxIdlePerEndpoint: Int
    let connectTimeout: TimeAmount

    init(group: any EventLoopGroup, maxIdlePerEndpoint: Int = 64, connectTimeout: TimeAmount = .seconds(10)) {
        self.group = group
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.connectTimeout = connectTimeout
    }

    /// Sends one request and reads its whole answer: at most `maxBody` bytes of body, within `timeout` of sending.
    /// A kept-alive connection that turns out to be closed before any of the answer arrived is replaced once by a
    /// new one.
    func execute(_ endpoint: Endpoint, method: HTTPMethod, path: String, headers: HTTPHeaders, body: ByteBuffer?,
                 timeout: TimeAmount, maxBody: Int) async throws -> Response {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
        if !head.headers.contains(name: "host") { head.headers.add(name: "Host", value: "\(endpoint.host):\(endpoint.port)") }
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body?.readableBytes ?? 0))
        for attempt in 0..<2 {
            let (channel, reused) = try await connection(to: endpoint)
            do {
                let response = try await exchange(on: channel, head: head, body: body, timeout: timeout, maxBody: maxBody)
                release(channel, to: endpoint, keepAlive: response.keepAlive)
                return response.response
            } catch Failure.closed(answered: false) where reused && attempt == 0 && !Task.isCancelled {
                continue
            } catch {
                throw Task.isCancelled ? CancellationError() : error
            }
        }
        throw Failure.closed(answered: false)
    }

    private func connection(to endpoint: Endpoint) async throws -> (any Channel, reused: Bool) {
        while let channel = idle.withLock({ $0[endpoint]?.popLast() }) {
            if channel.isActive { return (channel, true) }
        }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler())
                }
            }
        return (try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get(), false)
    }

    private func release(_ channel: any Channel, to endpoint: Endpoint, keepAlive: Bool) {
        guard keepAlive, channel.isActive else { channel.close(promise: nil); return }
        let kept = idle.withLock { idle -> Bool in
            guard idle[endpoint, default: []].count < maxIdlePerEndpoint else { return false }
            idle[endpoint, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    private func exchange(on channel: any Channel, head: HTTPRequestHead, body: ByteBuffer?, timeout: TimeAmount,
                          maxBody: Int) async throws -> (response: Response, keepAlive: Bool) {
        let promise = channel.eventLoop.makePromise(of: ExchangeHandler.Result.self)
        let request = ExchangeHandler.Request(head: head, body: body, timeout: timeout, maxBody: maxBody, promise: promise)
        return try await withTaskCancellationHandler {
            // A connection found closed fails the write before the handler sees it.
            channel.writeAndFlush(request).whenFailure { _ in promise.fail(PlainHTTPClient.Failure.closed(answered: false)) }
            let result = try await promise.futureResult.get()
            return (result.response, result.keepAlive)
        } onCancel: {
            channel.close(promise: nil)
        }
    }
}

/// Writes one request at a time and collects its answer; fails it on a timeout, an oversized body or a closed
/// connection (and closes the connection then, so that it is never reused half-read).
private final class ExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Request
    typealias OutboundOut = HTTPClientRequestPart

    struct Request: Sendable {
        var head: HTTPRequestHead
        var body: ByteBuffer?
        var timeout: TimeAmount
        var maxBody: Int
        var promise: EventLoopPromise<Result>
    }

    struct Result: Sendable {
        var response: PlainHTTPClient.Response
        var keepAlive: Bool
    }

    private var pending: Request?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var timer: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard pending == nil else {
            request.promise.fail(PlainHTTPClient.Failure.malformed("a request is already in flight on this connection"))
            return
        }
        pending = request
        head = nil
        body.clear()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        let timeout = request.timeout
        timer = context.eventLoop.scheduleTask(in: timeout) {
            bound.value.handler.fail(context: bound.value.context, PlainHTTPClient.Failure.timedOut(timeout))
        }
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let b = request.body, b.readableBytes > 0 { context.write(wrapOutboundOut(.body(.byteBuffer(b))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let request = pending else { return }
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
        case .body(var piece):
            guard body.readableBytes + piece.readableBytes <= request.maxBody else {
                fail(context: context, PlainHTTPClient.Failure.bodyTooLarge(request.maxBody))
                return
            }
            body.writeBuffer(&piece)
        case .end:
            guard let head else { fail(context: context, PlainHTTPClient.Failure.malformed("no response head")); return }
            timer?.cancel()
            timer = nil
            pending = nil
            let response = PlainHTTPClient.Response(status: Int(head.status.code), headers: head.headers, body: body)
            body = ByteBuffer()
            request.promise.succeed(Result(response: response, keepAlive: head.isKeepAlive))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, PlainHTTPClient.Failure.closed(answered: head != nil))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let e = error as? HTTPParserError {
            // The parser sees a connection closed in the middle of a body as an unexpected end.
            fail(context: context, e == .invalidEOFState ? PlainHTTPClient.Failure.closed(answered: true) : PlainHTTPClient.Failure.malformed("\(e)"))
        } else {
            fail(context: context, error)
        }
    }

    private func fail(context: ChannelHandlerContext, _ error: Error) {
        timer?.cancel()
        timer = nil
        if let request = pending {
            pending = nil
            request.promise.fail(error)
        }
        context.close(promise: nil)
    }
}
