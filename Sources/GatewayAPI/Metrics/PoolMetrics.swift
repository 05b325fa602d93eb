import GatewayCore
import PoolScoreboard

/// What a finished /v1 request adds to the pool's metrics, read from the one outcome the audit
/// row holds, so `/metrics` and the audit log can never disagree.
enum PoolMetrics {
    static func record(_ context: RequestContext, slot: WorkerSlot?) {
        let audit = context.audit
        if let trace = context.trace {
            trace.cacheResult = context.cacheStatus
            if let provider = audit.provider { trace.setProvider(provider) }
            trace.status = audit.status  // 499 when the client left mid-answer
            trace.attempts = audit.attempts.count
            trace.mark(.audited)
        }
        guard let slot else { return }
        let provider = PoolProvider(name: audit.provider)
        if let kind = context.limitRefusal { slot.recordLimitRefusal(kind) }
        // Every attempt but the last was followed by another target.
        for attempt in audit.attempts.dropLast() { slot.recordFallback(from: PoolProvider(name: attempt.provider)) }
        guard provider != .none else { return }
        if let upstream = audit.upstreamLatencyMs, !audit.cacheHit { slot.recordUpstreamLatency(provider, seconds: upstream / 1000) }
        if let firstToken = audit.timeToFirstTokenMs { slot.recordTimeToFirstToken(provider, seconds: firstToken / 1000) }
        let prompt = audit.promptTokens ?? 0
        let completion = audit.completionTokens ?? 0
        if prompt > 0 || completion > 0 || (audit.costUSD ?? 0) > 0 {
            let cost = audit.costUSD.map(SpendAmount.nanos)
            slot.recordUsage(provider, model: audit.modelServed ?? audit.modelRequested ?? "unknown",
                             promptTokens: prompt, completionTokens: completion, costNanoUSD: cost)
        }
    }
}
