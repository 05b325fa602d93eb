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

/// The gateway's data plane as the transport sees it: `/healthz`, and every `/v1` request
/// through the one `RequestPipeline`. Built once per worker by the composition root (`serve`'s
/// worker command), which hands it every dependency; nothing below reaches back up to it.
public final class GatewayApplication: Responder {
    private let pipeline: RequestPipeline
    private let store: any RequestStore

    public init(configuration: GatewayConfiguration, store: any RequestStore, upstream: UpstreamClient, logger: Logger,
                poolSlot: WorkerSlot? = nil) {
        self.store = store
        pipeline = RequestPipeline(configuration: configuration, store: store, upstream: upstream, logger: logger, poolSlot: poolSlot)
    }

    /// The embedded SQLite backend: the file's store and this worker's audit writer.
    public convenience init(configuration: GatewayConfiguration, store: GatewayStore, auditWriter: AuditWriter,
                            upstream: UpstreamClient, logger: Logger, poolSlot: WorkerSlot? = nil) {
        self.init(configuration: configuration, store: SQLiteRequestStore(store: store, auditWriter: auditWriter),
                  upstream: upstream, logger: logger, poolSlot: poolSlot)
    }

    public func respond(to request: HTTPRequest, writer: any ResponseWriter) async {
        if request.path == "/healthz" {
            await HealthCheck.respond(to: request, store: store, writer: writer)
        } else if request.path.hasPrefix("/v1/") || request.path == "/v1" {
            await pipeline.serve(request, writer: writer)
        } else {
            // Only /v1 requests are audited; every answer still carries an X-Request-Id.
            var outcome = RequestOutcome(request)
            await AnswerWriter.writeError(.notFound("Unknown route \(request.method) \(request.path)."), outcome: &outcome, writer: writer)
        }
    }
}
