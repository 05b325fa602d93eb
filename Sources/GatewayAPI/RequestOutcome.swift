import Dispatch
import Foundation
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import PoolScoreboard

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
        requestID = Self.makeRequestID()
        arrivedAt = Date()
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

    /// `req_` and 24 random hex digits: unique enough to be the audit row's key.
    static func makeRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt32
        return "req_" + hex(high, digits: 16) + hex(UInt64(low), digits: 8)
    }

    private static func hex(_ value: UInt64, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}
