import Foundation
import GatewayCore

/// Everything the request pipeline asks of persistent state, named by what it is for. The
/// pipeline sees only this protocol, so a second backend (a database shared by several machines)
/// is one more conforming type, not a change to the pipeline. Every operation is one short
/// transaction or read; none is held across a provider call.
///
/// Calls block the calling thread while the database works (the worker runs requests on a thread
/// of its own for that reason, never on Swift's cooperative pool: see `RequestExecutor`).
public protocol RequestStore: Sendable {
    // Authentication and configuration
    /// The key behind a presented secret, with its project, org and limits. With
    /// `checkAtAdmission` a backend may answer from memory for a key it read before, marking the
    /// key `pendingCheck`: the caller then promises an admission (`admit`, whose plan carries the
    /// check) before it counts or answers anything, or a fresh `authenticate` if it stops earlier.
    func authenticate(secret: String, checkAtAdmission: Bool) throws -> AuthenticationResult
    /// The project's credentials and base URL for a provider (nil: not configured).
    func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings?
    /// Every provider configured for the project (GET /v1/models).
    func providers(projectID: Int64) throws -> [ProviderSettings]
    /// The project's fallback chain for a provider/model, if it has one.
    func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain?
    /// The price table (read again only when the settings version moves).
    func prices() throws -> [Price]

    // Limits
    /// Checks every limit of `plan` and counts the request in the same transaction, or refuses it
    /// (and first checks the key when the plan carries a `keyCheck`).
    func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision
    /// Replaces the token reservation with real usage and adds spend where a budget applies.
    func settle(_ admission: Admission, actualTokens: Int?, costUSD: Double?, scopes: [LimitScope]) throws

    // Response cache
    func cachedAnswer(key: [UInt8], projectID: Int64) throws -> CachedAnswer?
    /// True when the caller now holds the key's lease and computes the answer for everyone.
    func claimCacheLease(key: [UInt8], seconds: Double) throws -> Bool
    func cacheLeaseIsLive(key: [UInt8]) throws -> Bool
    /// Stores the answer and ends the lease, in one transaction.
    func storeCachedAnswer(_ answer: CachedAnswer, key: [UInt8], projectID: Int64, ttlSeconds: Int) throws
    func releaseCacheLease(key: [UInt8]) throws

    // Circuit breakers
    func breakerState(projectID: Int64, provider: Provider) throws -> BreakerState?
    /// Lets exactly one request (across all workers) probe a provider after its cool-down.
    func claimBreakerProbe(projectID: Int64, provider: Provider, seenOpenUntil: Int64, until: Date) throws -> Bool
    func recordProviderFailure(projectID: Int64, provider: Provider, threshold: Int, cooldownSeconds: Double,
                               retryAfterSeconds: Int?) throws -> BreakerState
    func recordProviderSuccess(projectID: Int64, provider: Provider) throws

    // Audit
    /// Puts a request on file as it starts, so that even a worker killed mid-request leaves its row.
    func beginAudit(_ record: AuditRecord) -> AuditTicket
    /// Puts on file what a request whose answer has started going out has done so far.
    func auditProgress(_ record: AuditRecord, ticket: inout AuditTicket)
    /// The request's one audit row; returns before the row is committed (batched), never loses it.
    func appendAudit(_ record: AuditRecord, ticket: AuditTicket)

    // Health
    /// A trivial read that proves the database answers (GET /healthz).
    func ping() throws
}

extension RequestStore {
    /// The key, read from the store now.
    public func authenticate(secret: String) throws -> AuthenticationResult {
        try authenticate(secret: secret, checkAtAdmission: false)
    }
}

/// The embedded backend: one SQLite file shared by every worker (`GatewayStore`), with each
/// worker's `AuditWriter` batching the audit rows.
public struct SQLiteRequestStore: RequestStore {
    public let store: GatewayStore
    public let auditWriter: AuditWriter

    public init(store: GatewayStore, auditWriter: AuditWriter) {
        self.store = store
        self.auditWriter = auditWriter
    }

    /// A local read costs less than remembering would save, so every key is read for its request
    /// and no plan of this store carries a key check.
    public func authenticate(secret: String, checkAtAdmission: Bool) throws -> AuthenticationResult {
        try store.authenticate(secret: secret)
    }
    public func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try store.providerSettings(projectID: projectID, provider: provider)
    }
    public func providers(projectID: Int64) throws -> [ProviderSettings] { try store.providers(projectID: projectID) }
    public func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain? {
        try store.fallbackChain(projectID: projectID, primary: primary)
    }
    public func prices() throws -> [Price] { try store.prices() }

    public func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision { try store.admit(plan) }
    public func settle(_ admission: Admission, actualTokens: Int?, costUSD: Double?, scopes: [LimitScope]) throws {
        try store.settle(admission, actualTokens: actualTokens, costUSD: costUSD, scopes: scopes)
    }

    public func cachedAnswer(key: [UInt8], projectID: Int64) throws -> CachedAnswer? { try store.cachedAnswer(key: key, projectID: projectID) }
    public func claimCacheLease(key: [UInt8], seconds: Double) throws -> Bool { try store.claimCacheLease(key: key, seconds: seconds) }
    public func cacheLeaseIsLive(key: [UInt8]) throws -> Bool { try store.cacheLeaseIsLive(key: key) }
    public func storeCachedAnswer(_ answer: CachedAnswer, key: [UInt8], projectID: Int64, ttlSeconds: Int) throws {
        try store.storeCachedAnswer(answer, key: key, projectID: projectID, ttlSeconds: ttlSeconds)
    }
    public func releaseCacheLease(key: [UInt8]) throws { try store.releaseCacheLease(key: key) }

    public func breakerState(projectID: Int64, provider: Provider) throws -> BreakerState? {
        try store.breakerState(projectID: projectID, provider: provider)
    }
    public func claimBreakerProbe(projectID: Int64, provider: Provider, seenOpenUntil: Int64, until: Date) throws -> Bool {
        try store.claimBreakerProbe(projectID: projectID, provider: provider, seenOpenUntil: seenOpenUntil, until: until)
    }
    public func recordProviderFailure(projectID: Int64, provider: Provider, threshold: Int, cooldownSeconds: Double,
                                      retryAfterSeconds: Int?) throws -> BreakerState {
        try store.recordProviderFailure(projectID: projectID, provider: provider, threshold: threshold, cooldownSeconds: cooldownSeconds,
                                        retryAfterSeconds: retryAfterSeconds)
    }
    public func recordProviderSuccess(projectID: Int64, provider: Provider) throws {
        try store.recordProviderSuccess(projectID: projectID, provider: provider)
    }

    public func beginAudit(_ record: AuditRecord) -> AuditTicket { auditWriter.begin(record) }
    public func auditProgress(_ record: AuditRecord, ticket: inout AuditTicket) { auditWriter.progress(record, ticket: &ticket) }
    public func appendAudit(_ record: AuditRecord, ticket: AuditTicket) { auditWriter.enqueue(record, ticket: ticket) }

    public func ping() throws { try store.ping() }
}
