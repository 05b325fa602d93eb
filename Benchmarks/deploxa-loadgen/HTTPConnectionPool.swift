// A per-event-loop pool of HTTP/1.1 keep-alive connections, one request in flight on each.
//
// Everything here runs on the pool's own event loop (the pool is confined to it, hence
// `@unchecked Sendable`). Requests that find no idle connection wait in a FIFO queue; a new
// connection is opened for each waiting request until `maxConnections` is reached.

import NIOCore
import NIOHTTP1
import NIOPosix

/// One scheduled request.
struct PoolJob {
    /// Scheduled send time (monotonic nanoseconds).
    var scheduled: UInt64
    /// False during the warm-up.
    var measured: Bool
}

enum FailureKind: String, CaseIterable, Sendable {
    /// Could not connect.
    case connect
    /// The connection failed or was closed before the response ended.
    case io
    /// No complete response within --timeout of the scheduled time (incl. time queued here).
    case timeout
}

final class HTTPConnectionPool: @unchecked Sendable {
    let eventLoop: EventLoop
    private let address: SocketAddress
    private let head: HTTPRequestHead
    private let body: ByteBuffer?
    private let maxConnections: Int
    private var bootstrap: ClientBootstrap!

    private var idle: [PooledConnection] = []  // LIFO, so few connections stay hot
    private var connected: [PooledConnection] = []
    private var connecting = 0
    private var pending = CircularBuffer<PoolJob>(initialCapacity: 1024)
    private var closing = false

    private(set) var connectionsOpened = 0
    private(set) var peakConnections = 0

    /// (job, status code, completion time)
    var onComplete: (PoolJob, UInt, UInt64) -> Void = { _, _, _ in }
    var onFailure: (PoolJob, FailureKind) -> Void = { _, _ in }

    init(eventLoop: EventLoop, target: Target, maxConnections: Int, connectTimeout: TimeAmount) {
        self.eventLoop = eventLoop
        self.address = target.address
        self.head = target.head
        self.body = target.body
        self.maxConnections = maxConnections
        self.bootstrap = ClientBootstrap(group: eventLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { [unowned self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(PooledConnection(pool: self))
                }
            }
    }

    // MARK: API used by the runner (on the event loop)

    func submit(_ job: PoolJob) {
        if let conn = idle.popLast() {
            conn.send(job, head: head, body: body)
        } else {
            pending.append(job)
            openIfNeeded()
        }
    }

    /// Fails every queued or in-flight request older than `timeout` (synchronously).
    func expire(now: UInt64, timeout: UInt64) {
        while let first = pending.first, now &- first.scheduled >= timeout {
            pending.removeFirst()
            onFailure(first, .timeout)
        }
        for conn in connected {
            if let job = conn.job, now &- job.scheduled >= timeout {
                conn.job = nil
                onFailure(job, .timeout)
                conn.close()
            }
        }
    }

    /// Fails everything still outstanding as `kind` and closes all connections.
    func shutdown(failingOutstandingAs kind: FailureKind) {
        closing = true
        while let job = pending.popFirst() { onFailure(job, kind) }
        for conn in connected {
            if let job = conn.job {
                conn.job = nil
                onFailure(job, kind)
            }
            conn.close()
        }
        idle.removeAll()
    }

    // MARK: connection management

    private func openIfNeeded() {
        while !closing, pending.count > connecting, connected.count + connecting < maxConnections {
            connecting += 1
            connectionsOpened += 1
            bootstrap.connect(to: address).whenComplete { [self] result in
                // Runs on self.eventLoop: the bootstrap's only loop.
                self.connecting -= 1
                switch result {
                case .success(let channel):
                    guard let conn = try? channel.pipeline.syncOperations.handler(type: PooledConnection.self)
                    else {
                        channel.close(promise: nil)
                        self.connectFailed()
                        return
                    }
                    self.didConnect(conn)
                case .failure:
                    self.connectFailed()
                }
            }
        }
    }

    private func didConnect(_ conn: PooledConnection) {
        if closing {
            conn.close()
            return
        }
        connected.append(conn)
        peakConnections = max(peakConnections, connected.count)
        makeAvailable(conn)
    }

    private func connectFailed() {
        // Charge the failure to the oldest waiting request, then try again for the rest.
        if let job = pending.popFirst() { onFailure(job, .connect) }
        openIfNeeded()
    }

    private func makeAvailable(_ conn: PooledConnection) {
        if let job = pending.popFirst() {
            conn.send(job, head: head, body: body)
        } else {
            idle.append(conn)
        }
    }

    fileprivate func responseEnded(_ conn: PooledConnection, status: UInt, keepAlive: Bool) {
        let now = nowNanos()
        guard let job = conn.job else { return }  // already expired
        conn.job = nil
        onComplete(job, status, now)
        if keepAlive && !closing {
            makeAvailable(conn)
        } else {
            conn.close()  // connectionClosed() will follow
        }
    }

    fileprivate func connectionClosed(_ conn: PooledConnection) {
        if let i = connected.firstIndex(where: { $0 === conn }) { connected.remove(at: i) }
        if let i = idle.firstIndex(where: { $0 === conn }) { idle.remove(at: i) }
        if let job = conn.job {
            conn.job = nil
            onFailure(job, .io)
        }
        openIfNeeded()
    }
}

/// The last handler of a pooled connection's pipeline (after NIOHTTP1's client codec).
final class PooledConnection: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let pool: HTTPConnectionPool
    private var context: ChannelHandlerContext?
    fileprivate var job: PoolJob?
    private var status: UInt = 0
    private var keepAlive = true
    private var closed = false

    init(pool: HTTPConnectionPool) {
        self.pool = pool
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    fileprivate func send(_ job: PoolJob, head: HTTPRequestHead, body: ByteBuffer?) {
        self.job = job
        self.status = 0
        self.keepAlive = true
        guard let context, !closed else {
            // Cannot happen for a connection that is idle; be safe anyway.
            return
        }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if let body {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    fileprivate func close() {
        guard !closed else { return }
        closed = true
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status.code
            keepAlive = head.isKeepAlive
        case .body:
            break  // counted as read; never buffered
        case .end:
            pool.responseEnded(self, status: status, keepAlive: keepAlive)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        pool.connectionClosed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        close()
    }
}
