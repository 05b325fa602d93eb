#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import Dispatch
import GatewayHTTP
import Logging
import NIOCore
import Synchronization
import GatewayCore

/// Sends each `/v1` request's trace to an OpenTelemetry collector (OTLP over HTTP, JSON
/// encoding): one server span per request with child spans for the limits, every provider call
/// (fallbacks included) and the audit step. A `traceparent` header from the client puts the
/// request into the client's trace.
///
/// Written here rather than with swift-otel: the spans are built after the answer from the
/// timestamps the request path already keeps (nothing runs per request while it is in flight),
/// and swift-otel's OTLP stack adds about seven minutes to each of the project's builds. Export is
/// best effort: spans are batched (every second or 256 spans), at most 4,096 wait, and a
/// collector that is down costs the request path nothing but the dropped spans (counted, logged).
public final class OTLPTraceExporter: Sendable {
    public let endpoint: String
    private let serviceName: String
    private let logger: Logger
    private let client: HTTPClient
    private let state = Mutex(State())
    private static let batchSize = 256
    private static let maxQueued = 4096

    private struct State {
        var spans: [String] = []
        var dropped = 0
        var failing = false
        var stopped = false
        var flusher: Task<Void, Never>?
    }

    public init(endpoint: String, serviceName: String, logger: Logger) {
        self.endpoint = endpoint
        self.serviceName = serviceName
        self.logger = logger
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(5))
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let flusher = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                guard let self else { return }
                await self.flush()
            }
        }
        state.withLock { $0.flusher = flusher }
    }

    /// The spans of one finished request (only `/v1` routes are traced).
    public func export(_ trace: RequestTrace) {
        guard trace.path.hasPrefix("/v1/") else { return }
        let spans = Self.spans(of: trace, clockOffset: Self.clockOffset())
        let full: Bool = state.withLock { state in
            guard !state.stopped else { return false }
            if state.spans.count + spans.count > Self.maxQueued {
                state.dropped += spans.count
                return false
            }
            state.spans.append(contentsOf: spans)
            return state.spans.count >= Self.batchSize
        }
        if full { Task { await self.flush() } }
    }

    /// Sends what is queued (the last call before exit: `shutdown`).
    public func flush() async {
        let (batch, dropped) = state.withLock { state -> ([String], Int) in
            defer { state.spans.removeAll(keepingCapacity: true); state.dropped = 0 }
            return (state.spans, state.dropped)
        }
        if dropped > 0 { logger.warning("trace spans dropped: the collector is not keeping up", metadata: ["spans": "\(dropped)"]) }
        guard !batch.isEmpty else { return }
        var request = HTTPClientRequest(url: endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body(batch)))
        do {
            let response = try await client.execute(request, timeout: .seconds(5))
            _ = try? await response.body.collect(upTo: 1 << 16)
            guard (200..<300).contains(Int(response.status.code)) else { throw CollectorRefused(status: Int(response.status.code)) }
            let recovered = state.withLock { state in defer { state.failing = false }; return state.failing }
            if recovered { logger.info("trace collector reachable again", metadata: ["endpoint": "\(endpoint)"]) }
        } catch {
            let first = state.withLock { state in defer { state.failing = true }; return !state.failing }
            if first {
                logger.warning("trace spans not delivered; dropping them until the collector answers",
                               metadata: ["endpoint": "\(endpoint)", "error": "\(error)", "spans": "\(batch.count)"])
            }
        }
    }

    /// For a worker's last moments, outside Swift's thread pool: sends the last spans (waiting
    /// at most three seconds) and closes the HTTP client.
    public func shutdownBlocking() {
        let flusher = state.withLock { state -> Task<Void, Never>? in
            state.stopped = true
            return state.flusher
        }
        flusher?.cancel()
        let done = DispatchSemaphore(value: 0)
        Task {
            await self.flush()
            done.signal()
        }
        _ = done.wait(timeout: .now() + 3)
        try? client.syncShutdown()
    }

    private struct CollectorRefused: Error, CustomStringConvertible {
        var status: Int
        var description: String { "the collector answered \(status)" }
    }

    // MARK: building spans

    /// Unix nanoseconds minus monotonic nanoseconds, now.
    static func clockOffset() -> Int64 {
        var wall = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        let monotonic = RequestTrace.now()
        return Int64(wall.tv_sec) * 1_000_000_000 + Int64(wall.tv_nsec) - Int64(bitPattern: monotonic)
    }

    /// The request's spans as OTLP JSON objects: the server span first, then its children.
    static func spans(of trace: RequestTrace, clockOffset: Int64) -> [String] {
        let parent = TraceParent(header: trace.traceParent)
        let traceID = parent?.traceID ?? randomHex(bytes: 16)
        let rootID = randomHex(bytes: 8)
        func unix(_ monotonic: UInt64) -> String { String(Int64(bitPattern: monotonic) &+ clockOffset) }
        let end = trace.finishedAt == 0 ? RequestTrace.now() : trace.finishedAt

        var attributes: [(String, Attribute)] = [
            ("http.request.method", .string(trace.method)), ("url.path", .string(trace.path)),
            ("http.response.status_code", .int(trace.status)), ("deploxa.attempts", .int(trace.attempts)),
        ]
        if let id = trace.requestID { attributes.append(("deploxa.request_id", .string(id))) }
        if let provider = trace.provider { attributes.append(("gen_ai.system", .string(provider))) }
        if let cache = trace.cacheResult { attributes.append(("deploxa.cache", .string(cache))) }
        var spans = [span(traceID: traceID, id: rootID, parent: parent?.spanID, name: "\(trace.method) \(trace.path)", kind: 2,
                          start: unix(trace.acceptedAt), end: unix(end), attributes: attributes, error: trace.status >= 500)]

        let started = trace.offset(.started).map { trace.acceptedAt &+ $0 }
        if let started, let admitted = trace.offset(.admitted).map({ trace.acceptedAt &+ $0 }) {
            spans.append(span(traceID: traceID, id: randomHex(bytes: 8), parent: rootID, name: "limits", kind: 1,
                              start: unix(started), end: unix(admitted), attributes: [], error: false))
        }
        for (index, call) in trace.upstreamCalls.enumerated() {
            spans.append(span(traceID: traceID, id: randomHex(bytes: 8), parent: rootID, name: "upstream \(call.provider)", kind: 3,
                              start: unix(call.start), end: unix(call.end),
                              attributes: [("gen_ai.system", .string(call.provider)), ("gen_ai.request.model", .string(call.model)),
                                           ("http.response.status_code", .int(call.status)), ("deploxa.attempt", .int(index + 1))],
                              error: call.failed))
        }
        if let audited = trace.offset(.audited).map({ trace.acceptedAt &+ $0 }) {
            let from = trace.upstreamCalls.last?.end ?? trace.offset(.admitted).map { trace.acceptedAt &+ $0 } ?? started ?? trace.acceptedAt
            spans.append(span(traceID: traceID, id: randomHex(bytes: 8), parent: rootID, name: "audit", kind: 1,
                              start: unix(min(from, audited)), end: unix(audited), attributes: [], error: false))
        }
        return spans
    }

    enum Attribute {
        case string(String)
        case int(Int)
    }

    static func span(traceID: String, id: String, parent: String?, name: String, kind: Int, start: String, end: String,
                     attributes: [(String, Attribute)], error: Bool) -> String {
        let attributeJSON = attributes.map { key, value -> String in
            switch value {
            case .string(let text): return "{\"key\":\(JSON.quoted(key)),\"value\":{\"stringValue\":\(JSON.quoted(text))}}"
            case .int(let number): return "{\"key\":\(JSON.quoted(key)),\"value\":{\"intValue\":\"\(number)\"}}"
            }
        }.joined(separator: ",")
        return "{\"traceId\":\"\(traceID)\",\"spanId\":\"\(id)\"" + (parent.map { ",\"parentSpanId\":\"\($0)\"" } ?? "")
            + ",\"name\":\(JSON.quoted(name)),\"kind\":\(kind),\"startTimeUnixNano\":\"\(start)\",\"endTimeUnixNano\":\"\(end)\""
            + ",\"attributes\":[\(attributeJSON)],\"status\":{\"code\":\(error ? 2 : 0)}}"
    }

    private func body(_ spans: [String]) -> String {
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":\(JSON.quoted(serviceName))}}]},"
            + "\"scopeSpans\":[{\"scope\":{\"name\":\"deploxa-gateway\"},\"spans\":[\(spans.joined(separator: ","))]}]}]}"
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        var hex = ""
        for _ in 0..<bytes {
            let byte = UInt8.random(in: 0...255, using: &generator)
            hex += String(byte >> 4, radix: 16) + String(byte & 0xF, radix: 16)
        }
        return hex
    }

}

/// A W3C `traceparent` header: `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
struct TraceParent: Equatable {
    var traceID: String
    var spanID: String

    init?(header: String?) {
        guard let header else { return nil }
        let parts = header.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 4, parts[0].count == 2, parts[0] != "ff", parts[1].count == 32, parts[2].count == 16, parts[3].count == 2,
              parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) }),
              parts[1] != String(repeating: "0", count: 32), parts[2] != String(repeating: "0", count: 16) else { return nil }
        traceID = parts[1].lowercased()
        spanID = parts[2].lowercased()
    }
}
