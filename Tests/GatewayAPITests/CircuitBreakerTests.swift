import Foundation
import GatewayCore
import GatewayStore
import Logging
import Testing
@testable import GatewayAPI

/// The breaker's read is skipped only when the key's lookup just said the project has no breaker
/// row at all; otherwise the store decides.
@Suite("Circuit breaker", .serialized)
final class CircuitBreakerTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.openai, "sk-sim-openai")], breakerFailures: 2, breakerCooldownSeconds: 30)
    }

    func projectHasBreakerState() throws -> Bool {
        guard case .valid(let key) = try store.authenticate(secret: secret) else { throw StoreError(.other, "the key did not authenticate") }
        return key.projectHasBreakerState
    }

    @Test func theKeyLookupSaysWhetherTheProjectHasBreakerState() throws {
        let breaker = CircuitBreaker(store: SQLiteRequestStore(store: store, auditWriter: auditWriter), logger: Logger(label: "test"),
                                     threshold: 2, cooldownSeconds: 30)
        #expect(try projectHasBreakerState() == false)
        #expect(breaker.gate(projectID: projectID, provider: .openai) == .closed(known: false))

        for _ in 0..<2 { breaker.failed(projectID: projectID, provider: .openai, retryAfter: nil) }
        #expect(try projectHasBreakerState() == true)
        guard case .open = breaker.gate(projectID: projectID, provider: .openai) else {
            Issue.record("two failures at threshold 2 must open the breaker")
            return
        }
        // The hint is trusted as given: with it the store is not read (which is why the pipeline
        // passes it only for the first target, right after the key's lookup).
        #expect(breaker.gate(projectID: projectID, provider: .openai, knownHealthy: true) == .closed(known: false))

        try store.recordProviderSuccess(projectID: projectID, provider: .openai)
        #expect(try projectHasBreakerState() == false)
    }
}
