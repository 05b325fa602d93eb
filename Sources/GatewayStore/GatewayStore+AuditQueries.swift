import Foundation
import GatewayCore

/// A position in a newest-first walk of the audit log: the (time, seq) of the last row examined.
public struct AuditCursor: Sendable, Equatable {
    public var timeMs: Int64
    public var seq: Int64

    public init(timeMs: Int64, seq: Int64) {
        self.timeMs = timeMs
        self.seq = seq
    }

    /// Opaque to clients and URL-safe: "<time ms>_<seq>" in decimal.
    public var token: String { "\(timeMs)_\(seq)" }

    /// Parses `token` back; nil for anything else (no sign, spaces or extra parts).
    public init?(token: String) {
        let parts = token.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 2, parts.allSatisfy({ (1...19).contains($0.count) && $0.allSatisfy(\.isASCIIDigit) }),
              let time = Int64(parts[0]), let seq = Int64(parts[1]) else { return nil }
        self.init(timeMs: time, seq: seq)
    }
}

/// Which audit rows a page walks. `scope` is the admin token's; the rest narrow it.
public struct AuditFilter: Sendable, Equatable {
    public var scope: AdminScope
    public var projectID: Int64?
    public var keyID: String?
    /// Matches the model requested or the model served.
    public var model: String?
    public var provider: String?
    public var user: String?
    /// An exact status (429).
    public var status: Int?
    /// A status class: 2 for 2xx, 4 for 4xx, 5 for 5xx (any of 1–5).
    public var statusClass: Int?
    /// Every status at or above this (400: all errors).
    public var minimumStatus: Int?
    /// Inclusive.
    public var from: Date?
    /// Exclusive.
    public var to: Date?

    public init(scope: AdminScope = .installation, projectID: Int64? = nil, keyID: String? = nil, model: String? = nil,
                provider: String? = nil, user: String? = nil, status: Int? = nil, statusClass: Int? = nil,
                from: Date? = nil, to: Date? = nil) {
        self.scope = scope
        self.projectID = projectID
        self.keyID = keyID
        self.model = model
        self.provider = provider
        self.user = user
        self.status = status
        self.statusClass = statusClass
        self.from = from
        self.to = to
    }
}

/// The admin API's audit browsing: newest first, keyset-paged on (time_ms, seq).
///
/// Each page walks one index newest first (`audit_log_time`, or `audit_log_project_time`,
/// `audit_log_key_time`, `audit_log_org_time` when the scope or filter names one), strictly below
/// the cursor, so every row that existed when a walk began is returned exactly once however many
/// rows (of any time) arrive meanwhile. Filters no index serves (model, provider, user, status)
/// are checked on at most `auditCandidateLimit` rows per call: a page may come back short, even
/// empty, with a `next` to go on from; `next` is nil only when nothing is left to examine.
extension GatewayStore {
    /// Rows examined per call for filters without an index (bounds one page's work).
    public static let auditCandidateLimit = 20_000
    public static let auditMaxPageSize = 1000

    public func auditPage(_ filter: AuditFilter, limit: Int, after cursor: AuditCursor?) throws
        -> (rows: [AuditRow], next: AuditCursor?)
    {
        try auditPage(filter, limit: limit, after: cursor, candidateLimit: Self.auditCandidateLimit)
    }

    /// `candidateLimit`: rows examined at most when a filter has no index (tests make it small).
    func auditPage(_ filter: AuditFilter, limit: Int, after cursor: AuditCursor?, candidateLimit: Int) throws
        -> (rows: [AuditRow], next: AuditCursor?)
    {
        guard (1...Self.auditMaxPageSize).contains(limit) else {
            throw StoreError(.invalidArgument, "limit must be between 1 and \(Self.auditMaxPageSize)")
        }
        if let statusClass = filter.statusClass, !(1...5).contains(statusClass) {
            throw StoreError(.invalidArgument, "status class must be 1 to 5")
        }
        // Conditions an index serves (the walk) and the ones checked row by row (the match).
        var walk: [String] = []
        var walkValues: [SQLValue] = []
        switch filter.scope {
        case .installation: break
        case .org(let id, _): walk.append("a.org_id = ?"); walkValues.append(.integer(id))
        case .project(let id, _, _): walk.append("a.project_id = ?"); walkValues.append(.integer(id))
        }
        if let projectID = filter.projectID { walk.append("a.project_id = ?"); walkValues.append(.integer(projectID)) }
        if let keyID = filter.keyID { walk.append("a.key_id = ?"); walkValues.append(.text(keyID)) }
        if let from = filter.from { walk.append("a.time_ms >= ?"); walkValues.append(.integer(StoreTime.milliseconds(from))) }
        // One upper bound on time (the end of the range or the cursor, whichever is lower): with
        // two, SQLite may range the index on the looser one and filter millions of rows by the other.
        let upperBounds = [filter.to.map { StoreTime.milliseconds($0) - 1 }, cursor?.timeMs].compactMap { $0 }
        if let upper = upperBounds.min() { walk.append("a.time_ms <= ?"); walkValues.append(.integer(upper)) }
        if let cursor {
            // Only sorts out the rows of the cursor's own time.
            walk.append("(a.time_ms < ? OR a.seq < ?)")
            walkValues += [.integer(cursor.timeMs), .integer(cursor.seq)]
        }

        var match: [String] = []
        var matchValues: [SQLValue] = []
        if let model = filter.model {
            match.append("(a.model_requested = ? OR a.model_served = ?)")
            matchValues += [.text(model), .text(model)]
        }
        if let provider = filter.provider { match.append("a.provider = ?"); matchValues.append(.text(provider)) }
        if let user = filter.user { match.append("a.user = ?"); matchValues.append(.text(user)) }
        if let status = filter.status { match.append("a.status = ?"); matchValues.append(.integer(Int64(status))) }
        if let statusClass = filter.statusClass {
            match.append("a.status >= ? AND a.status < ?")
            matchValues += [.integer(Int64(statusClass * 100)), .integer(Int64(statusClass * 100 + 100))]
        }
        if let minimumStatus = filter.minimumStatus { match.append("a.status >= ?"); matchValues.append(.integer(Int64(minimumStatus))) }

        // The SQL text depends only on which filters are set, so the statement cache stays small.
        let matchExpression = match.isEmpty ? "1" : "(" + match.joined(separator: " AND ") + ")"
        let examineLimit = match.isEmpty ? limit : max(limit, candidateLimit)
        // The whole row comes with the walk (one statement, no lookup per row); only matching rows
        // are decoded. Project names come from a small map instead of a join per row.
        let sql = Self.auditWalkSelect + ", \(matchExpression) FROM audit_log a\n"
            + (walk.isEmpty ? "" : "WHERE " + walk.joined(separator: " AND ") + "\n")
            + "ORDER BY a.time_ms DESC, a.seq DESC LIMIT ?"
        var rows: [AuditRow] = []
        var last: AuditCursor?
        var examined = 0
        try connection.withStatement(sql) { statement in
            try statement.bind(matchValues + walkValues + [.integer(Int64(examineLimit))])
            while rows.count < limit, try statement.step() {
                let row = statement.row
                examined += 1
                last = AuditCursor(timeMs: row.int64(2), seq: row.int64(0))
                if row.bool(27) { rows.append(Self.auditRow(row)) }
            }
        }
        // Full page, or the examination budget spent: there may be more. Otherwise the walk ended.
        let next = rows.count == limit || examined == examineLimit ? last : nil
        if !rows.isEmpty {
            let slugs = try projectSlugMap()
            for index in rows.indices { rows[index].projectSlug = rows[index].record.projectID.flatMap { slugs[$0] } }
        }
        return (rows, next)
    }

    /// `auditSelect`'s columns in the same positions, without the joins (column 24, the project's
    /// name, is filled from `projectSlugMap`).
    static let auditWalkSelect = """
        SELECT a.seq, a.request_id, a.time_ms, a.method, a.route, a.org_id, a.project_id, a.key_id, a.user,
               a.provider, a.model_requested, a.model_served, a.status, a.error_code,
               a.prompt_tokens, a.completion_tokens, a.cached_tokens, a.cost_usd, a.latency_ms,
               a.upstream_latency_ms, a.ttft_ms, a.cache_hit, a.stream, a.attempts_json,
               NULL, a.reasoning_tokens, a.cache_write_tokens
        """

    /// Project id → "org/project", for a page of rows (the projects table is small).
    func projectSlugMap() throws -> [Int64: String] {
        Dictionary(try connection.query("SELECT p.id, o.name || '/' || p.name FROM projects p JOIN orgs o ON o.id = p.org_id") {
            ($0.int64(0), $0.string(1))
        }, uniquingKeysWith: { first, _ in first })
    }

    /// One request's row, if it exists and lies within the scope.
    public func auditRow(requestID: String, scope: AdminScope) throws -> AuditRow? {
        var sql = Self.auditSelect + " WHERE a.request_id = ?"
        var values: [SQLValue] = [.text(requestID)]
        switch scope {
        case .installation: break
        case .org(let id, _): sql += " AND a.org_id = ?"; values.append(.integer(id))
        case .project(let id, _, _): sql += " AND a.project_id = ?"; values.append(.integer(id))
        }
        return try connection.queryFirst(sql, values) { Self.auditRow($0) }
    }
}

private extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}
