import Foundation
import GatewayCore
import GatewayStore
import PostgresNIO

/// Commits an `AuditWriter`'s batches to the shared database: one call of
/// `deploxa_append_audit`, which inserts the rows it has not seen (keyed by request id and
/// time) and adds spend and usage rollups for those rows only. A batch sent again after a lost
/// acknowledgement, or replayed from a dead worker's journal, therefore adds nothing twice.
///
/// The batch's totals (`AuditBatchSummary`, the same sums the SQLite store writes) travel with
/// the rows: building histograms in PL/pgSQL cost ~10 ms of database CPU per batch, summing
/// them here costs microseconds. The function uses them only when every row was new, and
/// computes the totals from the inserted rows itself otherwise.
public struct PostgresAuditSink: AuditSink {
    public let session: PostgresSession

    public init(session: PostgresSession) {
        self.session = session
    }

    public func insertAudit(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        let bounded = records.map { $0.boundedForStorage() }
        let rows = JSON.array(bounded.map(Self.row)).serializedString()
        let summary = Self.summary(bounded)?.serializedString()
        try session.queryCommitted("SELECT deploxa_append_audit(\(rows)::jsonb, \(summary)::jsonb)")
    }

    /// One record as the function reads it: `audit_log`'s column names, the attempts as the
    /// JSON text stored in `attempts_json`, and whether the limiter already counted its spend.
    static func row(_ record: AuditRecord) -> JSON {
        guard case .object(let columns) = AuditRecordCoding.json(record) else { return .null }
        var entries: [(String, JSON)] = []
        for (name, value) in columns where name != "attempts" {
            entries.append((name, value))
        }
        entries.append(("attempts_json", record.attempts.isEmpty ? .null : .string(AuditRecordCoding.attemptsJSON(record.attempts).serializedString())))
        return .object(JSONObject(entries))
    }

    /// What the batch adds, as `deploxa_append_audit` reads it; nil when two records share a
    /// request id and time (the function keeps one of them, so a summary of both would be wrong).
    static func summary(_ records: [AuditRecord]) -> JSON? {
        var identities = Set<String>()
        for record in records where !identities.insert("\(record.requestID) \(StoreTime.milliseconds(record.time))").inserted {
            return nil
        }
        let summary = AuditBatchSummary(records)
        let spend = summary.spendRows.map { row -> JSON in
            ["scope": .string(row.scope), "month": .string(row.month), "nanos": .int(row.nanos)]
        }
        let rollups = summary.rollupRows.map { row -> JSON in
            [
                "width": .int(row.bucketMilliseconds), "kind": .string(row.kind),
                "bucket": .int(row.bucket), "project_id": .int(row.projectID), "value": .string(row.value),
                "requests": .int(row.requests), "prompt_tokens": .int(row.promptTokens),
                "completion_tokens": .int(row.completionTokens), "cached_tokens": .int(row.cachedTokens),
                "cost_nanos": .int(row.costNanos), "unknown_cost": .int(row.unknownCost),
                "cache_hits": .int(row.cacheHits), "errors": .int(row.errors),
                "latency_hist": hex(row.latencyHistogram), "ttft_hist": hex(row.ttftHistogram),
            ]
        }
        let dimensions = summary.dimensionRows.map { row -> JSON in
            ["project_id": .int(row.projectID), "kind": .string(row.kind), "value": .string(row.value), "last_seen": .int(row.lastSeen)]
        }
        return ["spend": .array(spend), "rollups": .array(rollups), "dimensions": .array(dimensions)]
    }

    private static func hex(_ bytes: [UInt8]?) -> JSON {
        bytes.map { .string(Hex.lowercase($0)) } ?? .null
    }
}
