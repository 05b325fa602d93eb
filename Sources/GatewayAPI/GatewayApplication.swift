import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayUpstream
import Logging
import PoolScoreboard

/// Settings of the request pipeline (the worker's share of `serve`'s options).
public struct GatewayConfiguration: Sendable {
    /// Bodies over this are refused with 413; nginx's client_max_body_size should match.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// Largest provider answer read into memory (non-streamed).
    public var maxUpstreamBodyBytes: Int = 64 * 1024 * 1024
    /// The RPM/TPM sliding window (docs/api.md: 60 s; tests shorten it with the `limits.window_seconds` setting).
    public var limitWindowSeconds: Int = 60
    /// Consecutive failures that open a provider's circuit breaker (0: no breaker, and a
    /// provider's Retry-After is only passed on).
    public var breakerFailures: Int = 5
    /// How long an open breaker skips the provider before one request probes it.
    public var breakerCooldownSeconds: Double = 30
    /// Largest answer the cache stores.
    public var cacheMaxEntryBytes: Int = 4 * 1024 * 1024
    /// How long identical requests wait for the one computing their answer (the longest a
    /// provider attempt may take).
    public var cacheLeaseSeconds: Double = 900
    /// Requests of one gateway key that may wait (in this worker) for an identical request's
    /// answer; more go to the provider themselves. Bounds what one tenant can park in a worker.
    public var cacheMaxWaitersPerKey: Int = 64

    public init(maxBodyBytes: Int = 10 * 1024 * 1024, maxUpstreamBodyBytes: Int = 64 * 1024 * 1024, limitWindowSeconds: Int = 60,
                breakerFailures: Int = 5, breakerCooldownSeconds: Double = 30, cacheMaxEntryBytes: Int = 4 * 1024 * 1024,
                cacheLeaseSeconds: Double = 900, cacheMaxWaitersPerKey: Int = 64) {
        self.cacheMaxWaitersPerKey = max(0, cacheMaxWaitersPerKey)
        self.maxBodyBytes = maxBodyBytes
        self.maxUpstreamBodyBytes = maxUpstreamBodyBytes
        self.limitWindowSeconds = max(1, limitWindowSeconds)
        self.breakerFailures = max(0, breakerFailures)
        self.breakerCooldownSeconds = max(0.1, breakerCooldownSeconds)
        self.cacheMaxEntryBytes = max(0, cacheMaxEntryBytes)
        self.cacheLeaseSeconds = max(1, cacheLeaseSeconds)
    }
}

/// The gateway's HTTP surface: routes a request to its handler, and guarantees that every
/// request to /v1/* leaves exactly one audit row, whatever happened.
public final class GatewayApplication: Responder {
    let configuration: GatewayConfiguration
    let store: GatewayStore
    let auditWriter: AuditWriter
    let upstream: UpstreamClient
    let logger: Logger
    let authenticator: Authenticator
    let limiter: RequestLimiter
    let priceBook: PriceBook
    let cache: ResponseCache
    let breaker: CircuitBreaker
    /// This worker's place on the pool's scoreboard (nil outside a `serve` pool).
    let poolSlot: WorkerSlot?

    public init(configuration: GatewayConfiguration, store: GatewayStore, auditWriter: AuditWriter,
                upstream: UpstreamClient, logger: Logger, poolSlot: WorkerSlot? = nil) {
        self.poolSlot = poolSlot
        self.configuration = configuration
        self.store = store
        self.auditWriter = auditWriter
        self.upstream = upstream
        self.logger = logger
        self.authenticator = Authenticator(store: store)
        self.limiter = RequestLimiter(store: store, windowSeconds: configuration.limitWindowSeconds)
        self.priceBook = PriceBook(store: store)
        self.cache = ResponseCache(store: store, logger: logger, leaseSeconds: configuration.cacheLeaseSeconds,
                                   maxEntryBytes: configuration.cacheMaxEntryBytes,
                                   waiters: CacheWaiters(maxPerKey: configuration.cacheMaxWaitersPerKey))
        self.breaker = CircuitBreaker(store: store, logger: logger, threshold: configuration.breakerFailures,
                                      cooldownSeconds: configuration.breakerCooldownSeconds,
                                      opened: { provider in poolSlot?.recordBreakerOpened(PoolProvider(name: provider)) })
    }

    public func respond(to request: HTTPRequest, writer: any ResponseWriter) async {
        let context = RequestContext(request: request)
        if request.path == "/healthz" {
            await HealthHandler(store: store).respond(to: request, context: context, writer: writer)
            return
        }
        // Only /v1 requests are audited; every answer still carries an X-Request-Id.
        guard request.path.hasPrefix("/v1/") || request.path == "/v1" else {
            await ErrorResponse.write(.notFound("Unknown route \(request.method) \(request.path)."), context: context, writer: writer)
            return
        }
        // On file before any work: even a worker killed mid-request leaves this request's row.
        context.auditWriter = auditWriter
        context.auditTicket = auditWriter.begin(context.audit)
        do {
            try await route(request, context: context, writer: writer)
        } catch is ClientDisconnected {
            // The client went away mid-answer (nginx closed the FastCGI connection).
            context.audit.status = 499
            context.audit.errorCode = "client_disconnected"
        } catch {
            let gatewayError = ErrorResponse.gatewayError(for: error)
            if gatewayError.failureClass == .gatewayFault {
                logger.error("request failed inside the gateway", metadata: ["request_id": "\(context.requestID)", "error": "\(type(of: error))"])
            }
            await ErrorResponse.write(gatewayError, context: context, writer: writer)
        }
        context.audit.latencyMs = context.elapsedMs
        // Journaled and queued before the transport finishes the answer (the caller's `end()`),
        // so every answer a client receives has its row.
        auditWriter.enqueue(context.audit, ticket: context.auditTicket)
        PoolMetrics.record(context, slot: poolSlot)
    }

    private func route(_ request: HTTPRequest, context: RequestContext, writer: any ResponseWriter) async throws {
        if request.bodyTooLarge {
            throw GatewayError.requestTooLarge(limitBytes: configuration.maxBodyBytes)
        }
        let handler: RouteHandler
        switch request.path {
        case "/v1/chat/completions":
            guard request.method == "POST" else { throw GatewayError.methodNotAllowed("Use POST for /v1/chat/completions.") }
            handler = ChatCompletionsHandler(application: self)
        case "/v1/embeddings":
            guard request.method == "POST" else { throw GatewayError.methodNotAllowed("Use POST for /v1/embeddings.") }
            handler = EmbeddingsHandler(application: self)
        case "/v1/models":
            guard request.method == "GET" else { throw GatewayError.methodNotAllowed("Use GET for /v1/models.") }
            handler = ModelsHandler(store: store)
        default:
            throw GatewayError.notFound("Unknown route \(request.method) \(request.path).")
        }
        let key = try authenticator.authenticate(request)
        context.authenticated(key)
        try await handler.handle(request, key: key, context: context, writer: writer)
    }
}

/// A handler for one authenticated /v1 route. It writes a successful answer itself and throws
/// for anything the client should see as an error (written by `ErrorResponse`).
protocol RouteHandler: Sendable {
    func handle(_ request: HTTPRequest, key: AuthenticatedKey, context: RequestContext, writer: any ResponseWriter) async throws
}
