import GatewayCore
import GatewayHTTP
import PoolScoreboard

/// What a finished /v1 request adds to the pool's metrics, read from the audit row it left, so
/// `/metrics` and the audit log can never disagree.
enum PoolMetrics {
    static func record(_ row: AuditRecord, outcome: RequestOutcome, trace: RequestTrace?, slot: WorkerSlot?) {
        if let trace {
            trace.cacheResult = outcome.cacheStatus
            if let provider = row.provider { trace.setProvider(provider) }
            trace.status = row.status  // 499 when the client left mid-answer
            trace.attempts = row.attempts.count
            trace.mark(.audited)
        }
        guard let slot else { return }
        let provider = PoolProvider(name: row.provider)
        if let kind = outcome.limitRefusal { slot.recordLimitRefusal(kind) }
        // Every attempt but the last was followed by another target.
        for attempt in row.attempts.dropLast() { slot.recordFallback(from: PoolProvider(name: attempt.provider)) }
        guard provider != .none else { return }
        if let upstream = row.upstreamLatencyMs, !row.cacheHit { slot.recordUpstreamLatency(provider, seconds: upstream / 1000) }
        if let firstToken = row.timeToFirstTokenMs { slot.recordTimeToFirstToken(provider, seconds: firstToken / 1000) }
        let prompt = row.promptTokens ?? 0
        let completion = row.completionTokens ?? 0
        if prompt > 0 || completion > 0 || (row.costUSD ?? 0) > 0 {
            let cost = row.costUSD.map(SpendAmount.nanos)
            slot.recordUsage(provider, model: row.modelServed ?? row.modelRequested ?? "unknown",
                             promptTokens: prompt, completionTokens: completion, costNanoUSD: cost)
        }
    }
}
