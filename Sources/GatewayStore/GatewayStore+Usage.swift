import Foundation
import GatewayCore

/// How `usage` groups audit rows.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case model, project, user, key, provider, day
}

/// One group of the usage report.
public struct UsageRow: Sendable, Equatable {
    public var group: String
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int
    /// Sum over rows with a known cost.
    public var costUSD: Double
    /// Successful rows with usage but no price: their cost is unknown, not zero.
    public var unknownCostRequests: Int
    public var cacheHits: Int
    public var errors: Int
}

extension GatewayStore {
    /// Requests, tokens, cost, cache hits and errors per group over `[from, to)`, from the audit log.
    public func usage(groupBy grouping: UsageGrouping, projectID: Int64? = nil, from: Date? = nil, to: Date? = nil) throws -> [UsageRow] {
        let groupExpression: String
        switch grouping {
        case .model: groupExpression = "COALESCE(a.model_served, a.model_requested, '(none)')"
        case .project: groupExpression = "COALESCE(o.name || '/' || p.name, '(none)')"
        case .user: groupExpression = "COALESCE(a.user, '(none)')"
        case .key: groupExpression = "COALESCE(a.key_id, '(none)')"
        case .provider: groupExpression = "COALESCE(a.provider, '(none)')"
        case .day: groupExpression = "strftime('%Y-%m-%d', a.time_ms / 1000, 'unixepoch')"
        }
        var conditions: [String] = []
        var values: [SQLValue] = []
        if let projectID { conditions.append("a.project_id = ?"); values.append(.integer(projectID)) }
        if let from { conditions.append("a.time_ms >= ?"); values.append(.integer(StoreTime.milliseconds(from))) }
        if let to { conditions.append("a.time_ms < ?"); values.append(.integer(StoreTime.milliseconds(to))) }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let sql = """
            SELECT \(groupExpression) AS grp, count(*), COALESCE(SUM(a.prompt_tokens), 0), COALESCE(SUM(a.completion_tokens), 0),
                   COALESCE(SUM(a.cached_tokens), 0), COALESCE(SUM(a.cost_usd), 0),
                   SUM(CASE WHEN a.cost_usd IS NULL AND a.status < 400 AND COALESCE(a.prompt_tokens, 0) + COALESCE(a.completion_tokens, 0) > 0
                            AND a.cache_hit = 0 THEN 1 ELSE 0 END),
                   SUM(a.cache_hit), SUM(CASE WHEN a.status >= 400 THEN 1 ELSE 0 END)
            FROM audit_log a
            LEFT JOIN projects p ON p.id = a.project_id
            LEFT JOIN orgs o ON o.id = p.org_id
            \(whereClause)
            GROUP BY grp ORDER BY grp
            """
        return try connection.query(sql, values) { row in
            UsageRow(group: row.string(0), requests: row.int(1), promptTokens: row.int(2), completionTokens: row.int(3),
                     cachedTokens: row.int(4), costUSD: row.double(5), unknownCostRequests: row.int(6), cacheHits: row.int(7),
                     errors: row.int(8))
        }
    }
}
