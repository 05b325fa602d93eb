import Foundation
import GatewayCore

/// The audit log: one row per request to /v1/*, appended in batches by `AuditWriter` and read
/// back in `seq` order (the export cursor).
extension GatewayStore {
    /// Inserts every record in one immediate transaction, with the usage rollups they add to.
    /// `INSERT OR IGNORE` on `request_id` makes a retried batch harmless: a row already committed
    /// is not duplicated, nor counted again.
    public func insertAudit(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        try connection.writeTransaction {
            // Rows already in the table (a journal replayed after its batch had committed) are
            // ignored, and their spend is not added twice.
            var inserted: [Bool] = []
            inserted.reserveCapacity(records.count)
            try connection.withStatement(Self.auditInsert) { statement in
                for record in records {
                    let attempts = record.attempts.isEmpty
                        ? nil : String(decoding: AuditRecordCoding.attemptsJSON(record.attempts).serialized(), as: UTF8.self)
                    let values: [SQLValue] = [
                        .text(record.requestID), .integer(StoreTime.milliseconds(record.time)),
                        .text(record.method), .text(record.route),
                        .int64(record.orgID), .int64(record.projectID), .string(record.keyID), .string(record.user),
                        .string(record.provider), .string(record.modelRequested), .string(record.modelServed),
                        .integer(Int64(record.status)), .string(record.errorCode),
                        .int(record.promptTokens), .int(record.completionTokens), .int(record.cachedTokens),
                        .real(record.costUSD), .double(record.latencyMs), .real(record.upstreamLatencyMs),
                        .real(record.timeToFirstTokenMs), .bool(record.cacheHit), .bool(record.stream), .string(attempts),
                        .int(record.reasoningTokens), .int(record.cacheWriteTokens),
                    ]
                    try statement.bind(values)
                    while try statement.step() {}
                    statement.reset()
                    inserted.append(connection.changes > 0)
                }
            }
            // Month-to-date spend for requests the limiter did not settle itself (no budget or
            // token limit applied), so a cap set mid-month starts from the true spend; usage
            // rollups and dimensions. From the new rows only, one upsert per row touched.
            let summary = AuditBatchSummary(zip(records, inserted).lazy.filter { $0.1 }.map { $0.0 })
            for (key, nanos) in summary.spend { try addSpend(nanos: nanos, scopes: [key.scope], month: key.month) }
            try applyRollups(summary.rollups)
        }
    }

    /// Rows matching every filter set in `query`, by `seq` ascending. `model` matches either the
    /// model requested or the model served; `from` is inclusive, `to` exclusive.
    public func auditRows(_ query: AuditQuery) throws -> [AuditRow] {
        if let limit = query.limit, limit < 0 { throw StoreError(.invalidArgument, "limit must not be negative") }
        var conditions: [String] = []
        var values: [SQLValue] = []
        if let projectID = query.projectID { conditions.append("a.project_id = ?"); values.append(.integer(projectID)) }
        if let keyID = query.keyID { conditions.append("a.key_id = ?"); values.append(.text(keyID)) }
        if let model = query.model {
            conditions.append("(a.model_requested = ? OR a.model_served = ?)")
            values += [.text(model), .text(model)]
        }
        if let status = query.status { conditions.append("a.status = ?"); values.append(.integer(Int64(status))) }
        if let from = query.from { conditions.append("a.time_ms >= ?"); values.append(.integer(StoreTime.milliseconds(from))) }
        if let to = query.to { conditions.append("a.time_ms < ?"); values.append(.integer(StoreTime.milliseconds(to))) }
        if let after = query.afterSequence { conditions.append("a.seq > ?"); values.append(.integer(after)) }
        values.append(.integer(query.limit.map(Int64.init) ?? -1))  // -1: no limit

        // The SQL text depends only on which filters are set, so the statement cache stays small.
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let sql = Self.auditSelect + whereClause + " ORDER BY a.seq LIMIT ?"
        return try connection.query(sql, values) { Self.auditRow($0) }
    }

    public func auditCount() throws -> Int {
        try connection.queryFirst("SELECT count(*) FROM audit_log") { $0.int(0) } ?? 0
    }

    // MARK: - SQL and row mapping

    static let auditInsert = """
        INSERT OR IGNORE INTO audit_log (
            request_id, time_ms, method, route, org_id, project_id, key_id, user, provider,
            model_requested, model_served, status, error_code, prompt_tokens, completion_tokens, cached_tokens,
            cost_usd, latency_ms, upstream_latency_ms, ttft_ms, cache_hit, stream, attempts_json,
            reasoning_tokens, cache_write_tokens
        ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """

    /// Shared with the PostgreSQL backend: plain SQL both read alike.
    public static let auditSelect = """
        SELECT a.seq, a.request_id, a.time_ms, a.method, a.route, a.org_id, a.project_id, a.key_id, a.user,
               a.provider, a.model_requested, a.model_served, a.status, a.error_code,
               a.prompt_tokens, a.completion_tokens, a.cached_tokens, a.cost_usd, a.latency_ms,
               a.upstream_latency_ms, a.ttft_ms, a.cache_hit, a.stream, a.attempts_json,
               o.name || '/' || p.name, a.reasoning_tokens, a.cache_write_tokens
        FROM audit_log a
        LEFT JOIN projects p ON p.id = a.project_id
        LEFT JOIN orgs o ON o.id = p.org_id
        """

    /// `attempts_json` as written by `insertAudit` (JSONEncoder's field names), read with the
    /// gateway's own parser: an export reads a million of these, and Foundation's decoder cost
    /// more than the rest of the row. Entries that do not parse are skipped.
    public static func decodeAttempts(_ json: String) -> [AuditAttempt] {
        guard let parsed = try? JSON.parse(json), let items = parsed.arrayValue else { return [] }
        return items.compactMap { item in
            guard let object = item.objectValue, let provider = object["provider"]?.stringValue,
                  let model = object["model"]?.stringValue, let status = object["status"]?.intValue else { return nil }
            return AuditAttempt(provider: provider, model: model, status: Int(status), latencyMs: object["latencyMs"]?.doubleValue ?? 0,
                                errorCode: object["errorCode"]?.stringValue)
        }
    }

    static func auditRow(_ row: SQLiteRow) -> AuditRow {
        var attempts: [AuditAttempt] = []
        if let json = row.optionalString(23) {
            // A row is still worth reading if its attempts column cannot be.
            attempts = Self.decodeAttempts(json)
        }
        var record = AuditRecord(
            requestID: row.string(1), time: StoreTime.date(row.int64(2)),
            method: row.optionalString(3) ?? "", route: row.optionalString(4) ?? "",
            orgID: row.optionalInt64(5), projectID: row.optionalInt64(6), keyID: row.optionalString(7),
            user: row.optionalString(8), provider: row.optionalString(9),
            modelRequested: row.optionalString(10), modelServed: row.optionalString(11),
            status: row.int(12), errorCode: row.optionalString(13),
            promptTokens: row.optionalInt(14), completionTokens: row.optionalInt(15), cachedTokens: row.optionalInt(16),
            costUSD: row.optionalDouble(17), latencyMs: row.optionalDouble(18) ?? 0,
            upstreamLatencyMs: row.optionalDouble(19), timeToFirstTokenMs: row.optionalDouble(20),
            cacheHit: row.bool(21), stream: row.bool(22), attempts: attempts)
        record.reasoningTokens = row.optionalInt(25)
        record.cacheWriteTokens = row.optionalInt(26)
        return AuditRow(sequence: row.int64(0), record: record, projectSlug: row.optionalString(24))
    }
}
