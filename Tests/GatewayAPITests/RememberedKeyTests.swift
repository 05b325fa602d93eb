import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import Logging
import Synchronization
import Testing
@testable import GatewayAPI

/// A store that answers keys from memory as the PostgreSQL store does (over the SQLite store, so
/// the test needs no database server): the pipeline must confirm such a key at admission, start
/// over when the key changed, and re-read it before an error answer that comes earlier.
final class RememberingStore: RequestStore {
    let base: SQLiteRequestStore
    private struct State {
        var remembered: [String: (key: AuthenticatedKey, secret: String)] = [:]
        var keyReads = 0
        var admissions = 0
    }
    private let state = Mutex(State())

    init(_ base: SQLiteRequestStore) { self.base = base }

    var keyReads: Int { state.withLock { $0.keyReads } }
    var admissions: Int { state.withLock { $0.admissions } }

    private static func fingerprint(_ key: AuthenticatedKey) -> String { String(describing: key) }

    func authenticate(secret: String, checkAtAdmission: Bool) throws -> AuthenticationResult {
        let id = KeySecret.keyID(fromSecret: secret) ?? ""
        if checkAtAdmission, let entry = state.withLock({ $0.remembered[id] }), entry.secret == secret {
            var key = entry.key
            key.pendingCheck = Self.fingerprint(entry.key)
            return .valid(key)
        }
        state.withLock { $0.keyReads += 1 }
        let result = try base.authenticate(secret: secret)
        if case .valid(let key) = result { state.withLock { $0.remembered[id] = (key, secret) } }
        return result
    }

    func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision {
        state.withLock { $0.admissions += 1 }
        if let check = plan.keyCheck {
            guard let entry = state.withLock({ $0.remembered[check.keyID] }),
                  case .valid(let current) = try base.authenticate(secret: entry.secret),
                  Self.fingerprint(current) == check.fingerprint else {
                state.withLock { $0.remembered[check.keyID] = nil }
                return .keyChanged
            }
            if plan.isEmpty { return .keyConfirmed }
        }
        // Checked here with this double's own fingerprint, which means nothing to the base store.
        var checked = plan
        checked.keyCheck = nil
        return try base.admit(checked)
    }

    func providerSettings(projectID: Int64, provider: Provider) throws -> ProviderSettings? {
        try base.providerSettings(projectID: projectID, provider: provider)
    }
    func providers(projectID: Int64) throws -> [ProviderSettings] { try base.providers(projectID: projectID) }
    func fallbackChain(projectID: Int64, primary: FallbackTarget) throws -> FallbackChain? {
        try base.fallbackChain(projectID: projectID, primary: primary)
    }
    func prices() throws -> [Price] { try base.prices() }
    func settle(_ admission: Admission, actualTokens: Int?, costUSD: Double?, scopes: [LimitScope]) throws {
        try base.settle(admission, actualTokens: actualTokens, costUSD: costUSD, scopes: scopes)
    }
    func cachedAnswer(key: [UInt8], projectID: Int64) throws -> CachedAnswer? { try base.cachedAnswer(key: key, projectID: projectID) }
    func claimCacheLease(key: [UInt8], seconds: Double) throws -> Bool { try base.claimCacheLease(key: key, seconds: seconds) }
    func cacheLeaseIsLive(key: [UInt8]) throws -> Bool { try base.cacheLeaseIsLive(key: key) }
    func storeCachedAnswer(_ answer: CachedAnswer, key: [UInt8], projectID: Int64, ttlSeconds: Int) throws {
        try base.storeCachedAnswer(answer, key: key, projectID: projectID, ttlSeconds: ttlSeconds)
    }
    func releaseCacheLease(key: [UInt8]) throws { try base.releaseCacheLease(key: key) }
    func breakerState(projectID: Int64, provider: Provider) throws -> BreakerState? {
        try base.breakerState(projectID: projectID, provider: provider)
    }
    func claimBreakerProbe(projectID: Int64, provider: Provider, seenOpenUntil: Int64, until: Date) throws -> Bool {
        try base.claimBreakerProbe(projectID: projectID, provider: provider, seenOpenUntil: seenOpenUntil, until: until)
    }
    func recordProviderFailure(projectID: Int64, provider: Provider, threshold: Int, cooldownSeconds: Double,
                               retryAfterSeconds: Int?) throws -> BreakerState {
        try base.recordProviderFailure(projectID: projectID, provider: provider, threshold: threshold,
                                       cooldownSeconds: cooldownSeconds, retryAfterSeconds: retryAfterSeconds)
    }
    func recordProviderSuccess(projectID: Int64, provider: Provider) throws {
        try base.recordProviderSuccess(projectID: projectID, provider: provider)
    }
    func beginAudit(_ record: AuditRecord) -> AuditTicket { base.beginAudit(record) }
    func auditProgress(_ record: AuditRecord, ticket: inout AuditTicket) { base.auditProgress(record, ticket: &ticket) }
    func appendAudit(_ record: AuditRecord, ticket: AuditTicket) { base.appendAudit(record, ticket: ticket) }
    func ping() throws { try base.ping() }
}

@Suite("Remembered keys", .serialized)
final class RememberedKeyTests: TestPipeline {
    private(set) var remembering: RememberingStore!
    private(set) var remembered: GatewayApplication!

    init() async throws {
        try await super.init(providers: [(.openai, "sk-sim-openai")])
        remembering = RememberingStore(SQLiteRequestStore(store: store, auditWriter: auditWriter))
        remembered = GatewayApplication(configuration: GatewayConfiguration(), store: remembering, upstream: upstream,
                                        logger: Logger(label: "test"))
    }

    static let chatBody = #"{"model":"gpt-4o","messages":[{"role":"user","content":"one two"}]}"#

    /// Through the application whose store remembers keys.
    func send(_ body: String = chatBody, key: String? = nil, path: String = "/v1/chat/completions",
              method: String = "POST") async -> RecordingWriter {
        await chat(body, key: key, path: path, method: method, through: remembered)
    }

    var keyID: String { KeySecret.keyID(fromSecret: secret) ?? "" }

    @Test func aKnownKeyIsReadOnceAndConfirmedByEachAdmission() async throws {
        for _ in 0..<3 { #expect(await send().status == 200) }
        #expect(remembering.keyReads == 1)
        // No limit applies to the key, yet every request from memory was checked.
        #expect(remembering.admissions == 2)
        let row = try auditRow(for: await send())
        #expect(row.keyID == keyID && row.status == 200)
    }

    @Test func aRevokedKeyIsRefusedAtItsNextRequest() async throws {
        #expect(await send().status == 200)
        #expect(try store.revokeKey(id: keyID))
        let refused = await send()
        #expect(refused.status == 401)
        #expect(try auditRow(for: refused).status == 401)
        #expect(remembering.keyReads == 2)
    }

    @Test func changedLimitsApplyAtTheNextRequestAndTheStaleTryCountsNothing() async throws {
        #expect(await send().status == 200)
        try store.updateLimits(keyID: keyID, limits: Limits(requestsPerMinute: 1))
        // Planned from memory without a limit, refused as changed, then run again with RPM 1:
        // counted once, so the one after it is the one refused.
        #expect(await send().status == 200)
        #expect(await send().status == 429)
        #expect(remembering.keyReads == 2)
    }

    @Test func anErrorBeforeAdmissionStillSaysTheKeyIsRevoked() async throws {
        #expect(await send().status == 200)
        #expect(try store.revokeKey(id: keyID))
        // Malformed JSON fails before any admission: the key is read again, and 401 wins over 400.
        #expect(await send(#"{"model":"#).status == 401)
        // While a key is valid, the request's own error stands.
        let other = try store.createKey(projectID: projectID, name: "other", limits: .none).secret
        #expect(await send(key: other).status == 200)
        #expect(await send(#"{"model":"#, key: other).status == 400)
    }

    /// The embedded store remembers keys as well (`SQLiteRequestStore`). A provider configured
    /// after the key was remembered serves the very next request: the "not configured" its stale
    /// copy meets before any admission is not the answer, the request starts over.
    @Test func aProviderConfiguredMeanwhileServesTheVeryNextRequest() async throws {
        let anthropic = [("X-AI-Provider", "anthropic")]
        let body = #"{"model":"claude-sonnet-4-20250514","max_tokens":20,"messages":[{"role":"user","content":"one two"}]}"#
        #expect(await chat(Self.chatBody).status == 200)  // read, remembered
        let refused = await chat(body, headers: anthropic)  // from memory: not configured
        #expect(refused.status == 400)
        try store.setProvider(projectID: projectID, provider: .anthropic, apiKey: Secret("sk-ant-sim"),
                              baseURL: "http://127.0.0.1:\(simulatorPort)/anthropic")
        let served = await chat(body, headers: anthropic)
        #expect(served.status == 200)
        #expect(try auditRow(for: served).provider == "anthropic")
    }

    @Test func theModelListReadsItsKey() async throws {
        #expect(await send().status == 200)
        #expect(try store.revokeKey(id: keyID))
        #expect(await send("", path: "/v1/models", method: "GET").status == 401)
    }
}
