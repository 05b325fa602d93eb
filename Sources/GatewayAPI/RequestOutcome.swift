import Dispatch
import Foundation
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import PoolScoreboard
import Synchronization

/// What happened to one /v1 request: filled in by `RequestPipeline` from what each stage
/// returns, and turned into the request's one audit row (`auditRecord`) and its pool metrics at
/// the end. Only the pipeline writes it; a stage that must add to it (the attempts, a stream's
/// first token) takes it `inout`, so its signature says so.
struct RequestOutcome: Sendable {
    let requestID: String
    let arrivedAt: Date
    let startNanos: UInt64
    let method: String
    let route: String
    /// The transport's record of stages, provider and cache result (slow log, traces, metrics).
    let trace: RequestTrace?

    var key: AuthenticatedKey?
    var modelRequested: String?
    var user: String?
    var stream = false
    /// The provider that answered, or the last one asked (the one the client named before any call).
    var provider: String?
    var modelServed: String?
    /// Every call to a provider, fallbacks and skipped targets included, in order.
    var attempts: [AuditAttempt] = []
    var upstreamLatencyMs: Double?
    var timeToFirstTokenMs: Double?
    var usage: TokenUsage?
    /// nil: unknown (no price or no usage), never silently zero.
    var costUSD: Double?
    var cacheHit = false
    /// The limiter already added this request's spend to the month's totals.
    var spendSettled = false
    /// The HTTP status the client got (499 when it left first); 0 until an answer was written.
    var status = 0
    var errorCode: String?

    /// Headroom of the limits that apply (`x-ratelimit-*` headers).
    var limitStatus: LimitStatus?
    /// `HIT` or `MISS` (`X-Cache`), when the request asked for caching.
    var cacheStatus: String?
    /// Which limit refused the request, if one did (pool metrics).
    var limitRefusal: LimitRefusalKind?

    init(_ request: HTTPRequest) {
        arrivedAt = Date()
        requestID = Self.makeRequestID(at: arrivedAt)
        startNanos = DispatchTime.now().uptimeNanoseconds
        method = request.method
        route = request.path
        trace = request.trace
    }

    var elapsedMs: Double { Double(DispatchTime.now().uptimeNanoseconds - startNanos) / 1e6 }

    /// The request's usage and what it cost, as metered from the provider's answer.
    mutating func metered(_ usage: TokenUsage?, cost: Double?, modelServed: String?) {
        self.modelServed = modelServed ?? self.modelServed
        guard let usage else { return }
        self.usage = usage
        costUSD = cost
    }

    /// The audit row, built in this one place from the outcome as it stands.
    var auditRecord: AuditRecord {
        var row = AuditRecord(requestID: requestID, time: arrivedAt, method: method, route: route, status: status, latencyMs: elapsedMs)
        row.orgID = key?.org.id
        row.projectID = key?.project.id
        row.keyID = key?.key.id
        row.user = user
        row.provider = provider
        row.modelRequested = modelRequested
        row.modelServed = modelServed
        row.errorCode = errorCode
        if cacheHit {
            row.promptTokens = 0
            row.completionTokens = 0
            row.costUSD = 0
        } else if let usage {
            row.promptTokens = usage.promptTokens
            row.completionTokens = usage.completionTokens
            row.cachedTokens = usage.cachedPromptTokens
            row.reasoningTokens = usage.reasoningTokens
            row.cacheWriteTokens = usage.cacheWriteTokens
            row.costUSD = costUSD
        }
        row.spendSettled = spendSettled
        row.upstreamLatencyMs = upstreamLatencyMs
        row.timeToFirstTokenMs = timeToFirstTokenMs
        row.cacheHit = cacheHit
        row.stream = stream
        row.attempts = attempts
        return row
    }

    /// Headers every /v1 answer carries.
    func headers(contentType: String = "application/json") -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "X-Request-Id", value: requestID)
        RateLimitHeaders.add(limitStatus, to: &headers)
        if let cacheStatus { headers.add(name: "X-Cache", value: cacheStatus) }
        return headers
    }

    /// `req_`, the arrival in milliseconds since 1970 as 12 hex digits, then 20 random hex digits
    /// (80 bits: no two requests of the same millisecond share one). Time first so that ids sort
    /// by arrival and each new audit row lands at the end of the `request_id` index instead of on
    /// a random page of it: a random id made every audit batch read and rewrite one index page per
    /// row (BENCHMARKS.md, "The request thread waits for nobody's disk").
    static func makeRequestID(at date: Date = Date()) -> String {
        var generator = RequestIDRandom()
        let milliseconds = UInt64(max(0, date.timeIntervalSince1970 * 1000))
        // Big-endian, so the hex digits read in the order the bytes sort.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16)
        withUnsafeBytes(of: milliseconds.bigEndian) { bytes.append(contentsOf: $0.dropFirst(2)) }
        withUnsafeBytes(of: (generator.next() as UInt64).bigEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: (generator.next() as UInt16).bigEndian) { bytes.append(contentsOf: $0) }
        return "req_" + Hex.lowercase(bytes)
    }
}

/// The random part of request ids. They identify, they protect nothing, so a system call per id
/// (two, for 80 bits: 5 % of the request thread's time at one connection) buys nothing: the
/// kernel seeds a SplitMix64 sequence once per process, whose outputs never repeat within it
/// (workers are spawned afresh, never forked, so no two share a sequence).
struct RequestIDRandom: RandomNumberGenerator {
    private static let state: Mutex<UInt64> = {
        var system = SystemRandomNumberGenerator()
        return Mutex(system.next())
    }()

    mutating func next() -> UInt64 {
        var z: UInt64 = Self.state.withLock { state in
            state &+= 0x9E37_79B9_7F4A_7C15
            return state
        }
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
