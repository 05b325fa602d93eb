import Foundation
import GatewayCore
import GatewayStore
import NIOCore
import PostgresNIO
import Synchronization

/// The request path's store over a PostgreSQL database shared by several gateway nodes
/// (docs/postgres.md). Every operation is one statement: limits, cache leases and breaker
/// probes are decided by functions inside the database (migration "initial"), which lock what
/// they decide on, so a promise that holds across one machine's workers holds across all nodes.
/// Windows and months are read from the database's clock, not each node's.
///
/// A key read once is remembered: later requests with it skip the key's round trip, and their
/// admission (one statement anyway) first checks that the key's row is still the one remembered
/// (`deploxa_admit_checked`, migration step 4), so a revoked or changed key is seen exactly as
/// soon as before and nothing is counted for a stale one.
///
/// When the database cannot be reached, keys confirmed in the last `authenticationGraceSeconds`
/// keep working from memory: an unlimited request is still answered (its audit row waits in the
/// writer's queue and journal), while a limited one fails closed with 503 at admission.
public final class PostgresRequestStore: RequestStore, Sendable {
    public let session: PostgresSession
    public let auditWriter: AuditWriter
    public let authenticationGraceSeconds: Double

    private struct RememberedKey: Sendable {
        let result: AuthenticationResult
        let hash: [UInt8]
        /// md5 of the key's row as `deploxa_authenticate` returned it.
        let fingerprint: String
        /// When the database last confirmed it.
        var at: Date

        /// Whether it may stand in for the database, which cannot be reached.
        func usableWhileAway(grace: Double) -> Bool { Date().timeIntervalSince(at) < grace }
    }

    /// Keys recently authenticated against the database, by key id (with the stored hash, so a
    /// wrong secret is refused without asking the database).
    private let remembered = Mutex<[String: RememberedKey]>([:])
    private static let rememberedLimit = 10_000

    public init(session: PostgresSession, auditWriter: AuditWriter, authenticationGraceSeconds: Double = 600) {
        self.session = session
        self.auditWriter = auditWriter
        self.authenticationGraceSeconds = authenticationGraceSeconds
    }

    // MARK: - Authentication and configuration

    public func authenticate(secret: String, checkAtAdmission: Bool) throws -> AuthenticationResult {
        guard let id = KeySecret.keyID(fromSecret: secret) else { return .unknown }
        if checkAtAdmission, let entry = remembered.withLock({ $0[id] }), case .valid(var key) = entry.result {
            guard KeySecret.matches(secret, storedHash: entry.hash) else { return .unknown }
            key.pendingCheck = entry.fingerprint
            return .valid(key)
        }
        let rows: [PostgresRandomAccessRow]
        do {
            rows = try session.query(Self.authenticateSelect(id: id))
        } catch let error as StoreError where error.kind == .io || error.kind == .busy {
            return try rememberedResult(id: id, secret: secret, failure: error)
        }
        guard let row = rows.first else { return .unknown }
        let hash = try row.bytes(8)
        guard KeySecret.matches(secret, storedHash: hash) else { return .unknown }
        let fingerprint = try row.string(Self.authenticateColumnCount)
        let key = try Self.key(row, 0)
        let result: AuthenticationResult
        if key.isRevoked {
            result = .revoked
        } else {
            let project = try Self.project(row, 9)
            let org = Org(id: project.orgID, name: project.orgName, limits: try Self.limits(row, 18), createdAt: try row.date(21))
            var authenticated = AuthenticatedKey(key: key, project: project, org: org)
            authenticated.settingsVersion = try row.optionalInt64(22) ?? 0
            authenticated.projectHasBreakerState = try row.bool(23)
            result = .valid(authenticated)
        }
        remembered.withLock { keys in
            if keys.count >= Self.rememberedLimit { keys.removeAll(keepingCapacity: true) }
            keys[id] = RememberedKey(result: result, hash: hash, fingerprint: fingerprint, at: Date())
        }
        return result
    }

    /// The database confirmed the remembered key (true) or found it changed (false).
    private func keyChecked(_ check: AdmissionPlan.KeyCheck, unchanged: Bool) {
        remembered.withLock { keys in
            if unchanged { keys[check.keyID]?.at = Date() } else { keys[check.keyID] = nil }
        }
    }

    private func confirmedRecently(_ check: AdmissionPlan.KeyCheck) -> Bool {
        guard let entry = remembered.withLock({ $0[check.keyID] }) else { return false }
        return entry.fingerprint == check.fingerprint && entry.usableWhileAway(grace: authenticationGraceSeconds)
    }

    private func rememberedResult(id: String, secret: String, failure: StoreError) throws -> AuthenticationResult {
        guard let entry = remembered.withLock({ $0[id] }), entry.usableWhileAway(grace: authenticationGraceSeconds) else {
            throw failure
        }
        return KeySecret.matches(secret, storedHash: entry.hash) ? entry.result : .unknown
    }

    public func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try Self.providerSettings(session, projectID: projectID, provider: provider)
    }

    public func providers(projectID: Int64) throws -> [ProviderSettings] {
        try Self.providers(session, projectID: projectID)
    }

    /// Also the admin side's (one text for both).
    static func providerSettings(_ session: PostgresSession, projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try session.query("""
            \(unescaped: GatewayStore.providerSelect) WHERE project_id = \(projectID) AND provider = \(provider.rawValue)
            """).first.flatMap(Self.providerSettings)
    }

    static func providers(_ session: PostgresSession, projectID: Int64) throws -> [ProviderSettings] {
        try session.query("\(unescaped: GatewayStore.providerSelect) WHERE project_id = \(projectID) ORDER BY provider")
            .compactMap(Self.providerSettings)
    }

    public func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain? {
        guard let row = try session.query("""
            SELECT targets FROM fallback_chains
            WHERE project_id = \(projectID) AND provider = \(primary.provider.rawValue) AND model = \(primary.model)
            """).first else { return nil }
        guard let targets = FallbackChain.decodeTargets(try row.string(0)) else { return nil }
        return FallbackChain(projectID: projectID, primary: primary, targets: targets)
    }

    public func prices() throws -> [Price] {
        try session.query("""
            SELECT model, provider, input_per_million, output_per_million, cached_input_per_million,
                   cache_write_per_million, source FROM prices ORDER BY model
            """).map(Self.price)
    }

    static func price(_ row: PostgresRandomAccessRow) throws -> Price {
        Price(model: try row.string(0), provider: try row.optionalString(1), input: try row.optionalDouble(2) ?? 0,
              output: try row.optionalDouble(3) ?? 0, cachedInput: try row.optionalDouble(4), cacheWrite: try row.optionalDouble(5),
              source: try row.optionalString(6))
    }

    // MARK: - Limits

    public func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision {
        let scopes = plan.scopes
        // An empty plan only checks its key: nothing is counted, so an unlimited request keeps
        // being answered while the database is away (fail open), as when its key is read.
        let onlyKeyCheck = plan.isEmpty
        let rows: [PostgresRandomAccessRow]
        do {
            rows = try session.query("""
                SELECT admitted, reason, scope_index, retry_after, requests_limit, requests_remaining, requests_reset,
                       tokens_limit, tokens_remaining, tokens_reset, second, month
                FROM deploxa_admit_checked(\(plan.keyCheck?.keyID), \(plan.keyCheck?.fingerprint),
                    \(PostgresArrayLiteral.text(onlyKeyCheck ? [] : scopes.map(\.scope.storageKey)))::text[],
                    \(PostgresArrayLiteral.bigint(scopes.map { $0.limits.requestsPerMinute.map(Int64.init) }))::bigint[],
                    \(PostgresArrayLiteral.bigint(scopes.map { $0.limits.tokensPerMinute.map(Int64.init) }))::bigint[],
                    \(PostgresArrayLiteral.bigint(scopes.map { $0.limits.monthlyBudgetUSD.map(SpendAmount.nanos) }))::bigint[],
                    \(PostgresArrayLiteral.bigint(scopes.map { $0.monthlyRequestCap.map(Int64.init) }))::bigint[],
                    \(Int64(max(0, plan.estimatedTokens))), \(Int32(plan.windowSeconds)), \(plan.servedFromCache))
                """)
        } catch let error as StoreError where onlyKeyCheck && (error.kind == .io || error.kind == .busy) {
            guard let check = plan.keyCheck, confirmedRecently(check) else { throw error }
            return .keyConfirmed
        }
        guard let row = rows.first else { throw StoreError(.other, "deploxa_admit returned no row") }
        if let check = plan.keyCheck {
            let unchanged = try row.optionalString(1) != "key_changed"
            keyChecked(check, unchanged: unchanged)
            if !unchanged { return .keyChanged }
            if onlyKeyCheck { return .keyConfirmed }
        }
        var status = LimitStatus()
        if let limit = try row.optionalInt64(4) {
            status.requests = LimitHeadroom(limit: Int(clamping: limit), remaining: Int(clamping: max(0, try row.optionalInt64(5) ?? 0)),
                                            resetSeconds: try row.optionalDouble(6) ?? Double(plan.windowSeconds))
        }
        if let limit = try row.optionalInt64(7) {
            status.tokens = LimitHeadroom(limit: Int(clamping: limit), remaining: Int(clamping: max(0, try row.optionalInt64(8) ?? 0)),
                                          resetSeconds: try row.optionalDouble(9) ?? Double(plan.windowSeconds))
        }
        if try row.bool(0) {
            let tokenScopes = scopes.filter { $0.limits.tokensPerMinute != nil }.map(\.scope)
            return .admitted(Admission(second: try row.int64(10), reservedTokens: max(0, plan.estimatedTokens), tokenScopes: tokenScopes,
                                       status: status, settlesSpend: scopes.contains { $0.limits.monthlyBudgetUSD != nil },
                                       month: try row.string(11)))
        }
        guard let reason = Rejection.Reason(rawValue: try row.string(1)), let index = try row.optionalInt(2), scopes.indices.contains(index) else {
            throw StoreError(.other, "deploxa_admit refused without a known reason")
        }
        let scope = scopes[index]
        let text: String
        switch reason {
        case .requestsPerMinute: text = "\(scope.limits.requestsPerMinute ?? 0) requests per minute"
        case .tokensPerMinute: text = "\(scope.limits.tokensPerMinute ?? 0) tokens per minute"
        case .monthlyBudget: text = String(format: "monthly budget of $%.2f", scope.limits.monthlyBudgetUSD ?? 0)
        case .freePlan: text = "\(scope.monthlyRequestCap ?? 0) requests per month on the free plan"
        }
        return .rejected(Rejection(reason: reason, scope: scope.scope, limitDescription: text,
                                   retryAfterSeconds: max(1, try row.optionalInt(3) ?? 1), status: status))
    }

    public func settle(_ admission: Admission, actualTokens: Int?, costUSD: Double?, scopes: [LimitScope]) throws {
        let delta = Saturating.add(Int64(actualTokens ?? admission.reservedTokens), -Int64(admission.reservedTokens))
        let cost = costUSD.map(SpendAmount.nanos) ?? 0
        let spend = admission.settlesSpend && cost > 0
        guard delta != 0 && !admission.tokenScopes.isEmpty || spend else { return }
        try session.query("""
            SELECT deploxa_settle(
                \(PostgresArrayLiteral.text(delta != 0 ? admission.tokenScopes.map(\.storageKey) : []))::text[],
                \(admission.second), \(delta),
                \(PostgresArrayLiteral.text(spend ? scopes.map(\.storageKey) : []))::text[],
                \(admission.month), \(spend ? cost : 0))
            """)
    }

    // MARK: - Response cache

    public func cachedAnswer(key: [UInt8], projectID: Int64) throws -> CachedAnswer? {
        try session.query("""
            SELECT provider, model_served, stream, body FROM cache_entries
            WHERE key = \(ByteBuffer(bytes: key)) AND project_id = \(projectID) AND expires_at > deploxa_now_ms()
            """).first.map { row in
            CachedAnswer(provider: try row.string(0), modelServed: try row.optionalString(1), stream: try row.bool(2), body: try row.bytes(3))
        }
    }

    public func claimCacheLease(key: [UInt8], seconds: Double) throws -> Bool {
        try session.query("SELECT deploxa_claim_cache_lease(\(ByteBuffer(bytes: key)), \(Int64(seconds * 1000)))").first?.bool(0) ?? false
    }

    public func cacheLeaseIsLive(key: [UInt8]) throws -> Bool {
        try !session.query("""
            SELECT 1 FROM cache_leases WHERE key = \(ByteBuffer(bytes: key)) AND expires_at > deploxa_now_ms()
            """).isEmpty
    }

    public func storeCachedAnswer(_ answer: CachedAnswer, key: [UInt8], projectID: Int64, ttlSeconds: Int) throws {
        try session.query("""
            SELECT deploxa_store_cached_answer(\(ByteBuffer(bytes: key)), \(projectID), \(Int64(answer.stream ? 1 : 0)),
                \(answer.provider), \(answer.modelServed), \(ByteBuffer(bytes: answer.body)), \(Int64(ttlSeconds) * 1000))
            """)
    }

    public func releaseCacheLease(key: [UInt8]) throws {
        try session.execute("DELETE FROM cache_leases WHERE key = \(ByteBuffer(bytes: key))")
    }

    // MARK: - Circuit breakers

    public func breakerState(projectID: Int64, provider: Provider) throws -> BreakerState? {
        try session.query("""
            SELECT failures, open_until FROM circuit_breakers WHERE project_id = \(projectID) AND provider = \(provider.rawValue)
            """).first.map { BreakerState(failures: try $0.optionalInt(0) ?? 0, openUntil: try $0.int64(1)) }
    }

    public func claimBreakerProbe(projectID: Int64, provider: Provider, seenOpenUntil: Int64, until: Date) throws -> Bool {
        let fromNow = max(0, StoreTime.milliseconds(until) - StoreTime.milliseconds(Date()))
        return try session.query("""
            SELECT deploxa_breaker_claim_probe(\(projectID), \(provider.rawValue), \(seenOpenUntil), \(fromNow))
            """).first?.bool(0) ?? false
    }

    public func recordProviderFailure(projectID: Int64, provider: Provider, threshold: Int, cooldownSeconds: Double,
                                      retryAfterSeconds: Int?) throws -> BreakerState {
        let retryAfter = retryAfterSeconds.map { Int64($0) * 1000 }
        guard let row = try session.query("""
            SELECT failures, open_until FROM deploxa_breaker_failure(\(projectID), \(provider.rawValue), \(Int32(clamping: threshold)),
                \(Int64(cooldownSeconds * 1000)), \(retryAfter))
            """).first else { throw StoreError(.other, "deploxa_breaker_failure returned no row") }
        return BreakerState(failures: try row.optionalInt(0) ?? 0, openUntil: try row.int64(1))
    }

    public func recordProviderSuccess(projectID: Int64, provider: Provider) throws {
        try session.execute("DELETE FROM circuit_breakers WHERE project_id = \(projectID) AND provider = \(provider.rawValue)")
    }

    // MARK: - Audit

    public func beginAudit(_ record: AuditRecord) -> AuditTicket { auditWriter.begin(record) }
    public func auditProgress(_ record: AuditRecord, ticket: inout AuditTicket) { auditWriter.progress(record, ticket: &ticket) }
    public func appendAudit(_ record: AuditRecord, ticket: AuditTicket) { auditWriter.enqueue(record, ticket: ticket) }

    public func ping() throws { try session.query("SELECT 1") }

    // MARK: - Rows

    /// `GatewayStore.authenticateColumns` for one key, through a function that keeps its plan
    /// (migration step 4: planning the join on every call cost more than running it).
    /// The last column is the row's fingerprint (`AdmissionPlan.KeyCheck`).
    static func authenticateSelect(id: String) -> PostgresQuery {
        "SELECT a.*, md5(a::text) FROM deploxa_authenticate(\(id)) AS a"
    }

    /// Columns of `deploxa_authenticate` (`GatewayStore.authenticateColumns`).
    static let authenticateColumnCount = 24

    static func limits(_ row: PostgresRandomAccessRow, _ start: Int) throws -> Limits {
        Limits(requestsPerMinute: try row.optionalInt(start), tokensPerMinute: try row.optionalInt(start + 1),
               monthlyBudgetUSD: try row.optionalDouble(start + 2))
    }

    /// Columns start…start+7: id, project_id, name, rpm, tpm, budget, created_at, revoked_at.
    static func key(_ row: PostgresRandomAccessRow, _ start: Int) throws -> GatewayKey {
        GatewayKey(id: try row.string(start), projectID: try row.int64(start + 1), name: try row.optionalString(start + 2),
                   limits: try limits(row, start + 3), createdAt: try row.date(start + 6),
                   revokedAt: try row.optionalInt64(start + 7).map(StoreTime.date))
    }

    /// Columns start…start+8: id, org_id, org name, name, plan, rpm, tpm, budget, created_at.
    static func project(_ row: PostgresRandomAccessRow, _ start: Int) throws -> Project {
        Project(id: try row.int64(start), orgID: try row.int64(start + 1), orgName: try row.string(start + 2),
                name: try row.string(start + 3), plan: Plan(rawValue: try row.string(start + 4)) ?? .pro,
                limits: try limits(row, start + 5), createdAt: try row.date(start + 8))
    }

    static func providerSettings(_ row: PostgresRandomAccessRow) throws -> ProviderSettings? {
        guard let provider = Provider(rawValue: try row.string(1)) else { return nil }
        return ProviderSettings(projectID: try row.int64(0), provider: provider, apiKey: Secret(try row.string(2)),
                                baseURL: try row.optionalString(3), updatedAt: try row.date(4))
    }
}
