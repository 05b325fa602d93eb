import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// One target a request may be sent to: a provider and the model to ask it for, with the
/// project's settings for that provider and its adapter.
struct ProviderTarget: Sendable {
    let provider: Provider
    let model: String
    let settings: ProviderSettings
    let adapter: any ProviderAdapter

    var name: FallbackTarget { FallbackTarget(provider: provider, model: model) }

    /// The target, if the project has the provider configured; otherwise docs/api.md's 400.
    static func configured(_ target: FallbackTarget, key: AuthenticatedKey, directory: ProviderDirectory, param: String) throws -> ProviderTarget {
        guard let settings = try directory.providerSettings(for: key, provider: target.provider) else {
            throw GatewayError.invalidRequest("Provider '\(target.provider.rawValue)' is not configured for project \(key.project.slug).",
                                              param: param, code: "provider_not_configured")
        }
        guard let adapter = ProviderRegistry.adapter(for: target.provider) else {
            throw GatewayError.invalidRequest("Provider '\(target.provider.rawValue)' is not available in this gateway build.",
                                              param: param, code: "unsupported_provider")
        }
        return ProviderTarget(provider: target.provider, model: target.model, settings: settings, adapter: adapter)
    }
}

/// One call to a provider on behalf of a request: sends, maps transport failures and the
/// provider's error answers to `GatewayError`s, and lists the attempt in the outcome (provider,
/// model, status, latency) exactly once.
struct ProviderCall: Sendable {
    let upstream: UpstreamClient
    let target: ProviderTarget
    /// Largest non-streamed answer read into memory.
    let maxBodyBytes: Int
    let trace: RequestTrace?
    let startedAt = RequestTrace.now()

    /// The response head, or a thrown `GatewayError`: a transport failure (502/504) or the
    /// provider's own error answer, decoded by the adapter.
    func send(_ request: UpstreamRequest, outcome: inout RequestOutcome) async throws -> UpstreamResponse {
        trace?.setProvider(target.provider.rawValue)
        trace?.markOnce(.upstreamSent)
        let response: UpstreamResponse
        do {
            response = try await upstream.send(request)
        } catch {
            throw recordFailure(error.gatewayError(provider: target.provider.rawValue), outcome: &outcome)
        }
        outcome.upstreamLatencyMs = elapsedMs
        trace?.mark(.upstreamHead)
        guard (200..<300).contains(response.status) else {
            let body = (try? await upstream.readBody(response) { try await $0.collect(limit: 1 << 20) }) ?? []
            let error = target.adapter.decodeError(status: response.status, headers: response.headers, body: body,
                                                   settings: target.settings)
            record(status: response.status, error: error, outcome: &outcome)
            throw error
        }
        return response
    }

    /// A successful response's whole body (non-streamed answers).
    func body(of response: UpstreamResponse, outcome: inout RequestOutcome) async throws -> [UInt8] {
        let limit = maxBodyBytes
        do {
            return try await upstream.readBody(response) { try await $0.collect(limit: limit) }
        } catch let failure as UpstreamFailure {
            throw recordFailure(failure.gatewayError(provider: target.provider.rawValue), outcome: &outcome)
        }
    }

    /// Decodes an answer with `decode`; a malformed one is recorded as a failed attempt.
    func decode<T>(status: Int, outcome: inout RequestOutcome, _ decode: () throws(GatewayError) -> T) throws -> T {
        do {
            let value = try decode()
            record(status: status, error: nil, outcome: &outcome)
            return value
        } catch {
            record(status: status, error: error, outcome: &outcome)
            throw error
        }
    }

    func record(status: Int, error: GatewayError?, outcome: inout RequestOutcome) {
        trace?.mark(.upstreamDone)
        trace?.recordUpstreamCall(provider: target.provider.rawValue, model: target.model, status: status,
                                  failed: error != nil, start: startedAt)
        outcome.attempts.append(AuditAttempt(
            provider: target.provider.rawValue, model: target.model, status: status, latencyMs: elapsedMs, errorCode: error?.auditCode))
    }

    private func recordFailure(_ error: GatewayError, outcome: inout RequestOutcome) -> GatewayError {
        record(status: error.status, error: error, outcome: &outcome)
        return error
    }

    private var elapsedMs: Double { Double(RequestTrace.now() &- startedAt) / 1e6 }
}
