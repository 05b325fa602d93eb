import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Audit log")
struct AuditTests {
    let base = Date(timeIntervalSince1970: 1_750_000_000)

    @Test func roundTripsEveryField() throws {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        let project = try store.createProject(orgName: "acme", name: "web")
        let attempts = [
            AuditAttempt(provider: "openai", model: "gpt-4o", status: 503, latencyMs: 3.5, errorCode: "upstream_error"),
            AuditAttempt(provider: "anthropic", model: "claude-sonnet-4", status: 200, latencyMs: 40.25),
        ]
        var full = AuditRecord(
            requestID: "req_full", time: StoreTime.date(1_750_000_000_123), method: "POST", route: "/v1/chat/completions",
            orgID: project.orgID, projectID: project.id, keyID: "gk_0123456789ab", user: "alice", provider: "anthropic",
            modelRequested: "gpt-4o", modelServed: "claude-sonnet-4", status: 200, errorCode: nil,
            promptTokens: 11, completionTokens: 22, cachedTokens: 3, costUSD: 0.0042, latencyMs: 45.5,
            upstreamLatencyMs: 40.25, timeToFirstTokenMs: 12.75, cacheHit: true, stream: true, attempts: attempts)
        full.reasoningTokens = 7
        full.cacheWriteTokens = 2
        let sparse = AuditRecord(requestID: "req_sparse", time: base, method: "GET", route: "/v1/models", status: 401,
                                 errorCode: "invalid_api_key", latencyMs: 0.5)
        try store.insertAudit([full, sparse])
        let rows = try store.auditRows(AuditQuery())
        #expect(rows.count == 2)
        #expect(rows[0].record == full)
        #expect(rows[0].projectSlug == "acme/web")
        #expect(rows[1].record == sparse)
        #expect(rows[1].projectSlug == nil)
        #expect(rows[0].sequence < rows[1].sequence)
        // Unknown cost stays NULL, never 0.
        #expect(try store.connection.queryFirst("SELECT cost_usd IS NULL FROM audit_log WHERE request_id = 'req_sparse'") { $0.bool(0) } == true)
        #expect(try store.connection.queryFirst("SELECT time_ms FROM audit_log WHERE request_id = 'req_full'") { $0.int64(0) }
                == 1_750_000_000_123)
    }

    @Test func retriedBatchDoesNotDuplicate() throws {
        let store = try TestDatabase().store
        let batch = (0..<10).map { makeRecord("req_\($0)") }
        try store.insertAudit(batch)
        try store.insertAudit(batch)
        try store.insertAudit(Array(batch.prefix(3)) + [makeRecord("req_new")])
        #expect(try store.auditCount() == 11)
        try store.insertAudit([])
    }

    @Test func filters() throws {
        let store = try TestDatabase().store
        var records: [AuditRecord] = []
        for index in 0..<40 {
            records.append(makeRecord(
                "req_\(index)", time: base.addingTimeInterval(Double(index)), projectID: Int64(index % 2 + 1),
                keyID: index % 4 == 0 ? "gk_aaaaaaaaaaaa" : "gk_bbbbbbbbbbbb",
                modelRequested: index % 5 == 0 ? "claude-sonnet-4" : "gpt-4o",
                modelServed: index % 10 == 0 ? "gpt-4o-mini" : (index % 5 == 0 ? "claude-sonnet-4" : "gpt-4o"),
                status: index % 3 == 0 ? 502 : 200))
        }
        try store.insertAudit(records)
        func ids(_ query: AuditQuery) throws -> [Int] {
            try store.auditRows(query).map { Int($0.record.requestID.dropFirst(4))! }
        }
        let all = Array(0..<40)
        #expect(try ids(AuditQuery()) == all)
        #expect(try ids(AuditQuery(projectID: 1)) == all.filter { $0 % 2 == 0 })
        #expect(try ids(AuditQuery(keyID: "gk_aaaaaaaaaaaa")) == all.filter { $0 % 4 == 0 })
        #expect(try ids(AuditQuery(model: "claude-sonnet-4")) == all.filter { $0 % 5 == 0 })
        #expect(try ids(AuditQuery(model: "gpt-4o-mini")) == all.filter { $0 % 10 == 0 })
        #expect(try ids(AuditQuery(model: "gpt-4o")) == all.filter { $0 % 5 != 0 })
        #expect(try ids(AuditQuery(status: 502)) == all.filter { $0 % 3 == 0 })
        #expect(try ids(AuditQuery(from: base.addingTimeInterval(10), to: base.addingTimeInterval(20))) == Array(10..<20))
        #expect(try ids(AuditQuery(from: base.addingTimeInterval(35))) == Array(35..<40))
        #expect(try ids(AuditQuery(to: base.addingTimeInterval(3))) == [0, 1, 2])
        #expect(try ids(AuditQuery(limit: 5)) == [0, 1, 2, 3, 4])
        #expect(try ids(AuditQuery(limit: 0)) == [])
        #expect(try ids(AuditQuery(projectID: 2, keyID: "gk_bbbbbbbbbbbb", status: 200,
                                   from: base.addingTimeInterval(5), to: base.addingTimeInterval(30), limit: 3))
                == all.filter { $0 % 2 == 1 && $0 % 3 != 0 && $0 >= 5 && $0 < 30 }.prefix(3).map { $0 })
        #expect(try ids(AuditQuery(projectID: 3)) == [])
        #expect(throws: StoreError.self) { try store.auditRows(AuditQuery(limit: -1)) }
    }

    @Test func cursorPaging() throws {
        let store = try TestDatabase().store
        try store.insertAudit((0..<95).map { makeRecord("req_\($0)", projectID: Int64($0 % 3)) })
        var seen: [String] = []
        var cursor: Int64? = nil
        var pages = 0
        while true {
            let page = try store.auditRows(AuditQuery(projectID: 1, limit: 10, afterSequence: cursor))
            if page.isEmpty { break }
            pages += 1
            seen += page.map(\.record.requestID)
            cursor = page.last?.sequence
        }
        let expected = (0..<95).filter { $0 % 3 == 1 }.map { "req_\($0)" }
        #expect(seen == expected)
        #expect(pages == (expected.count + 9) / 10)
        // Rows added after a page was read show up on the next page.
        let last = try #require(cursor)
        try store.insertAudit([makeRecord("req_late", projectID: 1)])
        #expect(try store.auditRows(AuditQuery(projectID: 1, afterSequence: last)).map(\.record.requestID) == ["req_late"])
    }
}
