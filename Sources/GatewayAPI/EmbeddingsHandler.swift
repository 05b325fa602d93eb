import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream

/// POST /v1/embeddings: openai, google, mistral and cohere, answered in OpenAI's list format.
/// Cached like chat answers; never falls back: another model's vectors live in another space.
struct EmbeddingsHandler: RouteHandler {
    let application: GatewayApplication

    func handle(_ request: HTTPRequest, key: AuthenticatedKey, context: RequestContext, writer: any ResponseWriter) async throws {
        let embeddings = try EmbeddingsRequest.parse(request.body)
        context.audit.modelRequested = embeddings.model
        context.audit.user = embeddings.user
        let requested = try RequestedTargets.read(request, model: embeddings.model, allowFallback: false, context: context)
        let meter = RequestMeter(application: application, key: key, context: context)
        let estimatedTokens = RequestLimiter.estimateTokens(bodyBytes: request.body.count, maxTokens: nil)
        guard case .miss(let cache) = try await application.cacheStep(
            request, body: embeddings.body, provider: requested.primary.provider, key: key, estimatedTokens: estimatedTokens, meter: meter,
            context: context, writer: writer)
        else { return }
        defer { cache?.finish() }
        let target = try ProviderTarget.configured(requested.primary, key: key, store: application.store, param: "X-AI-Provider")
        try application.priceBook.requirePrice(for: target.model, key: key)
        let upstreamRequest = try target.adapter.makeEmbeddingsRequest(embeddings, settings: target.settings)

        try meter.admit(estimatedTokens: estimatedTokens)
        var providerAnswered = false
        defer { meter.finish(providerAnswered: providerAnswered) }

        let call = ProviderCall(application: application, target: target, context: context)
        let response = try await call.send(upstreamRequest)
        providerAnswered = true
        let body = try await call.body(of: response)
        let result = try call.decode(status: response.status) { () throws(GatewayError) in
            try target.adapter.decodeEmbeddingsResponse(body, for: embeddings)
        }
        try await deliverAnswer(result.body, usage: result.usage, modelServed: result.modelServed, target: target,
                                meter: meter, cache: cache, context: context, writer: writer)
    }
}
