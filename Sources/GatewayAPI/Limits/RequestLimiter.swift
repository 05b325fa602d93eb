import Foundation
import GatewayCore
import GatewayHTTP
import GatewayStore
import PoolScoreboard

/// Applies docs/api.md's limits to one request: RPM, TPM and monthly budgets at key, project and org
/// scope, and the free plan's monthly request cap. The check and the count happen in one short
/// store transaction before the provider is called; `settle` reconciles tokens and spend after.
struct RequestLimiter: Sendable {
    let store: any RequestStore
    /// RPM/TPM sliding window (60 s; the `limits.window_seconds` setting shortens it for tests).
    let windowSeconds: Int

    static let freePlanMonthlyRequests = 1_000

    /// The checks that apply to `key`, or nil when none does (no transaction at all then). A key
    /// the store answered from memory is always checked, limits or not.
    func plan(for key: AuthenticatedKey, estimatedTokens: Int, servedFromCache: Bool = false, now: Date = Date()) -> AdmissionPlan? {
        var scopes: [AdmissionPlan.Scope] = [
            .init(scope: LimitScope(.key, key.key.id), limits: key.key.limits),
            .init(scope: LimitScope(.project, String(key.project.id)), limits: key.project.limits,
                  monthlyRequestCap: key.project.plan == .free ? Self.freePlanMonthlyRequests : nil),
            .init(scope: LimitScope(.org, String(key.org.id)), limits: key.org.limits),
        ]
        scopes.removeAll { $0.limits == .none && $0.monthlyRequestCap == nil }
        var plan = AdmissionPlan(scopes: scopes, estimatedTokens: estimatedTokens, now: now, windowSeconds: windowSeconds)
        plan.servedFromCache = servedFromCache
        plan.keyCheck = key.pendingCheck.map { AdmissionPlan.KeyCheck(keyID: key.key.id, fingerprint: $0) }
        return plan.isEmpty && plan.keyCheck == nil ? nil : plan
    }

    /// The limiter's decision on one request.
    enum Decision {
        /// Counted (nil: no limit applies, nothing to settle later).
        case admitted(Admission?)
        case refused(Refusal)
    }

    /// A refused request: docs/api.md's 429, which limit refused it, and the headroom for the
    /// `x-ratelimit-*` headers of the answer.
    struct Refusal {
        let error: GatewayError
        let kind: LimitRefusalKind
        let status: LimitStatus
    }

    /// Counts the request, or refuses it. A store failure propagates (503), and so does
    /// `RememberedKeyChanged` (nothing counted: the pipeline starts over with the key read anew).
    func admit(key: AuthenticatedKey, estimatedTokens: Int, servedFromCache: Bool) throws -> Decision {
        guard let plan = plan(for: key, estimatedTokens: estimatedTokens, servedFromCache: servedFromCache) else { return .admitted(nil) }
        switch try store.admit(plan) {
        case .admitted(let admission):
            return .admitted(admission)
        case .keyConfirmed:
            return .admitted(nil)
        case .keyChanged:
            throw RememberedKeyChanged()
        case .rejected(let rejection):
            let scope = Self.describe(rejection.scope, key: key)
            let error: GatewayError
            switch rejection.reason {
            case .requestsPerMinute, .tokensPerMinute:
                error = .rateLimited(
                    "Rate limit reached for \(scope): \(rejection.limitDescription). Retry after \(rejection.retryAfterSeconds) s.",
                    retryAfter: rejection.retryAfterSeconds)
            case .monthlyBudget, .freePlan:
                error = .insufficientQuota(
                    "You exceeded the \(rejection.limitDescription) for \(scope). It resets at the start of the next month (UTC).",
                    retryAfter: rejection.retryAfterSeconds)
            }
            return .refused(Refusal(error: error, kind: LimitRefusalKind(rejection.reason), status: rejection.status))
        }
    }

    /// Reconciles the token reservation with real usage and adds spend where a budget applies.
    /// The answer is already decided, so a store failure here is logged by the caller, not thrown.
    func settle(_ admission: Admission, key: AuthenticatedKey, actualTokens: Int?, costUSD: Double?) throws {
        try store.settle(admission, actualTokens: actualTokens, costUSD: costUSD,
                         scopes: LimitScope.all(orgID: key.org.id, projectID: key.project.id, keyID: key.key.id))
    }

    private static func describe(_ scope: LimitScope, key: AuthenticatedKey) -> String {
        switch scope.kind {
        case .key: return "key \(key.key.id)"
        case .project: return "project \(key.project.slug)"
        case .org: return "org \(key.org.name)"
        }
    }
}

/// The key a request was planned with had changed when it was admitted (`AdmissionDecision.keyChanged`).
struct RememberedKeyChanged: Error {}

/// OpenAI's `x-ratelimit-*` headers (durations like `1s`, `6m0s`, `250ms`).
enum RateLimitHeaders {
    static func add(_ status: LimitStatus?, to headers: inout HTTPHeaders) {
        guard let status else { return }
        if let requests = status.requests {
            headers.add(name: "x-ratelimit-limit-requests", value: String(requests.limit))
            headers.add(name: "x-ratelimit-remaining-requests", value: String(requests.remaining))
            headers.add(name: "x-ratelimit-reset-requests", value: duration(requests.resetSeconds))
        }
        if let tokens = status.tokens {
            headers.add(name: "x-ratelimit-limit-tokens", value: String(tokens.limit))
            headers.add(name: "x-ratelimit-remaining-tokens", value: String(tokens.remaining))
            headers.add(name: "x-ratelimit-reset-tokens", value: duration(tokens.resetSeconds))
        }
    }

    /// Go-style durations, as OpenAI sends them: `0s`, `250ms`, `17s`, `6m0s`, `1h2m3s`.
    static func duration(_ seconds: Double) -> String {
        if seconds <= 0 { return "0s" }
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        let total = Int(seconds.rounded())
        let hours = total / 3600, minutes = total % 3600 / 60, rest = total % 60
        if hours > 0 { return "\(hours)h\(minutes)m\(rest)s" }
        if minutes > 0 { return "\(minutes)m\(rest)s" }
        return "\(rest)s"
    }
}

extension LimitRefusalKind {
    init(_ reason: Rejection.Reason) {
        switch reason {
        case .requestsPerMinute: self = .requestsPerMinute
        case .tokensPerMinute: self = .tokensPerMinute
        case .monthlyBudget: self = .monthlyBudget
        case .freePlan: self = .freePlan
        }
    }
}
