import NIOCore
import NIOHTTP1

/// The per-connection NIO handler: collects a request, asks the router for a
/// `SimulatedResponse`, and plays its steps back with event-loop timers — never a sleeping
/// thread, so thousands of slow streams cost only memory.
///
/// Sits behind NIO's HTTP/1.1 server pipeline with pipelining assistance, so one request is
/// handled at a time per connection and keep-alive just works.
final class SimulatorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(head: HTTPRequestHead, body: ByteBuffer, tooLarge: Bool)
        case responding
        case closed
    }

    private let router: SimulatorRouter
    private var state = State.idle
    private var steps: ArraySlice<PlaybackStep> = []
    private var timer: Scheduled<Void>?
    private var lastWrite: EventLoopFuture<Void>?
    private var countsInFlight = false

    init(router: SimulatorRouter) {
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .idle = state else { return }
            if head.headers["expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                let interim = HTTPResponseHead(version: head.version, status: .continue)
                context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
            }
            state = .receiving(head: head, body: context.channel.allocator.buffer(capacity: 0), tooLarge: false)

        case .body(var part):
            guard case .receiving(let head, var body, var tooLarge) = state else { return }
            state = .responding  // drop the enum's reference so `body` is appended in place
            if tooLarge || body.readableBytes + part.readableBytes > SimulatorRouter.maxBodyBytes {
                tooLarge = true
                body.clear()
            } else {
                body.writeBuffer(&part)
            }
            state = .receiving(head: head, body: body, tooLarge: tooLarge)

        case .end:
            guard case .receiving(let head, let body, let tooLarge) = state else { return }
            state = .responding
            respond(context: context, head: head, body: body, tooLarge: tooLarge)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        finishResponse()
        state = .closed
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func respond(context: ChannelHandlerContext, head: HTTPRequestHead, body: ByteBuffer, tooLarge: Bool) {
        let request = SimulatorRequest(head: head, body: body)
        let response = tooLarge ? router.payloadTooLarge(request) : router.respond(to: request)
        if SimulatorRouter.isProviderPath(request.path) {
            router.stats.enterFlight()
            countsInFlight = true
        }
        steps = SimulatorPlayback.steps(
            for: response, version: head.version, keepAlive: head.isKeepAlive && !tooLarge)[...]
        play(context: context)
    }

    /// Executes steps until a wait (which re-enters here from a timer) or the end.
    private func play(context: ChannelHandlerContext) {
        while case .responding = state, let step = steps.popFirst() {
            switch step {
            case .wait(let milliseconds):
                timer = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(milliseconds))) {
                    self.timer = nil
                    self.play(context: context)
                }
                return

            case .head(let head):
                context.writeAndFlush(wrapOutboundOut(.head(head)), promise: nil)

            case .write(let bytes):
                let part = HTTPServerResponsePart.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))
                lastWrite = context.writeAndFlush(wrapOutboundOut(part))

            case .end(let closeConnection):
                // Back to idle before writing `.end`: the pipelining handler may deliver the
                // next request on this connection from inside that write.
                finishResponse()
                state = .idle
                let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
                if closeConnection {
                    state = .closed
                    let channel = context.channel
                    written.whenComplete { _ in channel.close(promise: nil) }
                }
                return

            case .disconnect:
                let pending = lastWrite
                finishResponse()
                state = .closed
                let channel = context.channel
                if let pending {
                    // Drop the connection once what was written has reached the socket.
                    pending.whenComplete { _ in channel.close(promise: nil) }
                } else {
                    channel.close(promise: nil)
                }
                return
            }
        }
    }

    private func finishResponse() {
        steps = []
        lastWrite = nil
        if countsInFlight {
            countsInFlight = false
            router.stats.leaveFlight()
        }
    }
}
