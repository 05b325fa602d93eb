import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Limits")
struct LimitsTests {
    static let key = LimitScope(.key, "gk_test")
    static let project = LimitScope(.project, "7")
    let now = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z

    func plan(_ limits: Limits, scope: LimitScope = LimitsTests.key, cap: Int? = nil, tokens: Int = 0, at offset: TimeInterval = 0) -> AdmissionPlan {
        AdmissionPlan(scopes: [.init(scope: scope, limits: limits, monthlyRequestCap: cap)], estimatedTokens: tokens,
                      now: now.addingTimeInterval(offset))
    }

    func admitted(_ decision: AdmissionDecision) -> Admission? {
        if case .admitted(let admission) = decision { return admission }
        return nil
    }

    func rejection(_ decision: AdmissionDecision) -> Rejection? {
        if case .rejected(let rejection) = decision { return rejection }
        return nil
    }

    /// A reservation or a usage at the edge of Int must be clamped, never trap the worker.
    @Test func hugeReservationsAndUsagesDoNotTrap() throws {
        let database = try TestDatabase()
        let limits = Limits(requestsPerMinute: 1_000, tokensPerMinute: 100)
        let first = try #require(admitted(try database.store.admit(plan(limits, tokens: Int.max))))
        #expect(first.status.tokens?.remaining == 0)
        let second = try database.store.admit(plan(limits, tokens: Int.max, at: 1))
        #expect(rejection(second)?.reason == .tokensPerMinute)
        try database.store.settle(first, actualTokens: Int.max, costUSD: 1e300, scopes: [Self.key])
        #expect(rejection(try database.store.admit(plan(limits, tokens: 1, at: 2))) != nil)
        // Settled at 0 the reservation is gone again (and a NaN cost is no cost).
        try database.store.settle(first, actualTokens: 0, costUSD: .nan, scopes: [Self.key])
        #expect(admitted(try database.store.admit(plan(limits, tokens: 1, at: 2))) != nil)
        let budget = Limits(monthlyBudgetUSD: 1e300)
        #expect(admitted(try database.store.admit(plan(budget, tokens: Int.max, at: 3))) != nil)
    }

    @Test func rpmAdmitsExactlyTheLimitAndReportsHeadroom() throws {
        let database = try TestDatabase()
        var remaining: [Int] = []
        for _ in 0..<3 {
            let admission = try #require(admitted(try database.store.admit(plan(Limits(requestsPerMinute: 3)))))
            remaining.append(admission.status.requests!.remaining)
            #expect(admission.status.requests!.limit == 3)
        }
        #expect(remaining == [2, 1, 0])
        let refused = try #require(rejection(try database.store.admit(plan(Limits(requestsPerMinute: 3), at: 10))))
        #expect(refused.reason == .requestsPerMinute)
        // The three requests of second 0 leave the window at second 60: 50 s from second 10.
        #expect(refused.retryAfterSeconds == 50)
        // Refusals are not counted, and the window slides.
        #expect(rejection(try database.store.admit(plan(Limits(requestsPerMinute: 3), at: 59.5))) != nil)
        #expect(admitted(try database.store.admit(plan(Limits(requestsPerMinute: 3), at: 60))) != nil)
    }

    @Test func tpmRefusesAtTheLimitAndSettleReplacesTheReservation() throws {
        let database = try TestDatabase()
        let limits = Limits(tokensPerMinute: 100)
        let first = try #require(admitted(try database.store.admit(plan(limits, tokens: 500))))
        // The 500-token estimate holds the window until settled with the real 60.
        #expect(rejection(try database.store.admit(plan(limits, tokens: 1))) != nil)
        try database.store.settle(first, actualTokens: 60, costUSD: nil, scopes: [Self.key])
        let second = try #require(admitted(try database.store.admit(plan(limits, tokens: 30))))
        #expect(second.status.tokens?.remaining == 10)
        try database.store.settle(second, actualTokens: 40, costUSD: nil, scopes: [Self.key])
        let refused = try #require(rejection(try database.store.admit(plan(limits, tokens: 1, at: 5))))
        #expect(refused.reason == .tokensPerMinute)
        #expect(refused.retryAfterSeconds == 55)
    }

    @Test func monthlyBudgetCountsSettledSpendPerScope() throws {
        let database = try TestDatabase()
        let limits = Limits(monthlyBudgetUSD: 1.0)
        let scopes = [Self.key, Self.project]
        for _ in 0..<2 {
            let admission = try #require(admitted(try database.store.admit(plan(limits))))
            #expect(admission.settlesSpend)
            try database.store.settle(admission, actualTokens: 10, costUSD: 0.5, scopes: scopes)
        }
        let refused = try #require(rejection(try database.store.admit(plan(limits))))
        #expect(refused.reason == .monthlyBudget)
        // 2026-01-01T00:00:00Z → February starts in 31 days.
        #expect(refused.retryAfterSeconds == 31 * 86_400)
        #expect(try database.store.monthToDate(Self.project, month: "2026-01").costUSD == 1.0)
        // A new month starts from zero.
        #expect(admitted(try database.store.admit(plan(limits, at: 31 * 86_400))) != nil)
    }

    @Test func freePlanCapsTheMonthsRequests() throws {
        let database = try TestDatabase()
        try database.store.setMonthlyRequests(Self.project, month: "2026-01", to: 998)
        #expect(admitted(try database.store.admit(plan(.none, scope: Self.project, cap: 1000))) != nil)
        #expect(admitted(try database.store.admit(plan(.none, scope: Self.project, cap: 1000))) != nil)
        let refused = try #require(rejection(try database.store.admit(plan(.none, scope: Self.project, cap: 1000))))
        #expect(refused.reason == .freePlan)
        #expect(try database.store.monthToDate(Self.project, month: "2026-01").requests == 1000)
    }

    @Test func aRefusalAtOneScopeCountsAtNoScope() throws {
        let database = try TestDatabase()
        let both = AdmissionPlan(scopes: [
            .init(scope: Self.key, limits: Limits(requestsPerMinute: 10)),
            .init(scope: Self.project, limits: Limits(requestsPerMinute: 1)),
        ], estimatedTokens: 0, now: now)
        #expect(admitted(try database.store.admit(both)) != nil)
        let refused = try #require(rejection(try database.store.admit(both)))
        #expect(refused.scope == Self.project)
        #expect(refused.status.requests?.remaining == 0)
        let keyCount = try database.store.connection.queryFirst("SELECT SUM(requests) FROM rate_buckets WHERE scope = 'k:gk_test'") { $0.int(0) }
        #expect(keyCount == 1)
    }

    @Test func aBusyDatabaseFailsTheAdmissionAndCountsNothing() throws {
        let database = try TestDatabase()
        let blocker = try database.openAnother()
        let impatient = try database.openAnother(busyTimeoutMilliseconds: 50)
        try blocker.connection.execute("BEGIN IMMEDIATE")
        let result = Result { try impatient.admit(plan(Limits(requestsPerMinute: 5))) }
        try blocker.connection.execute("ROLLBACK")
        guard case .failure(let error as StoreError) = result else {
            Issue.record("expected a busy error, got \(result)")
            return
        }
        #expect(error.kind == .busy)
        let count = try database.store.connection.queryFirst("SELECT COUNT(*) FROM rate_buckets") { $0.int(0) }
        #expect(count == 0)
    }

    @Test func auditRowsCarryUnsettledSpendIntoTheMonthlyTotals() throws {
        let database = try TestDatabase()
        var record = AuditRecord(requestID: "req_spend", time: now, method: "POST", route: "/v1/chat/completions",
                                 orgID: 3, projectID: 7, keyID: "gk_test", status: 200, costUSD: 0.25, latencyMs: 1)
        try database.store.insertAudit([record])
        record.requestID = "req_settled"
        record.spendSettled = true
        try database.store.insertAudit([record])
        #expect(try database.store.monthToDate(Self.project, month: "2026-01").costUSD == 0.25)
        #expect(try database.store.monthToDate(LimitScope(.org, "3"), month: "2026-01").costUSD == 0.25)
    }
}
