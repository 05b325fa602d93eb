import Foundation
import GatewayCore
import Testing
@testable import GatewayStore
@testable import GatewayStorePostgres

/// The PostgreSQL sink sends each batch's totals beside its rows; they must be exactly what the
/// SQLite store writes for the same rows, so both backends report the same usage.
@Suite struct PostgresAuditSinkTests {
    /// Repeatable records over two months, several projects, keys, users, statuses and prices.
    static func records(count: Int, seed: UInt64) -> [AuditRecord] {
        var state = seed
        func next(_ bound: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(bound))
        }
        let start = Date(timeIntervalSince1970: 1_738_362_600)  // 2025-01-31T22:30:00Z
        return (0..<count).map { index in
            let project: Int64? = [1, 2, nil][next(3)]
            var record = AuditRecord(
                requestID: "req-\(index)", time: start.addingTimeInterval(Double(next(3 * 3600))),
                method: "POST", route: "/v1/chat/completions",
                orgID: project == nil ? nil : 1, projectID: project, keyID: project == nil ? nil : ["key_a", "key_b", nil][next(3)],
                user: ["alice", "bob", nil][next(3)], provider: ["openai", "anthropic", nil][next(3)],
                modelRequested: ["gpt-4o", "claude-sonnet-4", nil][next(3)], modelServed: ["gpt-4o-2024-08-06", nil][next(2)],
                status: [200, 200, 200, 429, 500][next(5)],
                promptTokens: [nil, 0, 12, 1000][next(4)], completionTokens: [nil, 0, 7, 300][next(4)], cachedTokens: [nil, 5][next(2)],
                costUSD: [nil, 0, 3.125e-7, 0.00123, 1.5e-9][next(5)], latencyMs: [0.2, 1, 16, 123.456, 2500, 1e9][next(6)],
                timeToFirstTokenMs: [nil, 0.7, 64, 300.5][next(4)], cacheHit: next(3) == 0, stream: next(2) == 0)
            record.spendSettled = next(2) == 0
            return record
        }
    }

    @Test func summaryIsWhatTheSQLiteStoreWrites() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("deploxa-pg-sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try GatewayStore(path: folder.appendingPathComponent("gateway.db").path)
        try store.migrate()
        let records = Self.records(count: 400, seed: 7)
        try store.insertAudit(records)

        let summary = try #require(PostgresAuditSink.summary(records))
        let sent = Self.rows(summary)
        let written = try store.connection.query("""
            SELECT 'usage_hourly', kind, bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens,
                   cost_nanos, unknown_cost, cache_hits, errors, lower(hex(latency_hist)), lower(hex(ttft_hist)) FROM usage_hourly
            UNION ALL
            SELECT 'usage_daily', kind, bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens,
                   cost_nanos, unknown_cost, cache_hits, errors, lower(hex(latency_hist)), lower(hex(ttft_hist)) FROM usage_daily
            """) { row in
            (Int32(0)..<15).map { row.string($0) }.joined(separator: "|")
        }
        #expect(sent.rollups.sorted() == written.sorted())
        #expect(sent.rollups.count > 100)

        let spend = try store.connection.query("SELECT scope, month, cost_nanos FROM monthly_totals WHERE cost_nanos <> 0") { row in
            "\(row.string(0))|\(row.string(1))|\(row.int64(2))"
        }
        #expect(sent.spend.sorted() == spend.sorted())
        #expect(Set(sent.spend.map { $0.split(separator: "|")[1] }) == ["2025-01", "2025-02"])

        let dimensions = try store.connection.query("SELECT project_id, kind, value, last_seen FROM audit_dimensions") { row in
            "\(row.int64(0))|\(row.string(1))|\(row.string(2))|\(row.int64(3))"
        }
        #expect(sent.dimensions.sorted() == dimensions.sorted())
    }

    @Test func noSummaryWhenTwoRecordsShareAnIdentity() {
        var records = Self.records(count: 3, seed: 1)
        records[2].requestID = records[0].requestID
        records[2].time = records[0].time
        #expect(PostgresAuditSink.summary(records) == nil)
        records[2].time = records[0].time.addingTimeInterval(1)
        #expect(PostgresAuditSink.summary(records) != nil)
    }

    /// The summary's JSON as "a|b|c" lines, in the column order of the queries above.
    static func rows(_ summary: JSON) -> (rollups: [String], spend: [String], dimensions: [String]) {
        func text(_ value: JSON?) -> String {
            switch value {
            case .string(let text): return text
            case .int(let number): return String(number)
            default: return ""
            }
        }
        func lines(_ name: String, _ fields: [String]) -> [String] {
            (summary[name]?.arrayValue ?? []).map { item in fields.map { text(item[$0]) }.joined(separator: "|") }
        }
        let rollups = lines("rollups", ["width", "kind", "bucket", "project_id", "value", "requests", "prompt_tokens",
                                        "completion_tokens", "cached_tokens", "cost_nanos", "unknown_cost", "cache_hits",
                                        "errors", "latency_hist", "ttft_hist"])
            .map { line -> String in
                let table = line.hasPrefix("3600000|") ? "usage_hourly" : "usage_daily"
                return table + line.drop { $0 != "|" }
            }
        return (rollups, lines("spend", ["scope", "month", "nanos"]), lines("dimensions", ["project_id", "kind", "value", "last_seen"]))
    }
}
