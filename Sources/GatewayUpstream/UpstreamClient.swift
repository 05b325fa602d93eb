import AsyncHTTPClient
import Dispatch
import Foundation
import GatewayCore
import GatewayHTTP
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Deadlines for one provider call (one attempt of a fallback chain). Generations can take
/// minutes, so the first-byte deadline is generous by default; a stream that goes quiet for
/// `idle` is dead; `total` bounds the whole attempt, head and body.
public struct UpstreamTimeouts: Sendable, Equatable {
    public var connect: Double
    /// Until the response head arrives (for non-streamed calls that is most of the generation).
    public var firstByte: Double
    /// Longest silence between two reads of the body.
    public var idle: Double
    /// From sending the request to the body's last byte.
    public var total: Double

    public init(connect: Double = 10, firstByte: Double = 600, idle: Double = 300, total: Double = 900) {
        self.connect = connect
        self.firstByte = firstByte
        self.idle = idle
        self.total = total
    }
}

/// Why a provider call produced no HTTP answer.
public enum UpstreamFailure: Error, Sendable, Equatable {
    case timeout(String)
    case connection(String)

    public func gatewayError(provider: String) -> GatewayError {
        switch self {
        case .timeout(let what):
            return .upstreamTimeout("\(provider) did not answer in time (\(what)).")
        case .connection(let what):
            return .upstreamError("Could not reach \(provider): \(what).")
        }
    }
}

/// The provider's answer: head now, body as it arrives.
public struct UpstreamResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: UpstreamBody
    /// Uptime nanoseconds at which the attempt's total deadline passes.
    var deadline: UInt64 = .max
}

/// When the reader started waiting for the next body chunk (nil: not waiting). Only time spent
/// waiting on the provider counts as idle, not time spent writing to a slow client.
final class BodyActivity: Sendable {
    private let waitingSince = Mutex<UInt64?>(nil)

    func startWaiting() { waitingSince.withLock { $0 = DispatchTime.now().uptimeNanoseconds } }
    func stopWaiting() { waitingSince.withLock { $0 = nil } }
    var waitedNanoseconds: UInt64 {
        waitingSince.withLock { $0.map { DispatchTime.now().uptimeNanoseconds - $0 } ?? 0 }
    }
}

/// The response body as a sequence of byte chunks; errors come out as `UpstreamFailure`.
public struct UpstreamBody: AsyncSequence, Sendable {
    public typealias Element = [UInt8]
    let call: UpstreamCallHandle
    let activity = BodyActivity()

    public struct AsyncIterator: AsyncIteratorProtocol {
        let call: UpstreamCallHandle
        let activity: BodyActivity

        public mutating func next() async throws -> [UInt8]? {
            activity.startWaiting()
            defer { activity.stopWaiting() }
            do {
                guard let buffer = try await call.exchange.nextPart() else { return nil }
                return Array(buffer.readableBytesView)
            } catch {
                throw UpstreamClient.classify(error)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(call: call, activity: activity) }

    /// Reads the whole body, refusing more than `limit` bytes.
    public func collect(limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in self {
            bytes.append(contentsOf: chunk)
            if bytes.count > limit {
                throw UpstreamFailure.connection("response larger than \(limit) bytes")
            }
        }
        return bytes
    }
}

/// Carries the caller's body-reading closure into the task that runs it. The closure never
/// outlives `readBody`, which waits for that task, and runs on one task at a time.
private struct BodyReader<T>: @unchecked Sendable {
    let work: (UpstreamBody) async throws -> T
}

/// The only place that speaks HTTP to providers: pooled keep-alive connections, TLS, streaming.
public final class UpstreamClient: Sendable {
    private let client: HTTPClient
    private let loop: MultiThreadedEventLoopGroup
    /// The group's one loop, where every call starts and runs.
    private let callLoop: any EventLoop
    public let timeouts: UpstreamTimeouts
    private let watchdog: IdleWatchdog
    private let templates = RequestTemplates()

    public init(timeouts: UpstreamTimeouts, maxConnectionsPerHost: Int = 2048) {
        var configuration = HTTPClient.Configuration()
        // No client-level read timeout: it would also run while waiting for the response head
        // and cut the first-byte deadline short. Idle is enforced by `readBody` instead.
        configuration.timeout = .init(connect: .milliseconds(Int64(timeouts.connect * 1000)), read: nil)
        // AsyncHTTPClient allows 8 connections per host by default; past that, calls queue and
        // fail after 10 s (docs/design-notes.md, trap 1). One in-flight call needs one connection.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnectionsPerHost)
        configuration.decompression = .disabled
        configuration.redirectConfiguration = .disallow
        configuration.httpVersion = .http1Only
        // No tracer: with the default no-op one the client still builds a span and its attributes
        // for every call (2% of a worker's CPU). The gateway's own traces name the calls.
        configuration.tracing.tracer = nil
        // One event loop of the client's own: a call's delegate runs on the loop of the
        // connection it uses, so no call hops between two loops.
        self.loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.callLoop = loop.next()
        self.client = HTTPClient(eventLoopGroupProvider: .shared(loop), configuration: configuration)
        self.timeouts = timeouts
        self.watchdog = IdleWatchdog(idleSeconds: timeouts.idle, totalSeconds: timeouts.total)
    }

    public func send(_ request: UpstreamRequest) async throws(UpstreamFailure) -> UpstreamResponse {
        let sentAt = DispatchTime.now().uptimeNanoseconds
        let headDeadline = min(timeouts.firstByte, timeouts.total)
        do {
            var headers = NIOHTTP1.HTTPHeaders()
            for header in request.headers { headers.add(name: header.name, value: header.value) }
            let body: HTTPClient.Body? = !request.body.isEmpty || request.method == "POST"
                ? .byteBuffer(ByteBuffer(bytes: request.body)) : nil
            var outgoing = try templates.request(method: request.method, url: request.url)
            outgoing.headers = headers
            outgoing.body = body
            let exchange = UpstreamExchange(headDeadline: .uptimeNanoseconds(sentAt &+ UInt64(min(headDeadline, 1e9) * 1e9)))
            // Started on the client's loop: from there the client's own steps (queueing on the
            // pool, writing the request, watching the task's end) need no hop of their own. The
            // group has that one loop, so `.indifferent` keeps the call on it; naming the loop
            // (`.delegateAndChannel(on:)`) cost 10 % more worker CPU (BENCHMARKS.md, "The
            // request thread waits for nobody's disk").
            let call = UpstreamCallHandle(exchange: exchange)
            let (client, loop) = (self.client, self.callLoop)
            loop.execute {
                exchange.start(client.execute(request: outgoing, delegate: exchange, eventLoop: .indifferent))
            }
            let head = try await exchange.head()
            return UpstreamResponse(
                status: Int(head.status.code),
                headers: head.headers.map { (name: $0.name, value: $0.value) },
                body: UpstreamBody(call: call),
                deadline: sentAt &+ UInt64(timeouts.total * 1e9))
        } catch {
            throw UpstreamClient.classify(error)
        }
    }

    /// Runs `work`, which reads `response.body`, and fails it with `.timeout` when the provider
    /// stays silent for longer than the idle deadline while the body is being waited on, or the
    /// attempt passes its total deadline. One watchdog per client checks every read in flight, so
    /// a request costs no extra timer. The read runs in a task of its own, which is what the
    /// watchdog cancels (through the task's handle): the request's own task stays usable, so it
    /// can go on to a fallback target. That task is unstructured only so that the watchdog can
    /// hold its handle; `readBody` always waits for it, and passes its own cancellation on to it.
    public func readBody<T: Sendable>(_ response: UpstreamResponse, _ work: (UpstreamBody) async throws -> T) async throws -> T {
        let body = response.body
        // Everything already arrived (a small answer usually comes with its head): nothing can
        // go quiet or run late, so the read needs neither its own task nor the watchdog.
        if body.call.exchange.isOver { return try await work(body) }
        let watchdog = self.watchdog
        let timeouts = self.timeouts
        return try await withoutActuallyEscaping(work) { work in
            let reader = BodyReader(work: work)
            // On the request's own executor (an unstructured task would otherwise run on the
            // cooperative pool, two thread hand-offs more per read).
            let task = Task(executorPreference: RequestExecution.executor) { try await reader.work(body) }
            let registration = watchdog.register(activity: body.activity, deadline: response.deadline) { task.cancel() }
            defer { watchdog.unregister(registration) }
            do {
                return try await withTaskCancellationHandler {
                    try await task.value
                } onCancel: {
                    task.cancel()
                }
            } catch {
                switch watchdog.expiry(registration) {
                case .idle?: throw UpstreamFailure.timeout("the provider went quiet for more than \(Self.seconds(timeouts.idle))")
                case .total?: throw UpstreamFailure.timeout("the answer took longer than the total deadline of \(Self.seconds(timeouts.total))")
                case nil: throw error
                }
            }
        }
    }

    public func shutdown() async {
        watchdog.stop()
        try? await client.shutdown()
        try? await loop.shutdownGracefully()
    }

    /// Runs `body` on the client's event-loop thread and waits for it (a worker binds that thread
    /// to its CPU at start: `CPUAffinity`). Call it from outside the loop.
    public func runOnEventLoopThread<Result: Sendable>(_ body: @escaping @Sendable () -> Result) -> Result? {
        try? callLoop.submit(body).wait()
    }

    /// For a worker's last moments, outside any event loop.
    public func shutdownBlocking() {
        watchdog.stop()
        try? client.syncShutdown()
        try? loop.syncShutdownGracefully()
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    static func classify(_ error: any Error) -> UpstreamFailure {
        if let failure = error as? UpstreamFailure { return failure }
        if let clientError = error as? HTTPClientError {
            switch clientError {
            case .deadlineExceeded: return .timeout("no response within the first-byte deadline")
            case .readTimeout: return .timeout("the response went quiet past the idle deadline")
            case .connectTimeout: return .timeout("connect timed out")
            case .remoteConnectionClosed: return .connection("the provider closed the connection")
            case .cancelled: return .connection("cancelled")
            default: return .connection(clientError.shortDescription)
            }
        }
        if error is CancellationError { return .connection("cancelled") }
        if let ioError = error as? IOError { return .connection(ioError.description) }
        return .connection(String(describing: type(of: error)))
    }
}

/// Requests to the same few provider URLs, each URL parsed once: Foundation's parsing and the
/// client's splitting of it cost about 2 % of the request thread's time per call.
private final class RequestTemplates: Sendable {
    private struct Target: Hashable {
        let method: String
        let url: String
    }

    private let templates = Mutex<[Target: HTTPClient.Request]>([:])
    private static let limit = 1_024

    /// A request for `method` and `url` without headers or body.
    func request(method: String, url: String) throws -> HTTPClient.Request {
        let target = Target(method: method, url: url)
        if let known = templates.withLock({ $0[target] }) { return known }
        let made = try HTTPClient.Request(url: url, method: HTTPMethod(rawValue: method))
        templates.withLock { templates in
            if templates.count >= Self.limit { templates.removeAll(keepingCapacity: true) }
            templates[target] = made
        }
        return made
    }
}
