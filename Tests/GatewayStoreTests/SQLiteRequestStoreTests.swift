import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// The embedded request store remembers keys it has read and confirms them at admission by the
/// one-row `key_version` (migration 6) instead of the lookup's joins.
@Suite("SQLite request store")
struct SQLiteRequestStoreTests {
    private let database: TestDatabase
    private let requests: SQLiteRequestStore
    private let project: Project
    private let keyID: String
    private let secret: String

    init() throws {
        database = try TestDatabase()
        requests = SQLiteRequestStore(store: database.store, auditWriter: AuditWriter(store: try database.openAnother()))
        _ = try database.store.createOrg(name: "acme")
        project = try database.store.createProject(orgName: "acme", name: "web")
        let created = try database.store.createKey(projectID: project.id)
        keyID = created.key.id
        secret = created.secret
    }

    /// Authenticates as the pipeline does (a key may come from memory).
    private func authenticate(_ secret: String? = nil) throws -> AuthenticatedKey? {
        guard case .valid(let key) = try requests.authenticate(secret: secret ?? self.secret, checkAtAdmission: true) else { return nil }
        return key
    }

    private func plan(_ key: AuthenticatedKey, limits: Limits = .none) -> AdmissionPlan {
        var plan = AdmissionPlan(scopes: limits == .none ? [] : [.init(scope: LimitScope(.key, key.key.id), limits: limits)],
                                 estimatedTokens: 10)
        plan.keyCheck = key.pendingCheck.map { AdmissionPlan.KeyCheck(keyID: key.key.id, fingerprint: $0) }
        return plan
    }

    private func countedRequests() throws -> Int64 {
        try database.store.connection.queryFirst("SELECT coalesce(sum(requests), 0) FROM rate_buckets", [], { $0.int64(0) }) ?? 0
    }

    @Test func aKeyIsReadOnceThenAnsweredFromMemoryWithItsVersion() throws {
        let first = try #require(try authenticate())
        #expect(first.pendingCheck == nil)  // read from the file
        let second = try #require(try authenticate())
        #expect(second.pendingCheck == String(try database.store.keyVersion()))
        #expect(second.key == first.key && second.project == first.project)
        guard case .keyConfirmed = try requests.admit(plan(second)) else { Issue.record("not confirmed"); return }
    }

    @Test func aWrongSecretForARememberedKeyIsUnknown() throws {
        _ = try authenticate()
        _ = try authenticate()
        let forged = String(secret.dropLast()) + (secret.hasSuffix("A") ? "B" : "A")
        #expect(try requests.authenticate(secret: forged, checkAtAdmission: true) == .unknown)
    }

    @Test func aRevokedKeyFailsItsCheckCountsNothingAndIsReadAgain() throws {
        _ = try authenticate()
        let remembered = try #require(try authenticate())
        #expect(try database.store.revokeKey(id: keyID))
        guard case .keyChanged = try requests.admit(plan(remembered, limits: Limits(requestsPerMinute: 5))) else {
            Issue.record("a revoked key passed its check"); return
        }
        #expect(try countedRequests() == 0)
        #expect(try requests.authenticate(secret: secret, checkAtAdmission: true) == .revoked)
    }

    /// Every table the lookup reads bumps the version, so any change is seen at the next admission.
    @Test func everyChangeToWhatTheLookupReturnsMovesTheVersion() throws {
        let store = database.store
        var last = try store.keyVersion()
        func moved(_ what: String) throws {
            let now = try store.keyVersion()
            #expect(now > last, "\(what) did not move key_version")
            last = now
        }
        try store.updateLimits(keyID: keyID, limits: Limits(requestsPerMinute: 9)); try moved("key limits")
        try store.updateLimits(projectID: project.id, limits: Limits(tokensPerMinute: 900)); try moved("project limits")
        try store.updateLimits(orgName: "acme", limits: Limits(monthlyBudgetUSD: 9)); try moved("org limits")
        try store.setPrice(Price(model: "o3", provider: "openai", input: 2, output: 8)); try moved("a price (settings version)")
        _ = try store.recordProviderFailure(projectID: project.id, provider: .openai, threshold: 5, cooldownSeconds: 30, retryAfterSeconds: nil)
        try moved("a project's first breaker row")
        try store.recordProviderSuccess(projectID: project.id, provider: .openai); try moved("its breaker row gone")
        _ = try store.createKey(projectID: project.id); try moved("a new key")
        _ = try authenticate()
        #expect(try store.keyVersion() == last)  // reading moves nothing
    }

    @Test func changedLimitsApplyOnceTheKeyIsReadAgain() throws {
        _ = try authenticate()
        let stale = try #require(try authenticate())
        try database.store.updateLimits(keyID: keyID, limits: Limits(requestsPerMinute: 1))
        guard case .keyChanged = try requests.admit(plan(stale)) else { Issue.record("stale key passed"); return }
        // Read again (the pipeline's second run), then from memory once more with the new limit.
        let fresh = try #require(try requests.authenticate(secret: secret, checkAtAdmission: false).validKey)
        #expect(fresh.key.limits.requestsPerMinute == 1)
        let remembered = try #require(try authenticate())
        #expect(remembered.pendingCheck != nil && remembered.key.limits.requestsPerMinute == 1)
        guard case .admitted = try requests.admit(plan(remembered, limits: remembered.key.limits)) else { Issue.record("refused"); return }
        guard case .rejected = try requests.admit(plan(remembered, limits: remembered.key.limits)) else { Issue.record("RPM 1 let two through"); return }
    }

    /// One change anywhere sends every remembered key to be read again once, not to a failed check each.
    @Test func afterAChangeOnlyKeysOfTheNewestVersionAreAnswered() throws {
        let (_, otherSecret) = try database.store.createKey(projectID: project.id)
        _ = try authenticate()
        _ = try authenticate(otherSecret)
        #expect(try authenticate()?.pendingCheck != nil)
        try database.store.updateLimits(orgName: "acme", limits: Limits(requestsPerMinute: 100))
        _ = try requests.authenticate(secret: otherSecret, checkAtAdmission: false)  // read at the new version
        #expect(try authenticate()?.pendingCheck == nil)  // the first key, remembered at the old one, is read again
    }
}

private extension AuthenticationResult {
    var validKey: AuthenticatedKey? {
        if case .valid(let key) = self { return key }
        return nil
    }
}
