import Foundation
import GatewayCore

/// What one request must be checked against: every scope (key, project, org) that has a limit.
public struct AdmissionPlan: Sendable {
    public struct Scope: Sendable {
        public var scope: LimitScope
        public var limits: Limits
        /// The free plan's monthly request cap (projects on plan `free`).
        public var monthlyRequestCap: Int?

        public init(scope: LimitScope, limits: Limits, monthlyRequestCap: Int? = nil) {
            self.scope = scope
            self.limits = limits
            self.monthlyRequestCap = monthlyRequestCap
        }

        var isRateLimited: Bool { limits.requestsPerMinute != nil || limits.tokensPerMinute != nil }
    }

    public var scopes: [Scope]
    /// Tokens reserved up front (prompt estimate + max_tokens); reconciled by `settle`.
    public var estimatedTokens: Int
    public var now: Date
    /// The sliding window of RPM/TPM (60 s; shorter only in tests).
    public var windowSeconds: Int
    /// A cache hit: counted as a request (RPM, free plan) but not refused by TPM or a spent
    /// budget, since it uses no tokens and costs nothing.
    public var servedFromCache = false
    /// A key answered from memory (`AuthenticatedKey.pendingCheck`): the admission confirms that
    /// the key's row is still the one remembered, or counts nothing and says `.keyChanged`.
    public var keyCheck: KeyCheck?

    public struct KeyCheck: Sendable, Equatable {
        public var keyID: String
        public var fingerprint: String

        public init(keyID: String, fingerprint: String) {
            self.keyID = keyID
            self.fingerprint = fingerprint
        }
    }

    public init(scopes: [Scope], estimatedTokens: Int, now: Date = Date(), windowSeconds: Int = 60) {
        self.scopes = scopes
        self.estimatedTokens = estimatedTokens
        self.now = now
        self.windowSeconds = windowSeconds
    }

    /// Whether any check applies at all (otherwise no transaction is needed).
    public var isEmpty: Bool {
        !scopes.contains { $0.isRateLimited || $0.limits.monthlyBudgetUSD != nil || $0.monthlyRequestCap != nil }
    }
}

/// The tightest limit of one kind, for OpenAI's `x-ratelimit-*` headers.
public struct LimitHeadroom: Sendable, Equatable {
    public var limit: Int
    public var remaining: Int
    /// Seconds until the window is empty again (OpenAI's "reset").
    public var resetSeconds: Double

    public init(limit: Int, remaining: Int, resetSeconds: Double) {
        self.limit = limit
        self.remaining = remaining
        self.resetSeconds = resetSeconds
    }
}

public struct LimitStatus: Sendable, Equatable {
    public var requests: LimitHeadroom?
    public var tokens: LimitHeadroom?

    public init(requests: LimitHeadroom? = nil, tokens: LimitHeadroom? = nil) {
        self.requests = requests
        self.tokens = tokens
    }
}

/// An admitted request: what was reserved, so `settle` can reconcile it.
public struct Admission: Sendable {
    public var second: Int64
    public var reservedTokens: Int
    /// Scopes whose token counters hold the reservation.
    public var tokenScopes: [LimitScope]
    public var status: LimitStatus
    /// A budget applies: spend is added synchronously by `settle`.
    public var settlesSpend: Bool
    public var month: String

    public init(second: Int64, reservedTokens: Int, tokenScopes: [LimitScope], status: LimitStatus, settlesSpend: Bool, month: String) {
        self.second = second
        self.reservedTokens = reservedTokens
        self.tokenScopes = tokenScopes
        self.status = status
        self.settlesSpend = settlesSpend
        self.month = month
    }
}

/// Why a request was refused.
public struct Rejection: Sendable, Equatable {
    public enum Reason: String, Sendable { case requestsPerMinute, tokensPerMinute, monthlyBudget, freePlan }
    public var reason: Reason
    public var scope: LimitScope
    public var limitDescription: String
    public var retryAfterSeconds: Int
    public var status: LimitStatus

    public init(reason: Reason, scope: LimitScope, limitDescription: String, retryAfterSeconds: Int, status: LimitStatus) {
        self.reason = reason
        self.scope = scope
        self.limitDescription = limitDescription
        self.retryAfterSeconds = retryAfterSeconds
        self.status = status
    }
}

public enum AdmissionDecision: Sendable {
    case admitted(Admission)
    case rejected(Rejection)
    /// The plan had no limit to check, only its key (`AdmissionPlan.keyCheck`), and the key is
    /// unchanged: nothing counted, nothing to settle.
    case keyConfirmed
    /// The key's row is not the one the plan was made from (`AdmissionPlan.keyCheck`): nothing was
    /// counted; authenticate again and plan anew.
    case keyChanged
}

/// Limits that hold across every worker process: each check-and-count is one short
/// `BEGIN IMMEDIATE` transaction, so concurrent requests are serialised by SQLite's write lock
/// and a limit of N lets exactly N through. No transaction is ever held across a provider call.
extension GatewayStore {
    /// Checks every limit of `plan` and, if all pass, counts the request (and its token
    /// reservation) in the same transaction. A refused request counts nowhere.
    public func admit(_ plan: AdmissionPlan) throws -> AdmissionDecision {
        let second = Int64(plan.now.timeIntervalSince1970)
        let windowStart = second - Int64(plan.windowSeconds)
        let month = SpendAmount.month(of: plan.now)
        let window = Int64(plan.windowSeconds)
        let estimate = max(0, plan.estimatedTokens)

        if let check = plan.keyCheck, plan.isEmpty { return try isCurrent(check) ? .keyConfirmed : .keyChanged }
        return try connection.writeTransaction { () throws -> AdmissionDecision in
            // A key answered from memory: confirmed by the version it was read at, before anything counts.
            if let check = plan.keyCheck, try !isCurrent(check) { return .keyChanged }
            var status = LimitStatus()
            var tokenScopes: [LimitScope] = []
            var rejection: Rejection?

            // The first limit that refuses names the refusal; the headroom is the final one.
            func reject(_ reason: Rejection.Reason, _ scope: LimitScope, _ text: String, retry: Int) {
                if rejection == nil {
                    rejection = Rejection(reason: reason, scope: scope, limitDescription: text, retryAfterSeconds: max(1, retry),
                                          status: LimitStatus())
                }
            }

            for entry in plan.scopes {
                let key = entry.scope.storageKey
                if entry.isRateLimited {
                    let buckets = try connection.query(
                        "SELECT second, requests, tokens FROM rate_buckets WHERE scope = ? AND second > ? ORDER BY second",
                        [.text(key), .integer(windowStart)]) { (second: $0.int64(0), requests: $0.int64(1), tokens: $0.int64(2)) }
                    let usedRequests = buckets.reduce(0) { Saturating.add($0, $1.requests) }
                    let usedTokens = buckets.reduce(0) { Saturating.add($0, $1.tokens) }
                    let newest = buckets.last?.second ?? second
                    let reset = Double(max(newest, second) + window - second)

                    if let rpm = entry.limits.requestsPerMinute {
                        let remaining = Int64(rpm) - min(usedRequests, Int64(Int32.max)) - 1
                        Self.tighten(&status.requests, LimitHeadroom(limit: rpm, remaining: Int(max(0, remaining)), resetSeconds: reset))
                        if remaining < 0 {
                            reject(.requestsPerMinute, entry.scope, "\(rpm) requests per minute",
                                   retry: Self.secondsUntilExpired(buckets.map { ($0.second, $0.requests) }, amount: Saturating.add(usedRequests, 1 - Int64(rpm)), now: second, window: window))
                        }
                    }
                    if let tpm = entry.limits.tokensPerMinute {
                        let remaining = Saturating.add(Int64(tpm), -Saturating.add(usedTokens, Int64(estimate)))
                        Self.tighten(&status.tokens, LimitHeadroom(limit: tpm, remaining: Int(min(max(0, remaining), Int64(Int.max))), resetSeconds: reset))
                        // docs/api.md: at or over the limit, refuse (the reservation may overshoot once).
                        if usedTokens >= Int64(tpm) && !plan.servedFromCache {
                            reject(.tokensPerMinute, entry.scope, "\(tpm) tokens per minute",
                                   retry: Self.secondsUntilExpired(buckets.map { ($0.second, $0.tokens) }, amount: Saturating.add(usedTokens, 1 - Int64(tpm)), now: second, window: window))
                        }
                        tokenScopes.append(entry.scope)
                    }
                }
                if entry.limits.monthlyBudgetUSD != nil || entry.monthlyRequestCap != nil {
                    let totals = try connection.queryFirst(
                        "SELECT requests, cost_nanos FROM monthly_totals WHERE scope = ? AND month = ?",
                        [.text(key), .text(month)]) { (requests: $0.int64(0), cost: $0.int64(1)) } ?? (requests: 0, cost: 0)
                    if let budget = entry.limits.monthlyBudgetUSD, totals.cost >= SpendAmount.nanos(budget), !plan.servedFromCache {
                        reject(.monthlyBudget, entry.scope, String(format: "monthly budget of $%.2f", budget),
                               retry: SpendAmount.secondsToNextMonth(from: plan.now))
                    }
                    if let cap = entry.monthlyRequestCap, totals.requests >= Int64(cap) {
                        reject(.freePlan, entry.scope, "\(cap) requests per month on the free plan",
                               retry: SpendAmount.secondsToNextMonth(from: plan.now))
                    }
                }
            }

            if let rejection {
                var refused = rejection
                refused.status = status
                return .rejected(refused)
            }

            for entry in plan.scopes {
                let key = entry.scope.storageKey
                if entry.isRateLimited {
                    let tokens = entry.limits.tokensPerMinute != nil ? Int64(estimate) : 0
                    try connection.execute(
                        """
                        INSERT INTO rate_buckets (scope, second, requests, tokens) VALUES (?, ?, 1, ?)
                        ON CONFLICT (scope, second) DO UPDATE SET requests = requests + 1, tokens = tokens + excluded.tokens
                        """, [.text(key), .integer(second), .integer(tokens)])
                }
                if entry.monthlyRequestCap != nil {
                    try connection.execute(
                        """
                        INSERT INTO monthly_totals (scope, month, requests) VALUES (?, ?, 1)
                        ON CONFLICT (scope, month) DO UPDATE SET requests = requests + 1
                        """, [.text(key), .text(month)])
                }
            }
            // Buckets out of every window can never count again; every 256th admission trims
            // them (an indexed range delete, so the table stays the size of one window).
            if admissionCount.add(1, ordering: .relaxed).newValue % 256 == 0 {
                try connection.execute("DELETE FROM rate_buckets WHERE second <= ?", [.integer(windowStart)])
            }
            let settlesSpend = plan.scopes.contains { $0.limits.monthlyBudgetUSD != nil }
            return .admitted(Admission(second: second, reservedTokens: estimate, tokenScopes: tokenScopes, status: status,
                                       settlesSpend: settlesSpend, month: month))
        }
    }

    /// After the answer: replaces the token reservation with the real usage and, when a budget
    /// applies, adds the spend to every scope's month-to-date total. One short transaction.
    public func settle(_ admission: Admission, actualTokens: Int?, costUSD: Double?, scopes: [LimitScope]) throws {
        let delta = Saturating.add(Int64(actualTokens ?? admission.reservedTokens), -Int64(admission.reservedTokens))
        let cost = costUSD.map(SpendAmount.nanos) ?? 0
        let spend = admission.settlesSpend && cost > 0
        guard delta != 0 && !admission.tokenScopes.isEmpty || spend else { return }
        try connection.writeTransaction {
            if delta != 0 {
                for scope in admission.tokenScopes {
                    try connection.execute("UPDATE rate_buckets SET tokens = MAX(0, tokens + ?) WHERE scope = ? AND second = ?",
                                           [.integer(delta), .text(scope.storageKey), .integer(admission.second)])
                }
            }
            if spend { try addSpend(nanos: cost, scopes: scopes, month: admission.month) }
        }
    }

    /// Adds spend to the month-to-date totals (call inside a write transaction).
    func addSpend(nanos: Int64, scopes: [LimitScope], month: String) throws {
        for scope in scopes {
            try connection.execute(
                """
                INSERT INTO monthly_totals (scope, month, cost_nanos) VALUES (?, ?, ?)
                ON CONFLICT (scope, month) DO UPDATE SET cost_nanos = cost_nanos + excluded.cost_nanos
                """, [.text(scope.storageKey), .text(month), .integer(nanos)])
        }
    }

    /// Month-to-date requests and spend of one scope.
    public func monthToDate(_ scope: LimitScope, month: String) throws -> (requests: Int, costUSD: Double) {
        try connection.queryFirst("SELECT requests, cost_nanos FROM monthly_totals WHERE scope = ? AND month = ?",
                                  [.text(scope.storageKey), .text(month)]) { (requests: $0.int(0), costUSD: SpendAmount.usd($0.int64(1))) }
            ?? (requests: 0, costUSD: 0)
    }

    /// Sets a scope's month-to-date request count (operators migrating from another gateway; tests).
    public func setMonthlyRequests(_ scope: LimitScope, month: String, to count: Int) throws {
        try connection.writeTransaction {
            try connection.execute(
                """
                INSERT INTO monthly_totals (scope, month, requests) VALUES (?, ?, ?)
                ON CONFLICT (scope, month) DO UPDATE SET requests = excluded.requests
                """, [.text(scope.storageKey), .text(month), .integer(Int64(count))])
        }
    }

    private static func tighten(_ current: inout LimitHeadroom?, _ candidate: LimitHeadroom) {
        if let existing = current, existing.remaining <= candidate.remaining { return }
        current = candidate
    }

    /// Seconds until `amount` units have left the window, walking buckets oldest first.
    private static func secondsUntilExpired(_ buckets: [(Int64, Int64)], amount: Int64, now: Int64, window: Int64) -> Int {
        var freed: Int64 = 0
        for (second, units) in buckets {
            freed = Saturating.add(freed, units)
            if freed >= amount { return Int(max(1, second + window - now)) }
        }
        return Int(window)
    }
}
