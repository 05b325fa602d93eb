import Dispatch
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// POST /v1/embeddings: openai, google, mistral and cohere, answered in OpenAI's list format.
struct EmbeddingsHandler: RouteHandler {
    let application: GatewayApplication

    func handle(_ request: HTTPRequest, key: AuthenticatedKey, context: RequestContext, writer: any ResponseWriter) async throws {
        let embeddings = try EmbeddingsRequest.parse(request.body)
        context.audit.modelRequested = embeddings.model
        context.audit.user = embeddings.user
        let provider = try ProviderSelection.provider(header: request.headers["x-ai-provider"], model: embeddings.model)
        context.audit.provider = provider.rawValue
        let target = try ProviderTarget.resolve(provider, key: key, application: application)
        let upstreamRequest = try target.adapter.makeEmbeddingsRequest(embeddings, settings: target.settings)

        let meter = RequestMeter(application: application, key: key, context: context)
        try meter.admit(estimatedTokens: RequestLimiter.estimateTokens(bodyBytes: request.body.count, maxTokens: nil))
        var providerAnswered = false
        defer { meter.finish(providerAnswered: providerAnswered) }

        let sentAt = DispatchTime.now().uptimeNanoseconds
        func attempt(status: Int, error: GatewayError?) {
            context.audit.attempts.append(AuditAttempt(
                provider: target.provider.rawValue, model: embeddings.model, status: status,
                latencyMs: Double(DispatchTime.now().uptimeNanoseconds - sentAt) / 1e6, errorCode: error?.auditCode))
        }
        let response: UpstreamResponse
        do {
            response = try await application.upstream.send(upstreamRequest)
        } catch {
            let gatewayError = error.gatewayError(provider: target.provider.rawValue)
            attempt(status: gatewayError.status, error: gatewayError)
            throw gatewayError
        }
        context.audit.upstreamLatencyMs = Double(DispatchTime.now().uptimeNanoseconds - sentAt) / 1e6
        let limit = application.configuration.maxUpstreamBodyBytes
        let body: [UInt8]
        do {
            body = try await application.upstream.readBody(response) { try await $0.collect(limit: limit) }
        } catch let failure as UpstreamFailure {
            let error = failure.gatewayError(provider: target.provider.rawValue)
            attempt(status: error.status, error: error)
            throw error
        }
        guard (200..<300).contains(response.status) else {
            let error = target.adapter.decodeError(status: response.status, headers: response.headers, body: body, settings: target.settings)
            attempt(status: response.status, error: error)
            throw error
        }
        providerAnswered = true
        let result: EmbeddingsResult
        do {
            result = try target.adapter.decodeEmbeddingsResponse(body, for: embeddings)
        } catch {
            attempt(status: response.status, error: error)
            throw error
        }
        attempt(status: response.status, error: nil)
        let cost = meter.record(result.usage, modelServed: result.modelServed)
        var headers = baseHeaders(context)
        headers.add(name: "X-AI-Provider", value: target.provider.rawValue)
        if let cost { headers.add(name: "X-Gateway-Cost-USD", value: CostFormat.usd(cost)) }
        context.audit.status = 200
        try await writer.writeHead(status: 200, headers: headers)
        try await writer.writeBody(result.body, flush: false)
    }
}
