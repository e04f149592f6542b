import NIOCore

/// One write: the encoded bytes of one or more commands, and one promise per command, in order.
struct RedisRequest: Sendable {
    var bytes: ByteBuffer
    var promises: [EventLoopPromise<RESPValue>]
}

/// Asks the handler to close the channel once every command already written has its reply.
struct RedisGracefulClose: Sendable {}

/// A command that was never written: its connection was closed first, so sending it on another one is safe (even a
/// command that is not idempotent, such as INCR).
struct RedisNotSent: Error {
    let reason: RedisError
}

/// Matches replies to commands: every write appends its promises to a FIFO queue, every decoded reply completes the
/// oldest one. Commands are written as they come (pipelining); nothing waits for an earlier reply.
///
/// Each command has a deadline (`commandTimeout` after its write). Replies come in order, so if the oldest command is
/// past its deadline the connection is stuck: every waiting command fails with `.timeout` and the channel is closed.
/// One timer is armed at a time, for the oldest deadline, and re-armed lazily when it fires early.
/// A decoding error, an unsolicited reply or the channel closing fails every waiting command the same way.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let deadline: NIODeadline
    }

    private enum State {
        case open
        /// A graceful close was asked for: no new commands; the channel closes when the queue is empty.
        case closing
        /// The channel is closed or closing because of this error; later writes fail with it, unsent.
        case closed(RedisError)
    }

    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var state = State.open
    private var timer: Scheduled<Void>?
    private let commandTimeout: TimeAmount
    private let endpoint: String

    init(commandTimeout: TimeAmount, endpoint: String) {
        self.commandTimeout = commandTimeout
        self.endpoint = endpoint
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        switch state {
        case .open:
            let deadline = context.eventLoop.now + commandTimeout
            for commandPromise in request.promises {
                pending.append(Pending(promise: commandPromise, deadline: deadline))
            }
            armTimer(context: context)
            context.write(wrapOutboundOut(request.bytes), promise: promise)
        case .closing:
            request.promises.forEach { $0.fail(RedisError.closed) }
            promise?.fail(RedisError.closed)
        case .closed(let error):
            let notSent = RedisNotSent(reason: error)
            request.promises.forEach { $0.fail(notSent) }
            promise?.fail(notSent)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let reply = unwrapInboundIn(data)
        guard let oldest = pending.popFirst() else {
            // RESP2 without pub/sub never speaks first: this is not the server we think it is.
            fail(context: context, with: .protocolViolation("\(endpoint) sent a reply with no command waiting for it"))
            return
        }
        oldest.promise.succeed(reply)
        if pending.isEmpty, case .closing = state {
            state = .closed(.closed)
            context.close(promise: nil)
        }
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is RedisGracefulClose else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        promise?.succeed()
        guard case .open = state else { return }
        if pending.isEmpty {
            state = .closed(.closed)
            context.close(promise: nil)
        } else {
            state = .closing
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // After the first error the channel is closing; later ones (data read meanwhile) change nothing.
        if case .closed = state { return }
        let redisError = (error as? RedisError) ?? .connection("\(endpoint): \(describeNetworkError(error))")
        fail(context: context, with: redisError)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let lost = RedisError.connection("the connection to \(endpoint) was closed")
        switch state {
        case .open, .closing: state = .closed(lost)
        case .closed: break
        }
        failPending(with: lost)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        failPending(with: .connection("the connection to \(endpoint) was closed"))
    }

    /// Fails every waiting command with `error` and closes the channel; later writes fail unsent.
    private func fail(context: ChannelHandlerContext, with error: RedisError) {
        if case .closed = state {} else { state = .closed(error) }
        failPending(with: error)
        context.close(promise: nil)
    }

    private func failPending(with error: RedisError) {
        while let waiting = pending.popFirst() {
            waiting.promise.fail(error)
        }
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, let oldest = pending.first else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: oldest.deadline) { [self] in
            timer = nil
            guard let oldest = pending.first else { return }
            if oldest.deadline <= context.eventLoop.now {
                fail(context: context, with: .timeout)
            } else {
                armTimer(context: context)
            }
        }
    }
}
