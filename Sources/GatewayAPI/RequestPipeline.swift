import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream
import Logging
import PoolScoreboard

/// The one path every /v1 request takes. Read this file first: each stage is a function below,
/// in the order a request meets them, taking what it needs and returning what it found.
///
///     authenticate → read targets → cache → admit → attempts (with fallback) → deliver → settle → audit
///
/// - **authenticate**: the gateway key (`Authenticator`), 401 otherwise. The store may answer
///   from memory; the admission then confirms the key in its own transaction, and if the key
///   changed meanwhile nothing was counted and the request starts over (so does one that failed
///   before its admission while the key read now differs).
/// - **read targets**: provider and fallbacks from the request's own headers and body, no store
///   read (so a cache hit costs none); the project's settings for them only on a miss.
/// - **cache** (`X-Cache-TTL` only): answer from a stored entry, or wait for an identical request
///   in flight, or take the lease and compute it for everyone (`CacheSession`).
/// - **admit**: RPM, TPM, budgets and the free plan in one store transaction (`RequestLimiter`).
/// - **attempts**: each target in turn until one answers, skipping open circuit breakers
///   (`FallbackRunner`, one `ProviderCall` per attempt). A stream's attempt ends when it commits
///   (its first content chunk, `StreamCommit`): after that it cannot fall back.
/// - **deliver**: the answer in OpenAI's format, metered and stored in the cache before its last
///   byte goes out, so the client's next request sees this one's tokens, spend and entry.
/// - **settle**: the token reservation replaced by real usage, spend added (`Settlement`); exactly
///   once whatever happened, including failures and a client that left.
/// - **audit**: one row, built once from the `RequestOutcome` (`appendAudit`).
///
/// Errors are thrown as they arise and turned into HTTP answers in one place (`ErrorResponse`).
struct RequestPipeline: Sendable {
    let configuration: GatewayConfiguration
    let store: any RequestStore
    let upstream: UpstreamClient
    let logger: Logger
    let poolSlot: WorkerSlot?
    let authenticator: Authenticator
    let limiter: RequestLimiter
    let priceBook: PriceBook
    let providers: ProviderDirectory
    let cache: ResponseCache
    let breaker: CircuitBreaker

    init(configuration: GatewayConfiguration, store: any RequestStore, upstream: UpstreamClient, logger: Logger, poolSlot: WorkerSlot?) {
        self.configuration = configuration
        self.store = store
        self.upstream = upstream
        self.logger = logger
        self.poolSlot = poolSlot
        authenticator = Authenticator(store: store)
        limiter = RequestLimiter(store: store, windowSeconds: configuration.limitWindowSeconds)
        priceBook = PriceBook(store: store)
        providers = ProviderDirectory(store: store)
        cache = ResponseCache(store: store, logger: logger, leaseSeconds: configuration.cacheLeaseSeconds,
                              maxEntryBytes: configuration.cacheMaxEntryBytes,
                              waiters: CacheWaiters(maxPerKey: configuration.cacheMaxWaitersPerKey))
        breaker = CircuitBreaker(store: store, logger: logger, threshold: configuration.breakerFailures,
                                 cooldownSeconds: configuration.breakerCooldownSeconds,
                                 opened: { provider in poolSlot?.recordBreakerOpened(PoolProvider(name: provider)) })
    }

    /// Serves one /v1 request and leaves exactly one audit row for it, whatever happens.
    func serve(_ request: HTTPRequest, writer: any ResponseWriter) async {
        var outcome = RequestOutcome(request)
        request.trace?.requestID = outcome.requestID
        // On file before any work: even a worker killed mid-request leaves this request's row.
        var ticket = store.beginAudit(outcome.auditRecord)
        let arrived = outcome
        do {
            do {
                try await run(request, keyFromMemory: true, outcome: &outcome, ticket: &ticket, writer: writer)
            } catch let error where outcome.key?.pendingCheck != nil {
                // The key came from memory and no admission has confirmed it: nothing was counted
                // or written yet. Refused at admission as changed, or failed earlier while the key
                // read now differs (revoked, other limits, settings changed since: a provider
                // configured, a price set), the request starts over with the key read from the
                // store; a failure the current key would meet too stands.
                guard error is RememberedKeyChanged || authenticator.differsFromTheStore(outcome.key!, request) else { throw error }
                outcome = arrived
                try await run(request, keyFromMemory: false, outcome: &outcome, ticket: &ticket, writer: writer)
            }
        } catch is ClientDisconnected {
            // The client went away mid-answer (nginx closed the FastCGI connection).
            outcome.status = 499
            outcome.errorCode = "client_disconnected"
        } catch {
            let gatewayError = ErrorResponse.gatewayError(for: error)
            if gatewayError.failureClass == .gatewayFault {
                logger.error("request failed inside the gateway", metadata: ["request_id": "\(outcome.requestID)", "error": "\(type(of: error))"])
            }
            await AnswerWriter.writeError(gatewayError, outcome: &outcome, writer: writer)
        }
        audit(outcome, ticket: ticket, trace: request.trace)
    }

    private func run(_ request: HTTPRequest, keyFromMemory: Bool, outcome: inout RequestOutcome, ticket: inout AuditTicket,
                     writer: any ResponseWriter) async throws {
        let route = try DataRoute(request, maxBodyBytes: configuration.maxBodyBytes)
        // /v1/models is answered without an admission, so its key is always read.
        let key = try authenticate(request, fromMemory: keyFromMemory && route != .models, outcome: &outcome)
        if route == .models {
            try await ModelsList.write(store: store, key: key, outcome: &outcome, writer: writer)
            return
        }
        let work = try ProviderWork.parse(route, body: request.body, requestID: outcome.requestID)
        outcome.modelRequested = work.model
        outcome.user = work.user
        outcome.stream = work.stream
        let requested = try readTargets(request, work: work, outcome: &outcome)
        let estimatedTokens = work.estimatedTokens(bodyBytes: request.body.count)

        var settlement = Settlement()
        defer { settle(&settlement, key: key, outcome: &outcome) }

        // Cache: a hit is answered here; a miss may already be admitted (before it waited).
        let session = try cacheSession(request, work: work, requested: requested, key: key, outcome: &outcome)
        defer { session?.finish() }
        if let session {
            switch try await session.findAnswer(keyID: key.key.id, admit: {
                try admit(key, estimatedTokens: estimatedTokens, fromCache: false, settlement: &settlement, outcome: &outcome)
            }) {
            case .hit(let answer):
                outcome.cacheStatus = "HIT"
                if !settlement.isAdmitted {
                    try admit(key, estimatedTokens: 0, fromCache: true, settlement: &settlement, outcome: &outcome)
                }
                // No provider call, no tokens, nothing spent: settled before it is written.
                outcome.cacheHit = true
                outcome.provider = answer.provider
                outcome.modelServed = answer.modelServed
                settlement.answeredFromCache()
                settle(&settlement, key: key, outcome: &outcome)
                try await AnswerWriter.replay(answer, outcome: &outcome, ticket: &ticket, store: store, writer: writer)
                return
            case .miss:
                break
            }
        }

        let chain = try TargetChain.resolve(requested, key: key, directory: providers)
        try priceBook.requirePrice(for: chain.primary.model, key: key)
        if !settlement.isAdmitted {
            try admit(key, estimatedTokens: estimatedTokens, fromCache: false, settlement: &settlement, outcome: &outcome)
        }

        let runner = FallbackRunner(chain: chain, breaker: breaker, projectID: key.project.id, requestID: outcome.requestID,
                                    projectHadNoBreakerState: !key.projectHasBreakerState)
        try await runner.run(outcome: &outcome) { target, outcome in
            try await attempt(work.retargeted(target), on: target, key: key, promptBytes: request.body.count, session: session,
                              settlement: &settlement, outcome: &outcome, ticket: &ticket, writer: writer)
        }
    }

    // MARK: - Stages

    /// Stage 1: the gateway key, or 401.
    private func authenticate(_ request: HTTPRequest, fromMemory: Bool, outcome: inout RequestOutcome) throws -> AuthenticatedKey {
        let key = try authenticator.authenticate(request, checkAtAdmission: fromMemory)
        outcome.key = key
        return key
    }

    /// Stage 2: the provider and fallbacks the request asks for (headers and body only).
    private func readTargets(_ request: HTTPRequest, work: ProviderWork, outcome: inout RequestOutcome) throws -> RequestedTargets {
        let provider = try ProviderSelection.provider(header: request.headers["x-ai-provider"], model: work.model)
        // Named in the audit row even when the fallback header turns out to be malformed.
        outcome.provider = provider.rawValue
        return try RequestedTargets.read(request, provider: provider, model: work.model, allowFallback: work.allowsFallback)
    }

    /// Stage 3: the request's use of the cache, when it asked for one (`X-Cache-TTL`).
    private func cacheSession(_ request: HTTPRequest, work: ProviderWork, requested: RequestedTargets, key: AuthenticatedKey,
                              outcome: inout RequestOutcome) throws -> CacheSession? {
        guard let policy = try CachePolicy.from(request) else { return nil }
        outcome.cacheStatus = "MISS"
        let cacheKey = CacheKey(projectID: key.project.id, provider: requested.primary.provider, route: request.path, body: work.body)
        return CacheSession(policy: policy, key: cacheKey, cache: cache, projectID: key.project.id, requestID: outcome.requestID)
    }

    /// Stage 4: counts the request against its limits, or throws their 429 (503 when the store
    /// cannot decide). A cache hit counts as a request but reserves no tokens and is not refused
    /// by TPM or a spent budget: it costs nothing.
    private func admit(_ key: AuthenticatedKey, estimatedTokens: Int, fromCache: Bool, settlement: inout Settlement,
                       outcome: inout RequestOutcome) throws {
        defer { outcome.trace?.mark(.admitted) }
        let decision = try limiter.admit(key: key, estimatedTokens: estimatedTokens, servedFromCache: fromCache)
        outcome.key?.pendingCheck = nil  // confirmed by this admission, admitted or refused
        switch decision {
        case .admitted(let admission):
            outcome.limitStatus = admission?.status
            settlement.admitted(admission)
        case .refused(let refusal):
            outcome.limitStatus = refusal.status
            outcome.limitRefusal = refusal.kind
            throw refusal.error
        }
    }

    /// Stage 5, one attempt: sends the work to `target` and, when it answers, delivers the answer
    /// (stage 6). Throws a `GatewayError` for a failed call (the runner may fall back), or
    /// `TargetUnusable` when the target cannot take the request at all.
    private func attempt(_ work: ProviderWork, on target: ProviderTarget, key: AuthenticatedKey, promptBytes: Int,
                         session: CacheSession?, settlement: inout Settlement, outcome: inout RequestOutcome,
                         ticket: inout AuditTicket, writer: any ResponseWriter) async throws {
        let upstreamRequest: UpstreamRequest
        do {
            try priceBook.requirePrice(for: target.model, key: key)
            upstreamRequest = try work.upstreamRequest(for: target)
        } catch {
            throw TargetUnusable(error: error)
        }
        let call = ProviderCall(upstream: upstream, target: target, maxBodyBytes: configuration.maxUpstreamBodyBytes, trace: outcome.trace)
        let response = try await call.send(upstreamRequest, outcome: &outcome)
        settlement.providerAnswered()
        if case .chat(let chat) = work, chat.stream {
            let relay = StreamDelivery(call: call, chat: chat, promptEstimate: promptBytes / 4, session: session, store: store)
            try await relay.run(response, outcome: &outcome, ticket: &ticket, writer: writer) { usage, modelServed, outcome in
                meter(usage, modelServed: modelServed, priceModel: target.model, key: key, settlement: &settlement, outcome: &outcome)
            }
            return
        }
        let body = try await call.body(of: response, outcome: &outcome)
        let answer = try call.decode(status: response.status, outcome: &outcome) { () throws(GatewayError) in
            try work.decodeAnswer(body, from: target)
        }
        // Stage 6: metered (and so settled) and stored before it is written.
        let cost = meter(answer.usage, modelServed: answer.modelServed, priceModel: target.model, key: key,
                         settlement: &settlement, outcome: &outcome)
        session?.save(CachedAnswer(provider: target.provider.rawValue, modelServed: answer.modelServed, stream: false, body: answer.body))
        try await AnswerWriter.answer(answer.body, provider: target.provider.rawValue, cost: cost, outcome: &outcome, writer: writer)
    }

    /// The answer's usage and cost go into the outcome, and settle the limits at once (stage 7
    /// happens here for an answer, before its last byte is written). `priceModel` is the model the
    /// answering target was asked for (after fallback, not the client's). Returns the cost.
    @discardableResult
    private func meter(_ usage: TokenUsage?, modelServed: String?, priceModel: String, key: AuthenticatedKey,
                       settlement: inout Settlement, outcome: inout RequestOutcome) -> Double? {
        let cost = usage.flatMap { priceBook.cost(models: [priceModel, modelServed], usage: $0, settingsVersion: key.settingsVersion) }
        outcome.metered(usage, cost: cost, modelServed: modelServed)
        settlement.answered(tokens: usage?.totalTokens, cost: cost)
        settle(&settlement, key: key, outcome: &outcome)
        return cost
    }

    /// Stage 7: reconciles the limits with what the request used, exactly once. Without an answer
    /// the reservation is released (the provider never answered) or kept (the answer broke off:
    /// tokens were likely spent). A store failure here is logged: the answer is decided, and the
    /// audit row still carries the cost, so usage reports stay right.
    private func settle(_ settlement: inout Settlement, key: AuthenticatedKey, outcome: inout RequestOutcome) {
        guard let closing = settlement.close() else { return }
        outcome.spendSettled = closing.admission.settlesSpend
        do {
            try limiter.settle(closing.admission, key: key, actualTokens: closing.actualTokens, costUSD: closing.cost)
        } catch {
            outcome.spendSettled = false
            logger.warning("could not settle limits", metadata: ["request_id": "\(outcome.requestID)", "error": "\(error)"])
        }
    }

    /// Stage 8: the request's one audit row, queued before the transport finishes the answer (the
    /// caller's `end()`), so every answer a client receives has its row; then the pool's metrics,
    /// read from the same outcome so `/metrics` and the audit log can never disagree.
    private func audit(_ outcome: RequestOutcome, ticket: AuditTicket, trace: RequestTrace?) {
        let row = outcome.auditRecord
        store.appendAudit(row, ticket: ticket)
        PoolMetrics.record(row, outcome: outcome, trace: trace, slot: poolSlot)
    }
}

/// The limit reconciliation of one request, as a value: what was admitted, what the answer used,
/// and whether it has been settled (it is, exactly once).
struct Settlement: Sendable {
    private(set) var isAdmitted = false
    private var admission: Admission?
    private var providerHasAnswered = false
    private var usedTokens: Int??
    private var cost: Double?
    private var closed = false

    mutating func admitted(_ admission: Admission?) {
        isAdmitted = true
        self.admission = admission
    }

    mutating func providerAnswered() { providerHasAnswered = true }

    /// The answer's usage is known (nil tokens: the provider did not say).
    mutating func answered(tokens: Int?, cost: Double?) {
        guard usedTokens == nil else { return }
        usedTokens = .some(tokens)
        self.cost = cost
    }

    /// A cache hit: no tokens used, nothing spent (a waiter's reservation is released).
    mutating func answeredFromCache() { answered(tokens: 0, cost: 0) }

    /// What to settle, the first time only (nil when nothing was admitted or it is done).
    mutating func close() -> (admission: Admission, actualTokens: Int?, cost: Double?)? {
        guard !closed else { return nil }
        closed = true
        guard let admission else { return nil }
        if let usedTokens { return (admission, usedTokens, cost) }
        return (admission, providerHasAnswered ? nil : 0, nil)
    }
}

/// The /v1 routes, checked before authentication: 404, 405 and 413 need no key.
enum DataRoute: Equatable {
    case chatCompletions, embeddings, models

    init(_ request: HTTPRequest, maxBodyBytes: Int) throws(GatewayError) {
        if request.bodyTooLarge { throw .requestTooLarge(limitBytes: maxBodyBytes) }
        switch request.path {
        case "/v1/chat/completions":
            guard request.method == "POST" else { throw .methodNotAllowed("Use POST for /v1/chat/completions.") }
            self = .chatCompletions
        case "/v1/embeddings":
            guard request.method == "POST" else { throw .methodNotAllowed("Use POST for /v1/embeddings.") }
            self = .embeddings
        case "/v1/models":
            guard request.method == "GET" else { throw .methodNotAllowed("Use GET for /v1/models.") }
            self = .models
        default:
            throw .notFound("Unknown route \(request.method) \(request.path).")
        }
    }
}
