import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// The journal writes its lines without building a JSON tree; replay reads them back through
/// `json(_:)`'s shape, so the two must say the same thing for every field.
@Suite("AuditRecordCoding")
struct AuditRecordCodingTests {
    static let full: AuditRecord = {
        var record = AuditRecord(requestID: "req_0123456789abcdef01234567", time: Date(timeIntervalSince1970: 1_764_800_000.123),
                                 method: "POST", route: "/v1/chat/completions", orgID: 3, projectID: 7, keyID: "gk_abc",
                                 user: "quote \" backslash \\ newline \n tab \t bell \u{07} é 日本", provider: "anthropic",
                                 modelRequested: "claude-sonnet-4", modelServed: "claude-sonnet-4-20250514", status: 200,
                                 errorCode: nil, promptTokens: 12, completionTokens: 34, cachedTokens: 5, costUSD: 0.000123456789,
                                 latencyMs: 12.5, upstreamLatencyMs: 9.25, timeToFirstTokenMs: 3.0, cacheHit: false, stream: true,
                                 attempts: [AuditAttempt(provider: "openai", model: "gpt-4o", status: 503, latencyMs: 1.5, errorCode: "upstream_error"),
                                            AuditAttempt(provider: "anthropic", model: "claude-sonnet-4", status: 200, latencyMs: 9.25)])
        record.reasoningTokens = 2
        record.cacheWriteTokens = 1
        record.spendSettled = true
        return record
    }()

    static let sparse = AuditRecord(requestID: "req_1", time: Date(timeIntervalSince1970: 0), method: "GET", route: "/v1/models",
                                    status: 0, latencyMs: 0)

    /// Integers are written digit by digit: signs and the extremes must survive.
    static let extremes: AuditRecord = {
        var record = AuditRecord(requestID: "req_x", time: Date(timeIntervalSince1970: 1), method: "POST", route: "/v1/embeddings",
                                 orgID: Int64.min, projectID: Int64.max, status: 599, promptTokens: -1, completionTokens: 0,
                                 cachedTokens: 1_000_000_007, latencyMs: 0.5)
        record.reasoningTokens = Int.min + 1
        return record
    }()

    @Test(arguments: [full, sparse, extremes])
    func theJournalLineSaysWhatTheTreeSays(record: AuditRecord) throws {
        var line: [UInt8] = []
        AuditRecordCoding.writeJournalLine(phase: "final", record, into: &line)
        let parsed = try JSON.parse(line)
        #expect(parsed.objectValue?["phase"]?.stringValue == "final")
        let row = try #require(parsed.objectValue?["row"])
        #expect(row == AuditRecordCoding.json(record))
        #expect(AuditRecordCoding.record(row) == record)
    }
}
