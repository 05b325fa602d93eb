import GatewayCore
import GatewayProviders
import GatewayStore
import Logging

/// One request's metering: admission against the limits before the provider is called, then
/// usage, cost and the limit reconciliation exactly once afterwards.
final class RequestMeter: @unchecked Sendable {
    private let application: GatewayApplication
    private let key: AuthenticatedKey
    private let context: RequestContext
    private var admission: Admission?
    /// Admitted already (by the cache step, before waiting on an identical request): the later
    /// admission calls do nothing, so a request counts once.
    private var admitted = false
    private var settled = false
    /// The answer's usage is metered once, by the first `record`.
    private var isRecorded = false
    private var recordedCost: Double?

    init(application: GatewayApplication, key: AuthenticatedKey, context: RequestContext) {
        self.application = application
        self.key = key
        self.context = context
    }

    /// Throws 429 when a limit refuses the request, 503 when the store cannot decide.
    func admit(estimatedTokens: Int) throws {
        guard !admitted else { return }
        defer { context.trace?.mark(.admitted) }
        admission = try application.limiter.admit(key: key, estimatedTokens: estimatedTokens, servedFromCache: false, context: context)
        admitted = true
    }

    /// A request answered from the cache counts toward RPM and the free plan's requests, but
    /// reserves no tokens and is not refused by TPM or a spent budget: it costs nothing. (A
    /// request that waited for the answer was admitted before waiting; its token reservation is
    /// released when the hit is recorded.)
    func admitCacheHit() throws {
        guard !admitted else { return }
        defer { context.trace?.mark(.admitted) }
        admission = try application.limiter.admit(key: key, estimatedTokens: 0, servedFromCache: true, context: context)
        admitted = true
    }

    /// The provider's usage for this request: recorded in the audit row with its cost, and
    /// reconciled with the limits, once (later calls return the first one's cost). `priceModel`
    /// is the model the answering target was asked for (after fallback, not the client's).
    /// Returns the cost (nil = unknown).
    @discardableResult
    func record(_ usage: TokenUsage?, modelServed: String?, priceModel: String) -> Double? {
        if isRecorded { return recordedCost }
        context.audit.modelServed = modelServed ?? context.audit.modelServed
        var cost: Double?
        if let usage {
            context.audit.promptTokens = usage.promptTokens
            context.audit.completionTokens = usage.completionTokens
            context.audit.cachedTokens = usage.cachedPromptTokens
            context.audit.reasoningTokens = usage.reasoningTokens
            context.audit.cacheWriteTokens = usage.cacheWriteTokens
            cost = application.priceBook.cost(models: [priceModel, modelServed], usage: usage, settingsVersion: key.settingsVersion)
            context.audit.costUSD = cost
        }
        settle(actualTokens: usage?.totalTokens, cost: cost)
        isRecorded = true
        recordedCost = cost
        return cost
    }

    /// A cache hit: no tokens used, nothing spent.
    func recordCacheHit(modelServed: String?) {
        guard !isRecorded else { return }
        context.audit.modelServed = modelServed
        context.audit.promptTokens = 0
        context.audit.completionTokens = 0
        context.audit.costUSD = 0
        settle(actualTokens: 0, cost: 0)
        isRecorded = true
        recordedCost = 0
    }

    /// No usage will come: the provider never answered (reservation released) or the answer
    /// broke off (reservation kept: tokens were likely spent).
    func finish(providerAnswered: Bool) {
        settle(actualTokens: providerAnswered ? nil : 0, cost: nil)
    }

    private func settle(actualTokens: Int?, cost: Double?) {
        guard !settled else { return }
        settled = true
        guard let admission else { return }
        context.audit.spendSettled = admission.settlesSpend
        do {
            try application.limiter.settle(admission, key: key, actualTokens: actualTokens, costUSD: cost)
        } catch {
            // The answer is decided; the row still carries the cost, so usage reports stay right.
            context.audit.spendSettled = false
            application.logger.warning("could not settle limits", metadata: ["request_id": "\(context.requestID)", "error": "\(error)"])
        }
    }
}
