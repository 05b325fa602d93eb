import Foundation
import GatewayAdmin
import GatewayAPI
import GatewayStore
#if canImport(GatewayStorePostgres)
import GatewayStorePostgres
#endif

/// What a worker's composition root builds from `--db`: the request path's store, the audit
/// writer behind it, the housekeeping passes, and how the admin API opens its database.
struct WorkerStores {
    let requestStore: any RequestStore
    let auditWriter: AuditWriter
    /// The RPM/TPM window (the `limits.window_seconds` setting; tests shorten it).
    let limitWindowSeconds: Int
    /// Stops the janitors; the audit writer is closed separately (after the last request).
    let closeJanitors: () -> Void
    let openAdminStore: @Sendable () throws -> any AdminStore

    /// How long the SQLite audit writer gathers rows before committing them. Each batch rewrites
    /// the same tail pages of the audit table, its indexes and the rollups, and holds the one
    /// write lock that every admission waits for: 25 ms batches (about 40 rows at 1,500 req/s)
    /// wrote a third of the WAL pages per row of 5 ms ones (BENCHMARKS.md, "The request thread
    /// waits for nobody's disk"). A row is on file in the journal before its answer ends either way.
    static let sqliteAuditBatchMilliseconds = 25

    static func open(_ backend: DatabaseBackend, options: WorkerOptions, schemaReady: Bool, journalDirectory: String?) throws -> WorkerStores {
        switch backend {
        case .sqlite(let path):
            return try sqlite(path: path, options: options, schemaReady: schemaReady, journalDirectory: journalDirectory)
        #if canImport(GatewayStorePostgres)
        case .postgres(let location):
            return try postgres(location, options: options, schemaReady: schemaReady, journalDirectory: journalDirectory)
        #endif
        }
    }

    /// One connection for requests, one for the audit writer, one each for the janitors and the admin API.
    private static func sqlite(path: String, options: WorkerOptions, schemaReady: Bool, journalDirectory: String?) throws -> WorkerStores {
        let store = try GatewayStore(path: path, busyTimeoutMilliseconds: options.dbBusyTimeout)
        // `serve` migrates once before starting workers; only a CGI start does it here.
        if !schemaReady { _ = try store.migrate() }
        // No checkpoints and no memory map on the connection every request of the worker waits for.
        try store.tuneForTheRequestPath()
        // The writer replays the journals of workers that died before writing their rows at once,
        // then every few seconds.
        let auditWriter = AuditWriter(store: try GatewayStore(path: path), journalDirectory: journalDirectory,
                                      maxDelayMilliseconds: Self.sqliteAuditBatchMilliseconds, maxQueued: options.auditQueueMax)
        let cacheJanitor = CacheJanitor(store: try GatewayStore(path: path), maxBytes: Int64(options.cacheMaxMB) << 20,
                                        interval: options.cachePruneInterval)
        // Retention, WAL checkpoints and expired dashboard sessions (not in a CGI process, which
        // serves one request and exits).
        let isCGI = ProcessInfo.processInfo.environment["GATEWAY_INTERFACE"] != nil
        let auditJanitor = isCGI ? nil : AuditJanitor(store: try GatewayStore(path: path), retentionDays: options.auditRetentionDays,
                                                      interval: options.auditRetentionInterval)
        return WorkerStores(
            requestStore: SQLiteRequestStore(store: store, auditWriter: auditWriter),
            auditWriter: auditWriter,
            limitWindowSeconds: (try? store.setting("limits.window_seconds")).flatMap { Int($0) } ?? 60,
            closeJanitors: { cacheJanitor.close(); auditJanitor?.close() },
            openAdminStore: { try GatewayStore(path: path, busyTimeoutMilliseconds: 5000) })
    }

    #if canImport(GatewayStorePostgres)
    /// Two connections for the request thread (a request's store call and a cache waiter's), one
    /// for the audit writer, one for the janitor, and two for the admin API once it is used (its
    /// reads and its writes): at most six per worker (docs/postgres.md).
    private static func postgres(_ location: PostgresLocation, options: WorkerOptions, schemaReady: Bool,
                                 journalDirectory: String?) throws -> WorkerStores {
        // The request path's commits (admission, settlement, cache, breakers) need not wait for
        // the disk: other nodes see them at once either way; audit batches always wait.
        let requests = try PostgresSession(location: location, maxConnections: 2, lockTimeoutMilliseconds: options.dbBusyTimeout,
                                           commitsWaitForDisk: options.dbDurableCounters, genericPlans: true)
        if !schemaReady { _ = try PostgresSchema.migrate(requests) }
        let audit = try PostgresSession(location: location, maxConnections: 1, genericPlans: true)
        // Gathers up to 50 ms of rows per batch (25 on SQLite): one deploxa_append_audit call costs
        // the database far more than one more row in it (BENCHMARKS.md, "Shared database").
        let auditWriter = AuditWriter(store: PostgresAuditSink(session: audit), journalDirectory: journalDirectory,
                                      maxDelayMilliseconds: 50, maxQueued: options.auditQueueMax)
        let janitor = PostgresJanitor(session: try PostgresSession(location: location, maxConnections: 1),
                                      interval: options.cachePruneInterval, retentionDays: options.auditRetentionDays)
        let settings = PostgresConfigurationStore(session: requests)
        return WorkerStores(
            requestStore: PostgresRequestStore(session: requests, auditWriter: auditWriter),
            auditWriter: auditWriter,
            limitWindowSeconds: (try? settings.setting("limits.window_seconds")).flatMap { Int($0) } ?? 60,
            closeJanitors: { janitor.close() },
            openAdminStore: { PostgresConfigurationStore(session: try PostgresSession(location: location, maxConnections: 1)) })
    }
    #endif
}
