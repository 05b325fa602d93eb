import GatewayCore
import GatewayHTTP
import GatewayStore

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
