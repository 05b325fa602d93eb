// Opens --concurrency connections at once, one (streaming) request each, and reads every body
// as it arrives, counting bytes only. Ends when all streams have ended or failed, or when --hold
// seconds have passed; then closes everything and reports.

import NIOCore
import NIOHTTP1
import NIOPosix

struct StreamsConfig: Sendable {
    var concurrency: Int
    var hold: Double
    var connectTimeout: Double
    var threads: Int
}

struct StreamsReport: Sendable {
    var concurrency = 0
    /// Response head with status 200 received.
    var established = 0
    /// At least one body byte received.
    var firstByte = 0
    /// Response body ended.
    var completed = 0
    /// Still streaming when --hold ran out (closed by us; not an error).
    var heldToEnd = 0
    var statusCounts: [UInt: Int] = [:]
    var errorCounts: [FailureKind: Int] = [:]
    var bodyBytes = 0
    var timeToFirstByte: [UInt64] = []
    var elapsed: Double = 0

    var errors: Int { errorCounts.values.reduce(0, +) }

    mutating func merge(_ o: StreamsReport) {
        concurrency += o.concurrency
        established += o.established
        firstByte += o.firstByte
        completed += o.completed
        heldToEnd += o.heldToEnd
        mergeCounts(&statusCounts, o.statusCounts)
        mergeCounts(&errorCounts, o.errorCounts)
        bodyBytes += o.bodyBytes
        timeToFirstByte += o.timeToFirstByte
    }

    func json() -> String {
        let ttfb = Percentiles(nanos: timeToFirstByte)
        let errorKinds = FailureKind.allCases.filter { $0 != .timeout }
            .map { "\"\($0.rawValue)\":\(errorCounts[$0, default: 0])" }
        return "{"
            + "\"concurrency\":\(concurrency),"
            + "\"established\":\(established),"
            + "\"first_byte\":\(firstByte),"
            + "\"completed\":\(completed),"
            + "\"errors\":\(errors),"
            + "\"status_counts\":\(jsonCounts(statusCounts)),"
            + "\"error_counts\":{\(errorKinds.joined(separator: ","))},"
            + "\"held_to_end\":\(heldToEnd),"
            + "\"body_bytes\":\(bodyBytes),"
            + "\"ttfb_p50_ms\":\(json3(ttfb.p50)),"
            + "\"ttfb_p99_ms\":\(json3(ttfb.p99)),"
            + "\"ttfb_max_ms\":\(json3(ttfb.max)),"
            + "\"elapsed_s\":\(json3(elapsed))"
            + "}"
    }

    func text(target: Target, config: StreamsConfig) -> String {
        let ttfb = Percentiles(nanos: timeToFirstByte)
        let errorKinds = FailureKind.allCases.filter { $0 != .timeout }
            .map { "\($0.rawValue) \(errorCounts[$0, default: 0])" }
        return """
            deploxa-loadgen streams: \(target.head.method.rawValue) \(target.url)
              \(config.concurrency) concurrent requests, hold up to \(fmt3(config.hold)) s, \(config.threads) thread(s)
            concurrency:    \(concurrency)
            established:    \(established) (status 200 head received)
            first byte:     \(firstByte)
            completed:      \(completed)
            held to end:    \(heldToEnd) (still streaming when the hold ran out)
            errors:         \(errors) (\(errorKinds.joined(separator: ", ")))
            status counts:  \(textCounts(statusCounts))
            body bytes:     \(bodyBytes)
            ttfb (ms):      p50 \(fmt3(ttfb.p50))  p99 \(fmt3(ttfb.p99))  max \(fmt3(ttfb.max))
            elapsed:        \(fmt3(elapsed)) s
            """
    }
}

struct StreamsRunner {
    var target: Target
    var config: StreamsConfig

    func run() throws -> StreamsReport {
        raiseOpenFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        defer { try? group.syncShutdownGracefully() }

        let began = nowNanos()
        let holdUntil = began + UInt64(config.hold * 1e9)
        var futures: [EventLoopFuture<StreamsReport>] = []
        for shardIndex in 0..<config.threads {
            let count = config.concurrency / config.threads + (shardIndex < config.concurrency % config.threads ? 1 : 0)
            guard count > 0 else { continue }
            let loop = group.next()
            let target = self.target
            let connectTimeout = TimeAmount.nanoseconds(Int64(config.connectTimeout * 1e9))
            futures.append(
                loop.flatSubmit {
                    StreamsShard(loop: loop, target: target, count: count, connectTimeout: connectTimeout)
                        .start(holdUntil: holdUntil)
                })
        }
        var report = StreamsReport()
        for r in try EventLoopFuture.whenAllSucceed(futures, on: group.next()).wait() { report.merge(r) }
        report.elapsed = Double(nowNanos() - began) / 1e9
        return report
    }
}

/// One event loop's streams. Confined to `loop`.
private final class StreamsShard: @unchecked Sendable {
    private let loop: EventLoop
    private let target: Target
    private let count: Int
    private let connectTimeout: TimeAmount
    private var live: [ObjectIdentifier: StreamHandler] = [:]
    private var remaining: Int
    private var finished = false
    private var report = StreamsReport()
    private let promise: EventLoopPromise<StreamsReport>
    private var holdTimer: Scheduled<Void>?

    init(loop: EventLoop, target: Target, count: Int, connectTimeout: TimeAmount) {
        self.loop = loop
        self.target = target
        self.count = count
        self.remaining = count
        self.connectTimeout = connectTimeout
        self.promise = loop.makePromise()
        report.concurrency = count
        report.timeToFirstByte.reserveCapacity(count)
    }

    func start(holdUntil: UInt64) -> EventLoopFuture<StreamsReport> {
        holdTimer = loop.scheduleTask(deadline: .uptimeNanoseconds(holdUntil)) { [self] in self.finish() }
        for _ in 0..<count {
            let handler = StreamHandler(shard: self, startedAt: nowNanos())
            live[ObjectIdentifier(handler)] = handler
            let bound = NIOLoopBound(handler, eventLoop: loop)
            ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(connectTimeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(bound.value)
                    }
                }
                .connect(to: target.address)
                .whenFailure { [self] _ in self.connectFailed(bound.value) }
        }
        return promise.futureResult
    }

    private func connectFailed(_ handler: StreamHandler) {
        guard live.removeValue(forKey: ObjectIdentifier(handler)) != nil, !finished else { return }
        report.errorCounts[.connect, default: 0] += 1
        remaining -= 1
        if remaining == 0 { finish() }
    }

    fileprivate func head(_ status: UInt) {
        guard !finished else { return }
        report.statusCounts[status, default: 0] += 1
        if status == 200 { report.established += 1 }
    }

    fileprivate func firstByte(after nanos: UInt64) {
        guard !finished else { return }
        report.firstByte += 1
        report.timeToFirstByte.append(nanos)
    }

    /// Called once per connected stream when its channel goes inactive.
    fileprivate func streamClosed(_ handler: StreamHandler) {
        guard live.removeValue(forKey: ObjectIdentifier(handler)) != nil, !finished else { return }
        report.bodyBytes += handler.bytes
        if handler.ended {
            report.completed += 1
        } else {
            report.errorCounts[.io, default: 0] += 1  // closed before the body ended
        }
        remaining -= 1
        if remaining == 0 { finish() }
    }

    fileprivate var template: (HTTPRequestHead, ByteBuffer?) { (target.head, target.body) }

    private func finish() {
        guard !finished else { return }
        // Count what is still open, then close it (closing may call back synchronously: the
        // callbacks are ignored once `finished` is set).
        finished = true
        let stillOpen = Array(live.values)
        live.removeAll()
        for handler in stillOpen {
            report.bodyBytes += handler.bytes
            if handler.ended {
                report.completed += 1
            } else if handler.connected {
                report.heldToEnd += 1
            } else {
                report.errorCounts[.connect, default: 0] += 1  // still connecting at the deadline
            }
            handler.close()
        }
        holdTimer?.cancel()
        promise.succeed(report)
    }
}

private final class StreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let shard: StreamsShard
    private let startedAt: UInt64
    private var context: ChannelHandlerContext?
    fileprivate var connected = false
    fileprivate var ended = false
    fileprivate var bytes = 0

    init(shard: StreamsShard, startedAt: UInt64) {
        self.shard = shard
        self.startedAt = startedAt
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func channelActive(context: ChannelHandlerContext) {
        connected = true
        let (head, body) = shard.template
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            shard.head(head.status.code)
        case .body(let buffer):
            if bytes == 0 && buffer.readableBytes > 0 { shard.firstByte(after: nowNanos() - startedAt) }
            bytes += buffer.readableBytes
        case .end:
            ended = true
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        shard.streamClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    func close() {
        context?.close(promise: nil)
    }
}
