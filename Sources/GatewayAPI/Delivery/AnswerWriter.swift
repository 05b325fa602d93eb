import GatewayCore
import GatewayHTTP
import GatewayStore

/// Writes what the client gets: a whole answer, a stream's head, a replayed cache entry, or an
/// error. Each sets the outcome's status as it writes the head, so the audit row says what the
/// client was sent.
enum AnswerWriter {
    /// A non-streamed answer: 200 with `X-AI-Provider` and, when the price is known, `X-Gateway-Cost-USD`.
    static func answer(_ body: [UInt8], provider: String, cost: Double?, outcome: inout RequestOutcome,
                       writer: any ResponseWriter) async throws {
        var headers = outcome.headers()
        headers.add(name: "X-AI-Provider", value: provider)
        if let cost { headers.add(name: "X-Gateway-Cost-USD", value: costText(cost)) }
        outcome.status = 200
        try await writer.writeHead(status: 200, headers: headers)
        try await writer.writeBody(body, flush: false)
    }

    /// The head of a streamed answer: SSE, never buffered by nginx. `cost` only when known up
    /// front (a replayed stream); a live stream's cost is in its audit row. The head leaves with
    /// the first flushed bytes, before the request ends, so the row is journaled as it stands:
    /// should the worker die mid-stream, the row still says what the client got.
    static func streamHead(provider: String, cost: Double? = nil, outcome: inout RequestOutcome, ticket: inout AuditTicket,
                           store: any RequestStore, writer: any ResponseWriter) async throws {
        var headers = outcome.headers(contentType: "text/event-stream")
        headers.add(name: "Cache-Control", value: "no-cache")
        headers.add(name: "X-Accel-Buffering", value: "no")
        headers.add(name: "X-AI-Provider", value: provider)
        if let cost { headers.add(name: "X-Gateway-Cost-USD", value: costText(cost)) }
        outcome.status = 200
        store.auditProgress(outcome.auditRecord, ticket: &ticket)
        try await writer.writeHead(status: 200, headers: headers)
    }

    /// A stored answer, as it was first given (a stream is replayed as one flush).
    static func replay(_ answer: CachedAnswer, outcome: inout RequestOutcome, ticket: inout AuditTicket, store: any RequestStore,
                       writer: any ResponseWriter) async throws {
        guard answer.stream else {
            try await Self.answer(answer.body, provider: answer.provider, cost: 0, outcome: &outcome, writer: writer)
            return
        }
        try await streamHead(provider: answer.provider, cost: 0, outcome: &outcome, ticket: &ticket, store: store, writer: writer)
        outcome.timeToFirstTokenMs = outcome.elapsedMs
        try await writer.writeBody(answer.body, flush: true)
    }

    /// An error in OpenAI's shape, with `Retry-After` when the client should retry later.
    static func writeError(_ error: GatewayError, outcome: inout RequestOutcome, writer: any ResponseWriter) async {
        var headers = outcome.headers()
        if let retryAfter = error.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        if error.status == 401 { headers.add(name: "WWW-Authenticate", value: "Bearer") }
        do {
            try await writer.writeHead(status: error.status, headers: headers)
            try await writer.writeBody(error.body.serialized(), flush: false)
        } catch {
            // The client left; nothing more to do.
        }
        outcome.status = error.status
        outcome.errorCode = error.auditCode
    }

    private static func costText(_ cost: Double) -> String { SpendAmount.text(cost, fractionDigits: 10, keepPoint: true) }
}
