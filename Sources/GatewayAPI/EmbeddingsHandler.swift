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
        let target = try ProviderTarget.resolve(request, model: embeddings.model, key: key, application: application, context: context)
        let upstreamRequest = try target.adapter.makeEmbeddingsRequest(embeddings, settings: target.settings)

        let meter = RequestMeter(application: application, key: key, context: context)
        try meter.admit(estimatedTokens: RequestLimiter.estimateTokens(bodyBytes: request.body.count, maxTokens: nil))
        var providerAnswered = false
        defer { meter.finish(providerAnswered: providerAnswered) }

        let call = ProviderCall(application: application, target: target, model: embeddings.model, context: context)
        let response = try await call.send(upstreamRequest)
        providerAnswered = true
        let body = try await call.body(of: response)
        let result = try call.decode(status: response.status) { () throws(GatewayError) in
            try target.adapter.decodeEmbeddingsResponse(body, for: embeddings)
        }
        let cost = meter.record(result.usage, modelServed: result.modelServed)
        try await writeAnswer(result.body, provider: target.provider, cost: cost, context: context, writer: writer)
    }
}
