import Foundation
import GatewayCore
import Synchronization

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
///
/// A key read once is remembered with the `key_version` it was read at (migration 6: every change
/// to a key, its project or org, the settings version or a project's breaker rows bumps it). A
/// later request with it skips the lookup's joins; its admission reads that one row first and,
/// if the version moved, counts nothing and says `.keyChanged`, so the pipeline reads the key
/// again: a revoked or changed key is seen at the very next request, as with a read every time.
public struct SQLiteRequestStore: RequestStore {
    public let store: GatewayStore
    public let auditWriter: AuditWriter
    private let remembered = RememberedKeys()

    public init(store: GatewayStore, auditWriter: AuditWriter) {
        self.store = store
        self.auditWriter = auditWriter
    }

    public func authenticate(secret: String, checkAtAdmission: Bool) throws -> AuthenticationResult {
        guard let id = KeySecret.keyID(fromSecret: secret) else { return .unknown }
        if checkAtAdmission, let entry = remembered.entry(id) {
            guard KeySecret.matches(secret, storedHash: entry.hash) else { return .unknown }
            var key = entry.key
            key.pendingCheck = String(entry.version)
            return .valid(key)
        }
        let (result, version) = try store.authenticateWithKeyVersion(secret: secret)
        if case .valid(let key) = result, let version {
            remembered.remember(id, key: key, hash: KeySecret.hashBytes(secret), version: version)
        }
        return result
    }
    public func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try store.providerSettings(projectID: projectID, provider: provider)
    }
    public func providers(projectID: Int64) throws -> [ProviderSettings] { try store.providers(projectID: projectID) }
    public func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain? {
        try store.fallbackChain(projectID: projectID, primary: primary)
    }
    public func prices() throws -> [Price] { try store.prices() }

    public func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision {
        let decision = try store.admit(plan)
        if case .keyChanged = decision, let check = plan.keyCheck { remembered.forget(check.keyID) }
        return decision
    }
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

/// Keys a worker has read, by key id, with the digest that matched and the `key_version` they
/// were read at. Only entries of the newest version seen are answered: after any change every
/// key is read again once, instead of each failing its admission's check first.
final class RememberedKeys: Sendable {
    struct Entry: Sendable {
        let key: AuthenticatedKey
        let hash: [UInt8]
        let version: Int64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var newestVersion: Int64 = .min
    }

    private let state = Mutex(State())
    /// Past this many keys the memory starts over (each key is then read once more).
    static let limit = 10_000

    func entry(_ id: String) -> Entry? {
        state.withLock { state in
            guard let entry = state.entries[id], entry.version == state.newestVersion else { return nil }
            return entry
        }
    }

    func remember(_ id: String, key: AuthenticatedKey, hash: [UInt8], version: Int64) {
        state.withLock { state in
            if version > state.newestVersion {
                state.newestVersion = version
                state.entries.removeAll(keepingCapacity: true)
            }
            guard version == state.newestVersion else { return }
            if state.entries.count >= Self.limit { state.entries.removeAll(keepingCapacity: true) }
            state.entries[id] = Entry(key: key, hash: hash, version: version)
        }
    }

    func forget(_ id: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }
}
