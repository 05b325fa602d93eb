import GatewayCore
import GatewayStore

/// A target the request cannot be sent to at all (its adapter refused to translate it, e.g. a
/// parameter that provider does not support). The client's own target turns this into the 400;
/// a fallback target is passed over.
struct TargetUnusable: Error {
    let error: GatewayError
}

extension GatewayError {
    /// docs/api.md: a provider 5xx (Anthropic's 529 too), 429, connection failure or timeout goes to the
    /// next target; any other 4xx is the caller's and comes back as is.
    var isWorthFallingBack: Bool { failureClass == .transient || failureClass == .rateLimit }
}

/// Tries a request's targets in order until one answers: skips providers whose circuit breaker
/// is open, records every attempt in the audit row, and feeds each outcome to the breaker.
struct FallbackRunner {
    let chain: TargetChain
    let breaker: CircuitBreaker
    let projectID: Int64
    let requestID: String
    /// The project had no circuit-breaker row when the request's key was read: the first target's
    /// breaker check needs no read (a later target's comes after an attempt, so it reads).
    var projectHadNoBreakerState = false

    /// Runs `attempt` on each target until one returns. `attempt` throws `GatewayError` for a
    /// failed call (recorded in the outcome by its `ProviderCall`), `TargetUnusable` before any
    /// call; anything else (the client left, the store failed) ends the request at once. Skipped
    /// and unusable targets are listed in the outcome's attempts here.
    func run<T>(outcome: inout RequestOutcome, _ attempt: (ProviderTarget, inout RequestOutcome) async throws -> T) async throws -> T {
        var failures: [(target: ProviderTarget, error: GatewayError)] = []
        var coolingDown: [(target: ProviderTarget, retryAfter: Int)] = []
        var remaining = [chain.primary]
        var fallbacksRead = false
        var breakerKnownHealthy = projectHadNoBreakerState
        while true {
            if remaining.isEmpty && !fallbacksRead {
                fallbacksRead = true
                remaining = try chain.fallbacks()
            }
            guard !remaining.isEmpty else { break }
            let target = remaining.removeFirst()
            let gate = breaker.gate(projectID: projectID, provider: target.provider,
                                    knownHealthy: breakerKnownHealthy, requestID: requestID)
            breakerKnownHealthy = false
            if case .open(let retryAfter) = gate {
                outcome.attempts.append(AuditAttempt(provider: target.provider.rawValue, model: target.model, status: 0,
                                                           latencyMs: 0, errorCode: "circuit_open"))
                coolingDown.append((target, retryAfter))
                continue
            }
            outcome.provider = target.provider.rawValue
            do {
                let value = try await attempt(target, &outcome)
                breaker.succeeded(projectID: projectID, provider: target.provider, gate: gate, requestID: requestID)
                return value
            } catch let unusable as TargetUnusable {
                if target.name == chain.primary.name { throw unusable.error }
                outcome.attempts.append(AuditAttempt(provider: target.provider.rawValue, model: target.model,
                                                           status: unusable.error.status, latencyMs: 0, errorCode: unusable.error.auditCode))
                failures.append((target, unusable.error))
            } catch let error as GatewayError where error.isWorthFallingBack {
                breaker.failed(projectID: projectID, provider: target.provider, retryAfter: error.retryAfter, gate: gate,
                               requestID: requestID)
                failures.append((target, error))
            }
        }
        throw Self.finalError(failures: failures, coolingDown: coolingDown)
    }

    /// The answer when no target answered: the last failure's status and type (so a lone target
    /// keeps its own error exactly), its message listing every target's outcome.
    static func finalError(failures: [(target: ProviderTarget, error: GatewayError)],
                           coolingDown: [(target: ProviderTarget, retryAfter: Int)]) -> GatewayError {
        let skipped = coolingDown.map { "\($0.target.name): skipped for \($0.retryAfter) s after repeated failures or its Retry-After" }
        guard var final = failures.last?.error else {
            var error = GatewayError.upstreamError("No target could be tried: " + skipped.joined(separator: "; ") + ".")
            error.retryAfter = coolingDown.map(\.retryAfter).min()
            return error
        }
        if failures.count + coolingDown.count > 1 {
            let outcomes = failures.map { "\($0.target.name): \($0.error.message)" } + skipped
            final.message = "Every target of the fallback chain failed. " + outcomes.joined(separator: " | ")
        }
        return final
    }
}
