import Foundation
import GatewayCore
import GatewayStore
import NIOCore
import PostgresNIO

/// The admin API's and the dashboard's operations on a shared database: admin tokens and
/// dashboard sessions, the newest-first audit browser, dimensions and month-to-date figures.
/// Same rules and errors as the SQLite store; secrets are stored as SHA-256 only.
extension PostgresConfigurationStore: AdminStore {
    public func orgs() throws -> [Org] {
        try session.query("\(unescaped: GatewayStore.orgSelect) ORDER BY name").map(Self.org)
    }

    public func project(id: Int64) throws -> Project? {
        try session.query("\(unescaped: GatewayStore.projectSelect) WHERE p.id = \(id)").first.map { try PostgresRequestStore.project($0, 0) }
    }

    public func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try PostgresRequestStore.providerSettings(session, projectID: projectID, provider: provider)
    }

    public func removeProvider(projectID: Int64, provider: Provider) throws -> Bool {
        try session.executeCommitted("DELETE FROM provider_settings WHERE project_id = \(projectID) AND provider = \(provider.rawValue)") > 0
    }

    public func monthToDate(_ scope: LimitScope, month: String) throws -> (requests: Int, costUSD: Double) {
        guard let row = try session.query("""
            SELECT requests, cost_nanos FROM monthly_totals WHERE scope = \(scope.storageKey) AND month = \(month)
            """).first else { return (0, 0) }
        return (try row.optionalInt(0) ?? 0, SpendAmount.usd(try row.optionalInt64(1) ?? 0))
    }

    // MARK: - Audit browsing

    /// As `GatewayStore.auditPage`: newest first on (time_ms, seq), strictly below the cursor.
    public func auditPage(_ filter: AuditFilter, limit: Int, after cursor: AuditCursor?) throws -> (rows: [AuditRow], next: AuditCursor?) {
        guard (1...GatewayStore.auditMaxPageSize).contains(limit) else {
            throw StoreError(.invalidArgument, "limit must be between 1 and \(GatewayStore.auditMaxPageSize)")
        }
        if let statusClass = filter.statusClass, !(1...5).contains(statusClass) {
            throw StoreError(.invalidArgument, "status class must be 1 to 5")
        }
        var query = AuditSQL(base: Self.auditSelect + " WHERE a.seq IS NOT NULL")
        switch filter.scope {
        case .installation: break
        case .org(let id, _): query.and("a.org_id = ?", id)
        case .project(let id, _, _): query.and("a.project_id = ?", id)
        }
        if let projectID = filter.projectID { query.and("a.project_id = ?", projectID) }
        if let keyID = filter.keyID { query.and("a.key_id = ?", keyID) }
        if let model = filter.model { query.and("(a.model_requested = ? OR a.model_served = ?)", model) }
        if let provider = filter.provider { query.and("a.provider = ?", provider) }
        if let user = filter.user { query.and("a.\"user\" = ?", user) }
        if let status = filter.status { query.and("a.status = ?", Int64(status)) }
        if let statusClass = filter.statusClass {
            query.and("a.status >= ?", Int64(statusClass * 100))
            query.and("a.status < ?", Int64(statusClass * 100 + 100))
        }
        if let minimum = filter.minimumStatus { query.and("a.status >= ?", Int64(minimum)) }
        if let from = filter.from { query.and("a.time_ms >= ?", StoreTime.milliseconds(from)) }
        if let to = filter.to { query.and("a.time_ms < ?", StoreTime.milliseconds(to)) }
        if let cursor {
            query.and("a.time_ms <= ?", cursor.timeMs)
            query.and("(a.time_ms < $\(query.binds.count) OR a.seq < ?)", cursor.seq)
        }
        query.sql += " ORDER BY a.time_ms DESC, a.seq DESC LIMIT \(limit)"
        let rows = try session.query(query.postgresQuery).map(Self.auditRow)
        let next = rows.count == limit ? rows.last.map { AuditCursor(timeMs: StoreTime.milliseconds($0.record.time), seq: $0.sequence) } : nil
        return (rows, next)
    }

    public func auditRow(requestID: String, scope: AdminScope) throws -> AuditRow? {
        var query = AuditSQL(base: Self.auditSelect + " WHERE a.request_id = $1")
        query.binds.append(requestID)
        switch scope {
        case .installation: break
        case .org(let id, _): query.and("a.org_id = ?", id)
        case .project(let id, _, _): query.and("a.project_id = ?", id)
        }
        return try session.query(query.postgresQuery).first.map(Self.auditRow)
    }

    public func dimensions(scope: AdminScope) throws -> AuditDimensions {
        var query = AuditSQL(base: "SELECT DISTINCT kind, value FROM audit_dimensions WHERE true")
        let condition = RollupRow.scopeCondition(scope, column: "project_id")
        if let id = condition.projectOrOrgID { query.and(condition.sql, id) }
        return AuditDimensions(rows: try session.query(query.postgresQuery).map { (kind: try $0.string(0), value: try $0.string(1)) })
    }

    // MARK: - Admin tokens and sessions

    public func createAdminToken(name: String?, orgName: String?, projectSlug: String?, readOnly: Bool) throws
        -> (token: AdminToken, secret: String)
    {
        if orgName != nil && projectSlug != nil {
            throw StoreError(.invalidArgument, "an admin token is scoped to an org or a project, not both")
        }
        var scope = AdminScope.installation
        if let orgName {
            guard let org = try org(named: orgName) else { throw StoreError(.notFound, "no org named '\(orgName)'") }
            scope = .org(id: org.id, name: org.name)
        } else if let projectSlug {
            guard let project = try project(slug: projectSlug) else { throw StoreError(.notFound, "no project '\(projectSlug)'") }
            scope = .project(id: project.id, orgID: project.orgID, slug: project.slug)
        }
        let now = StoreTime.milliseconds(Date())
        for _ in 0..<8 {
            let (id, secret) = KeySecret.generate(idPrefix: KeySecret.adminIDPrefix, secretPrefix: KeySecret.adminSecretPrefix)
            let inserted = try session.executeCommitted("""
                INSERT INTO admin_tokens (id, name, org_id, project_id, read_only, secret_hash, created_at)
                VALUES (\(id), \(name), \(scope.orgOnlyID), \(scope.projectID), \(Int64(readOnly ? 1 : 0)),
                        \(ByteBuffer(bytes: KeySecret.hashBytes(secret))), \(now))
                ON CONFLICT (id) DO NOTHING
                """)
            if inserted > 0 {
                return (AdminToken(id: id, name: name, scope: scope, readOnly: readOnly, createdAt: StoreTime.date(now), revokedAt: nil),
                        secret)
            }
        }
        throw StoreError(.other, "could not find a free admin token id")
    }

    public func adminTokens() throws -> [AdminToken] {
        try session.query(PostgresQuery(unsafeSQL: Self.adminTokenSelect + " ORDER BY t.created_at DESC, t.id DESC"))
            .map(Self.adminToken)
    }

    /// Revokes the token and ends its sessions, in one statement.
    public func revokeAdminToken(id: String) throws -> Bool {
        try session.queryCommitted("""
            WITH revoked AS (
                UPDATE admin_tokens SET revoked_at = \(StoreTime.milliseconds(Date())) WHERE id = \(id) AND revoked_at IS NULL
                RETURNING id
            ), ended AS (
                DELETE FROM admin_sessions WHERE token_id IN (SELECT id FROM revoked)
            )
            SELECT count(*) FROM revoked
            """).first?.int64(0) ?? 0 > 0
    }

    public func authenticateAdmin(secret: String) throws -> AdminToken? {
        guard let id = KeySecret.id(fromSecret: secret, secretPrefix: KeySecret.adminSecretPrefix,
                                    idPrefix: KeySecret.adminIDPrefix) else { return nil }
        var query = PostgresQuery(unsafeSQL: Self.adminTokenSelect + " WHERE t.id = $1")
        query.binds.append(id)
        guard let row = try session.query(query).first,
              KeySecret.matches(secret, storedHash: try row.bytes(11)) else { return nil }
        let token = try Self.adminToken(row)
        return token.isRevoked ? nil : token
    }

    public func createAdminSession(tokenID: String, lifetimeSeconds: Int) throws -> (secret: String, expiresAt: Date) {
        guard lifetimeSeconds > 0 else { throw StoreError(.invalidArgument, "a session lifetime must be positive") }
        let now = StoreTime.milliseconds(Date())
        let expires = now + Int64(lifetimeSeconds) * 1000
        let secret = GatewayStore.randomSessionSecret()
        let inserted = try session.executeCommitted("""
            INSERT INTO admin_sessions (secret_hash, token_id, created_at, expires_at)
            SELECT \(ByteBuffer(bytes: KeySecret.hashBytes(secret))), id, \(now), \(expires)
            FROM admin_tokens WHERE id = \(tokenID) AND revoked_at IS NULL
            """)
        guard inserted > 0 else { throw StoreError(.notFound, "no live admin token \(tokenID)") }
        return (secret, StoreTime.date(expires))
    }

    public func adminSession(secret: String, now: Date) throws -> AdminToken? {
        var query = PostgresQuery(unsafeSQL: Self.adminTokenSelect + """
             JOIN admin_sessions s ON s.token_id = t.id
             WHERE s.secret_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL
            """)
        query.binds.append(ByteBuffer(bytes: KeySecret.hashBytes(secret)))
        query.binds.append(StoreTime.milliseconds(now))
        return try session.query(query).first.map(Self.adminToken)
    }

    public func revokeAdminSession(secret: String) throws {
        try session.executeCommitted("DELETE FROM admin_sessions WHERE secret_hash = \(ByteBuffer(bytes: KeySecret.hashBytes(secret)))")
    }

    public func pruneAdminSessions(now: Date) throws -> Int {
        try session.executeCommitted("DELETE FROM admin_sessions WHERE expires_at <= \(StoreTime.milliseconds(now))")
    }

    public func close() { session.close() }

    // MARK: - Rows

    /// The same columns as the SQLite store's (PostgreSQL reads `a.user` after a dot as a column).
    static let auditSelect = GatewayStore.auditSelect
    static let adminTokenSelect = GatewayStore.adminTokenSelect

    static func adminToken(_ row: PostgresRandomAccessRow) throws -> AdminToken {
        var scope = AdminScope.installation
        if let orgID = try row.optionalInt64(6) {
            scope = .org(id: orgID, name: try row.string(7))
        } else if let projectID = try row.optionalInt64(8) {
            scope = .project(id: projectID, orgID: try row.int64(9), slug: try row.string(10))
        }
        return AdminToken(id: try row.string(0), name: try row.optionalString(1), scope: scope, readOnly: try row.bool(2),
                          createdAt: try row.date(3), revokedAt: try row.optionalInt64(4).map(StoreTime.date))
    }
}

/// A statement whose conditions depend on which filters are set: `?` in each condition becomes
/// the next `$n` (every `?` of one condition names the same value).
struct AuditSQL {
    var sql: String
    var binds = PostgresBindings()

    init(base: String) { sql = base }

    mutating func and(_ condition: String, _ value: some PostgresDynamicTypeEncodable) {
        binds.append(value)
        sql += " AND " + condition.replacingOccurrences(of: "?", with: "$\(binds.count)")
    }

    var postgresQuery: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}
