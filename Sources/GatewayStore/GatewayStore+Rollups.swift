import Foundation
import GatewayCore

/// What a scope's requests have named, for the dashboard's filters.
public struct AuditDimensions: Sendable, Equatable {
    public var models: [String]
    public var users: [String]
    public var keyIDs: [String]
    public var providers: [String]

    public init(models: [String] = [], users: [String] = [], keyIDs: [String] = [], providers: [String] = []) {
        self.models = models
        self.users = users
        self.keyIDs = keyIDs
        self.providers = providers
    }

    /// From `audit_dimensions` rows (kind, value), any order; each list sorted.
    public init(rows: [(kind: String, value: String)]) {
        self.init()
        for row in rows {
            switch row.kind {
            case "model": models.append(row.value)
            case "user": users.append(row.value)
            case "key": keyIDs.append(row.value)
            case "provider": providers.append(row.value)
            default: break
            }
        }
        models.sort()
        users.sort()
        keyIDs.sort()
        providers.sort()
    }
}

/// Usage rollups (hourly and daily, see migration 5) and the audit dimensions: maintained in the
/// audit batch's own transaction from the rows it really inserted, so reports never scan
/// `audit_log` and a replayed batch adds nothing.
extension GatewayStore {
    /// Adds a batch's figures: one upsert per rollup row and per dimension it touches. Call
    /// inside the write transaction that inserted the rows.
    func applyRollups(_ batch: RollupBatch) throws {
        for (key, totals) in batch.totals {
            let values: [SQLValue] = [
                .text(key.kind.rawValue), .integer(key.bucket), .integer(key.projectID), .text(key.value),
                .integer(totals.requests), .integer(totals.promptTokens), .integer(totals.completionTokens),
                .integer(totals.cachedTokens), .integer(totals.costNanos), .integer(totals.unknownCost),
                .integer(totals.cacheHits), .integer(totals.errors),
                totals.latency.encoded().map(SQLValue.blob) ?? .null, totals.ttft.encoded().map(SQLValue.blob) ?? .null,
            ]
            try connection.execute(key.table == .hourly ? Self.hourlyUpsert : Self.dailyUpsert, values)
        }
        for (key, time) in batch.dimensions {
            try connection.execute(Self.dimensionUpsert, [.integer(key.projectID), .text(key.kind), .text(key.value), .integer(time)])
        }
    }

    /// Recomputes the rollups from `audit_log`, in one transaction (reports never see a half
    /// rebuild; writers wait meanwhile, so run it off-peak), reading 10,000 rows at a time.
    /// Buckets that started before the newest retention cutoff are kept as they are (their rows
    /// are partly gone); everything from there on is recomputed. Returns the audit rows folded.
    @discardableResult
    public func rebuildRollups() throws -> Int {
        try connection.writeTransaction {
            let deletedBefore = try connection.queryFirst("SELECT audit_deleted_before FROM rollup_state WHERE id = 1") {
                $0.int64(0)
            } ?? 0
            var keepBefore: [RollupTable: Int64] = [:]
            for table in RollupTable.allCases {
                let cut = deletedBefore > 0 ? RollupTime.ceil(deletedBefore, table.bucketMilliseconds) : Int64.min
                keepBefore[table] = cut
                try connection.execute("DELETE FROM \(table.name) WHERE bucket >= ?", [.integer(cut)])
            }
            var folded = 0
            var after: Int64 = 0
            while true {
                var batch = RollupBatch()
                var count = 0
                try connection.withStatement(Self.rebuildSelect) { statement in
                    try statement.bind([.integer(after), .integer(10_000)])
                    while try statement.step() {
                        let row = statement.row
                        after = row.int64(0)
                        count += 1
                        let record = Self.rollupRecord(row)
                        let time = StoreTime.milliseconds(record.time)
                        batch.add(record, tables: RollupTable.allCases.filter { time >= keepBefore[$0]! })
                    }
                }
                if count == 0 { break }
                try applyRollups(batch)
                folded += count
            }
            try connection.execute("UPDATE rollup_state SET complete = 1 WHERE id = 1")
            return folded
        }
    }

    /// Whether the rollups cover the audit log: false on a database upgraded with audit rows
    /// until `rebuildRollups()` ran (`migrate()` runs it when it applies migration 5).
    public func rollupsAreComplete() throws -> Bool {
        try connection.queryFirst("SELECT complete FROM rollup_state WHERE id = 1") { $0.bool(0) } ?? false
    }

    /// The models (requested or served), users, key ids and providers the scope's requests
    /// named, each sorted. Requests without a project count for the installation scope only.
    public func dimensions(scope: AdminScope) throws -> AuditDimensions {
        let (condition, values) = Self.rollupScopeCondition(scope, column: "project_id")
        let rows = try connection.query(
            "SELECT DISTINCT kind, value FROM audit_dimensions" + (condition.isEmpty ? "" : " WHERE " + condition), values
        ) { (kind: $0.string(0), value: $0.string(1)) }
        return AuditDimensions(rows: rows)
    }

    // MARK: - SQL

    /// The SQL condition (and its values) limiting a project-id column to a scope; "" for all.
    static func rollupScopeCondition(_ scope: AdminScope, column: String) -> (String, [SQLValue]) {
        let condition = RollupRow.scopeCondition(scope, column: column)
        return (condition.sql, condition.projectOrOrgID.map { [.integer($0)] } ?? [])
    }

    static func upsert(_ table: RollupTable) -> String {
        """
        INSERT INTO \(table.name) (kind, bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens,
                                   cost_nanos, unknown_cost, cache_hits, errors, latency_hist, ttft_hist)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (kind, bucket, project_id, value) DO UPDATE SET
            requests = requests + excluded.requests,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens,
            cost_nanos = cost_nanos + excluded.cost_nanos,
            unknown_cost = unknown_cost + excluded.unknown_cost,
            cache_hits = cache_hits + excluded.cache_hits,
            errors = errors + excluded.errors,
            latency_hist = \(LatencyHistogram.mergeFunctionName)(latency_hist, excluded.latency_hist),
            ttft_hist = \(LatencyHistogram.mergeFunctionName)(ttft_hist, excluded.ttft_hist)
        """
    }

    static let hourlyUpsert = upsert(.hourly)
    static let dailyUpsert = upsert(.daily)

    static let dimensionUpsert = """
        INSERT INTO audit_dimensions (project_id, kind, value, last_seen) VALUES (?, ?, ?, ?)
        ON CONFLICT (project_id, kind, value) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)
        """

    static let rebuildSelect = """
        SELECT seq, time_ms, project_id, key_id, user, provider, model_requested, model_served, status,
               prompt_tokens, completion_tokens, cached_tokens, cost_usd, latency_ms, ttft_ms, cache_hit
        FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?
        """

    /// The fields of `rebuildSelect`'s row that rollups read.
    static func rollupRecord(_ row: SQLiteRow) -> AuditRecord {
        AuditRecord(requestID: "", time: StoreTime.date(row.int64(1)), method: "", route: "",
                    projectID: row.optionalInt64(2), keyID: row.optionalString(3), user: row.optionalString(4),
                    provider: row.optionalString(5), modelRequested: row.optionalString(6), modelServed: row.optionalString(7),
                    status: row.int(8), promptTokens: row.optionalInt(9), completionTokens: row.optionalInt(10),
                    cachedTokens: row.optionalInt(11), costUSD: row.optionalDouble(12), latencyMs: row.optionalDouble(13) ?? 0,
                    timeToFirstTokenMs: row.optionalDouble(14), cacheHit: row.bool(15))
    }
}
