import Dispatch
import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore
import PoolScoreboard

/// Per-request state the pipeline fills in as it goes, and finally turns into the audit row.
final class RequestContext: @unchecked Sendable {
    let requestID: String
    let arrivedAt: Date
    let startNanos: UInt64
    var audit: AuditRecord
    /// Headroom of the limits that apply, for the `x-ratelimit-*` headers of the answer.
    var limitStatus: LimitStatus?
    /// `HIT` or `MISS` for the `X-Cache` header, when the request asked for caching.
    var cacheStatus: String?
    /// The request's lines in the audit journal (see `AuditWriter.begin`).
    var auditTicket = AuditTicket()
    /// Set by the application for /v1 requests (the audited ones).
    var auditWriter: AuditWriter?
    /// The transport's record of stages, provider and cache result (slow log, pool metrics).
    let trace: RequestTrace?
    /// Which limit refused the request, if one did (for the pool's metrics).
    var limitRefusal: LimitRefusalKind?

    init(request: HTTPRequest) {
        requestID = RequestContext.makeRequestID()
        arrivedAt = Date()
        startNanos = DispatchTime.now().uptimeNanoseconds
        audit = AuditRecord(requestID: requestID, time: arrivedAt, method: request.method, route: request.path, status: 0, latencyMs: 0)
        trace = request.trace
        trace?.requestID = requestID
    }

    /// Journals the row as it stands when the answer starts going out before the request ends (a
    /// stream's head): should the worker die mid-stream, the row still says what the client got.
    func journalAnswerStarted() {
        guard let auditWriter else { return }
        audit.latencyMs = elapsedMs
        auditWriter.progress(audit, ticket: &auditTicket)
    }

    var elapsedMs: Double { Double(DispatchTime.now().uptimeNanoseconds - startNanos) / 1e6 }

    func authenticated(_ key: AuthenticatedKey) {
        audit.orgID = key.org.id
        audit.projectID = key.project.id
        audit.keyID = key.key.id
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

/// Headers every /v1 answer carries.
func baseHeaders(_ context: RequestContext, contentType: String = "application/json") -> HTTPHeaders {
    var headers = HTTPHeaders()
    headers.add(name: "Content-Type", value: contentType)
    headers.add(name: "X-Request-Id", value: context.requestID)
    RateLimitHeaders.add(context.limitStatus, to: &headers)
    if let cacheStatus = context.cacheStatus { headers.add(name: "X-Cache", value: cacheStatus) }
    return headers
}
