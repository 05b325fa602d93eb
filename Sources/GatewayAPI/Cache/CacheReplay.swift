import GatewayCore
import GatewayHTTP
import GatewayStore

/// The outcome of the pipeline's cache step.
enum CacheStep {
    /// The request was answered from the cache; nothing more to do.
    case answered
    /// Go on to the provider. The session (nil when the request did not ask for caching) stores
    /// the answer, and must be finished when the request is done.
    case miss(CacheSession?)
}

extension GatewayApplication {
    /// The cache step shared by the routes: when the request asked for caching (`X-Cache-TTL`),
    /// looks up the entry keyed on the project, the provider asked for, the route and the
    /// canonical body — waiting for an identical request in flight — and answers from it.
    /// A request that goes on to wait for an identical one, or to compute the answer for others,
    /// is admitted here (with `estimatedTokens`), before it waits.
    func cacheStep(_ request: HTTPRequest, body: JSONObject, provider: Provider, key: AuthenticatedKey, estimatedTokens: Int,
                   meter: RequestMeter, context: RequestContext, writer: any ResponseWriter) async throws -> CacheStep {
        guard let policy = try CachePolicy.from(request) else { return .miss(nil) }
        let session = CacheSession(policy: policy, key: CacheKey(projectID: key.project.id, provider: provider, route: request.path, body: body),
                                   cache: cache, projectID: key.project.id, context: context)
        guard let answer = try await session.findAnswer(keyID: key.key.id, admit: { try meter.admit(estimatedTokens: estimatedTokens) })
        else { return .miss(session) }
        // A hit never holds the key's lease, so there is nothing to finish.
        try await CacheReplay.write(answer, meter: meter, context: context, writer: writer)
        return .answered
    }
}

/// Answers a request from a stored answer: no provider call, no cost, no tokens against the
/// token limits (the request itself still counts toward RPM and the free plan's requests).
enum CacheReplay {
    static func write(_ answer: CachedAnswer, meter: RequestMeter, context: RequestContext, writer: any ResponseWriter) async throws {
        try meter.admitCacheHit()
        context.audit.cacheHit = true
        context.audit.provider = answer.provider
        meter.recordCacheHit(modelServed: answer.modelServed)
        guard answer.stream else {
            try await writeAnswer(answer.body, provider: answer.provider, cost: 0, context: context, writer: writer)
            return
        }
        try await writeStreamHead(provider: answer.provider, cost: 0, context: context, writer: writer)
        context.audit.timeToFirstTokenMs = context.elapsedMs
        try await writer.writeBody(answer.body, flush: true)
    }
}
