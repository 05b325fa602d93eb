import Foundation
import GatewayCore
import GatewayStore
import Logging

/// Skips a provider that keeps failing, for every worker at once: the state lives in the store
/// (per project and provider, where the credentials and base URL live). After `threshold`
/// consecutive fallback-worthy failures the provider is skipped for `cooldownSeconds`; then one
/// request probes it: a success closes the breaker, a failure opens it again. A provider's own
/// `Retry-After` (on 429 or 5xx) keeps it skipped at least that long. Store errors fail open:
/// the provider is tried.
struct CircuitBreaker: Sendable {
    let store: any RequestStore
    let logger: Logger
    /// 0 turns the breaker (and Retry-After skipping) off.
    let threshold: Int
    let cooldownSeconds: Double
    /// Told when this worker's failure opened a provider's breaker (the pool's metrics).
    var opened: (@Sendable (String) -> Void)? = nil
    /// A provider's Retry-After longer than this is capped (a misbehaving header must not take
    /// a provider out for a day).
    static let maxRetryAfterSeconds = 600

    enum Gate: Equatable {
        /// Call it. `known`: a failure was recorded before, so a success has something to clear.
        case closed(known: Bool)
        /// Call it: this request is the one probe after a cool-down.
        case probe
        /// Skip it for this many more seconds.
        case open(retryAfter: Int)
    }

    var isEnabled: Bool { threshold > 0 }

    /// `knownHealthy`: the caller read, moments ago, that the project had no breaker row at all
    /// (`AuthenticatedKey.projectHasBreakerState`), so there is nothing to read.
    func gate(projectID: Int64, provider: Provider, knownHealthy: Bool = false, now: Date = Date(), requestID: String? = nil) -> Gate {
        guard isEnabled, !knownHealthy else { return .closed(known: false) }
        do {
            guard let state = try store.breakerState(projectID: projectID, provider: provider) else { return .closed(known: false) }
            let nowMs = Int64(now.timeIntervalSince1970 * 1000)
            if state.openUntil > nowMs {
                return .open(retryAfter: max(1, Int((Double(state.openUntil - nowMs) / 1000).rounded(.up))))
            }
            guard state.failures >= threshold else { return .closed(known: true) }
            // Cool-down over: the first request to move the deadline probes; the rest keep skipping.
            let until = now.addingTimeInterval(cooldownSeconds)
            if try store.claimBreakerProbe(projectID: projectID, provider: provider, seenOpenUntil: state.openUntil, until: until) {
                return .probe
            }
            return .open(retryAfter: max(1, Int(cooldownSeconds.rounded(.up))))
        } catch {
            logger.warning("circuit breaker unreadable; trying the provider", metadata: [
                "provider": "\(provider.rawValue)", "error": "\(error)", "request_id": "\(requestID ?? "-")"])
            return .closed(known: false)
        }
    }

    /// A failed attempt. `gate` is what `gate(…)` said before it: a failed probe opens the
    /// breaker again (counted and logged like the first opening).
    func failed(projectID: Int64, provider: Provider, retryAfter: Int?, gate: Gate? = nil, requestID: String? = nil) {
        guard isEnabled else { return }
        do {
            let state = try store.recordProviderFailure(
                projectID: projectID, provider: provider, threshold: threshold, cooldownSeconds: cooldownSeconds,
                retryAfterSeconds: retryAfter.map { min($0, Self.maxRetryAfterSeconds) })
            let probeFailed = gate == .probe
            if state.failures == threshold || probeFailed {
                opened?(provider.rawValue)
                logger.warning(probeFailed ? "circuit breaker opened again: the probe failed" : "circuit breaker opened", metadata: [
                    "provider": "\(provider.rawValue)", "project_id": "\(projectID)", "failures": "\(state.failures)",
                    "request_id": "\(requestID ?? "-")"])
            }
        } catch {
            logger.warning("could not record a provider failure", metadata: [
                "provider": "\(provider.rawValue)", "error": "\(error)", "request_id": "\(requestID ?? "-")"])
        }
    }

    /// Clears the failures, when there are any (a healthy provider costs no write).
    func succeeded(projectID: Int64, provider: Provider, gate: Gate, requestID: String? = nil) {
        guard isEnabled, gate != .closed(known: false) else { return }
        do {
            try store.recordProviderSuccess(projectID: projectID, provider: provider)
            if gate == .probe {
                logger.info("circuit breaker closed", metadata: [
                    "provider": "\(provider.rawValue)", "project_id": "\(projectID)", "request_id": "\(requestID ?? "-")"])
            }
        } catch {
            logger.warning("could not clear a provider's failures", metadata: [
                "provider": "\(provider.rawValue)", "error": "\(error)", "request_id": "\(requestID ?? "-")"])
        }
    }
}
