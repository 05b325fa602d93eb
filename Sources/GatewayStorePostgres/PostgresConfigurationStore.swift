import Foundation
import GatewayCore
import GatewayStore
import NIOCore
import PostgresNIO

/// The command line's view of a shared database: the same operations as the SQLite store, with
/// the same validation and the same errors, so a script that sets up one backend sets up the other.
public final class PostgresConfigurationStore: ConfigurationStore, Sendable {
    public let session: PostgresSession

    public init(session: PostgresSession) {
        self.session = session
    }

    public func migrate() throws -> [String] { try PostgresSchema.migrate(session) }

    // MARK: - Orgs and projects

    public func createOrg(name: String, limits: Limits) throws -> Org {
        try GatewayStore.validate(name, what: "org")
        try GatewayStore.validate(limits)
        let now = StoreTime.milliseconds(Date())
        do {
            let id = try session.queryCommitted("""
                INSERT INTO orgs (name, rpm, tpm, monthly_budget_usd, created_at)
                VALUES (\(name), \(Self.int(limits.requestsPerMinute)), \(Self.int(limits.tokensPerMinute)), \(limits.monthlyBudgetUSD), \(now))
                RETURNING id
                """).first?.int64(0) ?? 0
            return Org(id: id, name: name, limits: limits, createdAt: StoreTime.date(now))
        } catch let error as StoreError where error.kind == .constraint {
            throw StoreError(.constraint, "an org named '\(name)' already exists")
        }
    }

    public func org(named name: String) throws -> Org? {
        try session.query("\(unescaped: GatewayStore.orgSelect) WHERE name = \(name)").first.map(Self.org)
    }

    public func createProject(orgName: String, name: String, plan: Plan, limits: Limits) throws -> Project {
        try GatewayStore.validate(name, what: "project")
        try GatewayStore.validate(limits)
        guard let org = try org(named: orgName) else { throw StoreError(.notFound, "no org named '\(orgName)'") }
        let now = StoreTime.milliseconds(Date())
        do {
            let id = try session.queryCommitted("""
                INSERT INTO projects (org_id, name, plan, rpm, tpm, monthly_budget_usd, created_at)
                VALUES (\(org.id), \(name), \(plan.rawValue), \(Self.int(limits.requestsPerMinute)), \(Self.int(limits.tokensPerMinute)),
                        \(limits.monthlyBudgetUSD), \(now))
                RETURNING id
                """).first?.int64(0) ?? 0
            return Project(id: id, orgID: org.id, orgName: orgName, name: name, plan: plan, limits: limits, createdAt: StoreTime.date(now))
        } catch let error as StoreError where error.kind == .constraint {
            throw StoreError(.constraint, "a project named '\(orgName)/\(name)' already exists")
        }
    }

    public func project(slug: String) throws -> Project? {
        guard let slash = slug.firstIndex(of: "/") else { return nil }
        let orgName = String(slug[..<slash])
        let name = String(slug[slug.index(after: slash)...])
        return try session.query("\(unescaped: GatewayStore.projectSelect) WHERE o.name = \(orgName) AND p.name = \(name)")
            .first.map { try PostgresRequestStore.project($0, 0) }
    }

    public func projects() throws -> [Project] {
        try session.query("\(unescaped: GatewayStore.projectSelect) ORDER BY o.name, p.name").map { try PostgresRequestStore.project($0, 0) }
    }

    // MARK: - Providers

    public func setProvider(projectID: Int64, provider: Provider, apiKey: Secret, baseURL: String?) throws {
        guard !apiKey.value.isEmpty else { throw StoreError(.invalidArgument, "the \(provider.rawValue) API key is empty") }
        try requireProject(projectID)
        try session.executeCommitted("""
            INSERT INTO provider_settings (project_id, provider, api_key, base_url, updated_at)
            VALUES (\(projectID), \(provider.rawValue), \(apiKey.value), \(baseURL), \(StoreTime.milliseconds(Date())))
            ON CONFLICT (project_id, provider) DO UPDATE
            SET api_key = excluded.api_key, base_url = excluded.base_url, updated_at = excluded.updated_at
            """)
    }

    public func providers(projectID: Int64) throws -> [ProviderSettings] {
        try PostgresRequestStore.providers(session, projectID: projectID)
    }

    // MARK: - Keys

    public func createKey(projectID: Int64, name: String?, limits: Limits) throws -> (key: GatewayKey, secret: String) {
        try GatewayStore.validate(limits)
        try requireProject(projectID)
        let now = StoreTime.milliseconds(Date())
        // 48 random bits of id: a clash is unlikely, but ON CONFLICT makes it a retry, not an error.
        for _ in 0..<8 {
            let (id, secret) = KeySecret.generate()
            let inserted = try session.executeCommitted("""
                INSERT INTO gateway_keys (id, project_id, name, secret_hash, rpm, tpm, monthly_budget_usd, created_at)
                VALUES (\(id), \(projectID), \(name), \(ByteBuffer(bytes: KeySecret.hashBytes(secret))),
                        \(Self.int(limits.requestsPerMinute)), \(Self.int(limits.tokensPerMinute)), \(limits.monthlyBudgetUSD), \(now))
                ON CONFLICT (id) DO NOTHING
                """)
            if inserted > 0 {
                return (GatewayKey(id: id, projectID: projectID, name: name, limits: limits, createdAt: StoreTime.date(now), revokedAt: nil),
                        secret)
            }
        }
        throw StoreError(.other, "could not find a free key id")
    }

    public func key(id: String) throws -> GatewayKey? {
        try session.query("\(unescaped: GatewayStore.keySelect) WHERE id = \(id)").first.map { try PostgresRequestStore.key($0, 0) }
    }

    public func keys(projectID: Int64) throws -> [GatewayKey] {
        try session.query("\(unescaped: GatewayStore.keySelect) WHERE project_id = \(projectID) ORDER BY created_at, id")
            .map { try PostgresRequestStore.key($0, 0) }
    }

    public func revokeKey(id: String) throws -> Bool {
        try session.executeCommitted("""
            UPDATE gateway_keys SET revoked_at = coalesce(revoked_at, \(StoreTime.milliseconds(Date()))) WHERE id = \(id)
            """) > 0
    }

    // MARK: - Limits

    public func updateLimits(orgName: String, limits: Limits) throws {
        try updateLimits(table: "orgs", key: "name", value: orgName, limits: limits, what: "org '\(orgName)'")
    }

    public func updateLimits(projectID: Int64, limits: Limits) throws {
        try updateLimits(table: "projects", key: "id", value: projectID, limits: limits, what: "project \(projectID)")
    }

    public func updateLimits(keyID: String, limits: Limits) throws {
        try updateLimits(table: "gateway_keys", key: "id", value: keyID, limits: limits, what: "key \(keyID)")
    }

    /// `table` and `key` are constants from the three methods above, never caller input.
    private func updateLimits(table: StaticString, key: StaticString, value: some PostgresDynamicTypeEncodable, limits: Limits,
                              what: String) throws {
        try GatewayStore.validate(limits)
        var query = PostgresQuery(unsafeSQL: "UPDATE \(table) SET rpm = $1, tpm = $2, monthly_budget_usd = $3 WHERE \(key) = $4")
        query.binds.append(Self.int(limits.requestsPerMinute))
        query.binds.append(Self.int(limits.tokensPerMinute))
        query.binds.append(limits.monthlyBudgetUSD)
        query.binds.append(value)
        if try session.executeCommitted(query) == 0 { throw StoreError(.notFound, "no \(what)") }
    }

    public func updatePlan(projectID: Int64, plan: Plan) throws {
        let changed = try session.executeCommitted("UPDATE projects SET plan = \(plan.rawValue) WHERE id = \(projectID)")
        if changed == 0 { throw StoreError(.notFound, "no project with id \(projectID)") }
    }

    public func setMonthlyRequests(_ scope: LimitScope, month: String, to count: Int) throws {
        try session.executeCommitted("""
            INSERT INTO monthly_totals (scope, month, requests) VALUES (\(scope.storageKey), \(month), \(Int64(count)))
            ON CONFLICT (scope, month) DO UPDATE SET requests = excluded.requests
            """)
    }

    // MARK: - Fallback chains

    public func setFallbackChain(_ chain: FallbackChain) throws {
        guard !chain.targets.isEmpty else { throw StoreError(.invalidArgument, "a fallback chain needs at least one target") }
        guard !chain.targets.contains(chain.primary) else {
            throw StoreError(.invalidArgument, "\(chain.primary) cannot fall back to itself")
        }
        try requireProject(chain.projectID)
        let targets = JSON.array(chain.targets.map { .string($0.description) }).serializedString()
        try session.executeCommitted("""
            INSERT INTO fallback_chains (project_id, provider, model, targets, updated_at)
            VALUES (\(chain.projectID), \(chain.primary.provider.rawValue), \(chain.primary.model), \(targets), \(StoreTime.milliseconds(Date())))
            ON CONFLICT (project_id, provider, model) DO UPDATE SET targets = excluded.targets, updated_at = excluded.updated_at
            """)
    }

    public func fallbackChains(projectID: Int64) throws -> [FallbackChain] {
        try session.query("""
            SELECT provider, model, targets FROM fallback_chains WHERE project_id = \(projectID) ORDER BY provider, model
            """).compactMap { row in
            guard let provider = Provider(rawValue: try row.string(0)), let targets = FallbackChain.decodeTargets(try row.string(2)) else {
                return nil
            }
            return FallbackChain(projectID: projectID, primary: FallbackTarget(provider: provider, model: try row.string(1)), targets: targets)
        }
    }

    public func removeFallbackChain(projectID: Int64, primary: FallbackTarget) throws -> Bool {
        try session.executeCommitted("""
            DELETE FROM fallback_chains WHERE project_id = \(projectID) AND provider = \(primary.provider.rawValue) AND model = \(primary.model)
            """) > 0
    }

    // MARK: - Prices

    public func prices() throws -> [Price] {
        try session.query("""
            SELECT model, provider, input_per_million, output_per_million, cached_input_per_million,
                   cache_write_per_million, source FROM prices ORDER BY provider, model
            """).map(PostgresRequestStore.price)
    }

    public func setPrice(_ price: Price) throws {
        try GatewayStore.validate(price)
        try session.executeCommitted("""
            INSERT INTO prices (model, provider, input_per_million, output_per_million, cached_input_per_million,
                                cache_write_per_million, source, updated_at)
            VALUES (\(price.model), \(price.provider), \(price.input), \(price.output), \(price.cachedInput), \(price.cacheWrite),
                    \(price.source ?? "set by operator"), \(StoreTime.milliseconds(Date())))
            ON CONFLICT (model) DO UPDATE SET provider = COALESCE(excluded.provider, prices.provider),
                input_per_million = excluded.input_per_million, output_per_million = excluded.output_per_million,
                cached_input_per_million = excluded.cached_input_per_million,
                cache_write_per_million = COALESCE(excluded.cache_write_per_million, prices.cache_write_per_million),
                source = excluded.source, updated_at = excluded.updated_at
            """)
    }

    // MARK: - Settings

    public func setting(_ key: String) throws -> String? {
        try session.query("SELECT value FROM settings WHERE key = \(key)").first?.optionalString(0)
    }

    public func setSetting(_ key: String, to value: String?) throws {
        try session.executeCommitted("""
            INSERT INTO settings (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value
            """)
    }

    // MARK: - Audit export

    /// Rows in `seq` order, up to the horizon `deploxa_audit_horizon()` returns: every batch
    /// that drew a number at or below it has ended, and a batch still to commit numbers its rows
    /// above it, so paging by `seq` never skips a row that commits late.
    public func auditRows(_ query: AuditQuery) throws -> [AuditRow] {
        if let limit = query.limit, limit < 0 { throw StoreError(.invalidArgument, "limit must not be negative") }
        let horizon = try session.query("SELECT deploxa_audit_horizon()").first?.int64(0) ?? 0
        var sql = AuditSQL(base: Self.auditSelect + " WHERE a.seq IS NOT NULL")
        sql.and("a.seq <= ?", horizon)
        if let projectID = query.projectID { sql.and("a.project_id = ?", projectID) }
        if let keyID = query.keyID { sql.and("a.key_id = ?", keyID) }
        if let model = query.model { sql.and("(a.model_requested = ? OR a.model_served = ?)", model) }
        if let status = query.status { sql.and("a.status = ?", Int64(status)) }
        if let from = query.from { sql.and("a.time_ms >= ?", StoreTime.milliseconds(from)) }
        if let to = query.to { sql.and("a.time_ms < ?", StoreTime.milliseconds(to)) }
        if let after = query.afterSequence { sql.and("a.seq > ?", after) }
        sql.sql += " ORDER BY a.seq"
        if let limit = query.limit { sql.sql += " LIMIT \(limit)" }
        return try session.query(sql.postgresQuery).map(Self.auditRow)
    }

    static func auditRow(_ row: PostgresRandomAccessRow) throws -> AuditRow {
        let attempts = try row.optionalString(23).map(GatewayStore.decodeAttempts) ?? []
        var record = AuditRecord(
            requestID: try row.string(1), time: try row.date(2),
            method: try row.optionalString(3) ?? "", route: try row.optionalString(4) ?? "",
            orgID: try row.optionalInt64(5), projectID: try row.optionalInt64(6), keyID: try row.optionalString(7),
            user: try row.optionalString(8), provider: try row.optionalString(9),
            modelRequested: try row.optionalString(10), modelServed: try row.optionalString(11),
            status: try row.optionalInt(12) ?? 0, errorCode: try row.optionalString(13),
            promptTokens: try row.optionalInt(14), completionTokens: try row.optionalInt(15), cachedTokens: try row.optionalInt(16),
            costUSD: try row.optionalDouble(17), latencyMs: try row.optionalDouble(18) ?? 0,
            upstreamLatencyMs: try row.optionalDouble(19), timeToFirstTokenMs: try row.optionalDouble(20),
            cacheHit: try row.bool(21), stream: try row.bool(22), attempts: attempts)
        record.reasoningTokens = try row.optionalInt(25)
        record.cacheWriteTokens = try row.optionalInt(26)
        return AuditRow(sequence: try row.int64(0), record: record, projectSlug: try row.optionalString(24))
    }

    // MARK: - Usage

    public func rollupRows(_ selection: RollupSelection, _ body: (RollupRow) -> Void) throws {
        let table = selection.table == "usage_daily" ? "usage_daily" : "usage_hourly"
        var sql = AuditSQL(base: """
            SELECT bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens, cost_nanos,
                   unknown_cost, cache_hits, errors\(selection.histograms ? ", latency_hist, ttft_hist" : "")
            FROM \(table) WHERE true
            """)
        sql.and("kind = ?", selection.kind)
        if let from = selection.from { sql.and("bucket >= ?", from) }
        if let to = selection.to { sql.and("bucket < ?", to) }
        let scope = RollupRow.scopeCondition(selection.scope, column: "project_id")
        if let id = scope.projectOrOrgID { sql.and(scope.sql, id) }
        if let projectID = selection.projectID { sql.and("project_id = ?", projectID) }
        for row in try session.query(sql.postgresQuery) {
            body(RollupRow(bucket: try row.int64(0), projectID: try row.int64(1), value: try row.string(2), requests: try row.int64(3),
                           promptTokens: try row.int64(4), completionTokens: try row.int64(5), cachedTokens: try row.int64(6),
                           costNanos: try row.int64(7), unknownCost: try row.int64(8), cacheHits: try row.int64(9), errors: try row.int64(10),
                           latencyHistogram: selection.histograms ? try row.optionalBytes(11) : nil,
                           ttftHistogram: selection.histograms ? try row.optionalBytes(12) : nil))
        }
    }

    // MARK: - Helpers

    private func requireProject(_ projectID: Int64) throws {
        guard try !session.query("SELECT 1 FROM projects WHERE id = \(projectID)").isEmpty else {
            throw StoreError(.notFound, "no project with id \(projectID)")
        }
    }

    static func int(_ value: Int?) -> Int64? { value.map(Int64.init) }

    /// A row of `GatewayStore.orgSelect`.
    static func org(_ row: PostgresRandomAccessRow) throws -> Org {
        Org(id: try row.int64(0), name: try row.string(1), limits: try PostgresRequestStore.limits(row, 2), createdAt: try row.date(5))
    }
}
