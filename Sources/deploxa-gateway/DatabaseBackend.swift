import ArgumentParser
import Foundation
import GatewayAPI
import GatewayStore
#if canImport(GatewayStorePostgres)
import GatewayStorePostgres
#endif

/// Which store `--db` names: an SQLite file (the embedded default) or, given a
/// `postgresql://` URL, a PostgreSQL database shared by several gateway nodes (docs/postgres.md).
enum DatabaseBackend {
    case sqlite(path: String)
    #if canImport(GatewayStorePostgres)
    case postgres(PostgresLocation)
    #endif

    init(_ db: String) throws {
        guard db.hasPrefix("postgresql://") || db.hasPrefix("postgres://") else {
            self = .sqlite(path: db)
            return
        }
        #if canImport(GatewayStorePostgres)
        self = .postgres(try PostgresLocation(url: db))
        #else
        throw CommandFailure("This build has no PostgreSQL support (it was built with DEPLOXA_WITHOUT_POSTGRES); use an SQLite file.")
        #endif
    }

    /// A name for logs and `--json` output, never holding a password.
    var displayName: String {
        switch self {
        case .sqlite(let path): return path
        #if canImport(GatewayStorePostgres)
        case .postgres(let location): return location.description
        #endif
        }
    }

    /// The request path's store, for the command line's limit hammer (`bench-admit`).
    func openRequestStore(busyTimeoutMilliseconds: Int) throws -> any RequestStore {
        switch self {
        case .sqlite(let path):
            let store = try GatewayStore(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            _ = try store.migrate()
            return SQLiteRequestStore(store: store, auditWriter: AuditWriter(store: store))
        #if canImport(GatewayStorePostgres)
        case .postgres(let location):
            let session = try PostgresSession(location: location, maxConnections: 1, lockTimeoutMilliseconds: busyTimeoutMilliseconds)
            _ = try PostgresSchema.migrate(session)
            return PostgresRequestStore(session: session, auditWriter: AuditWriter(store: PostgresAuditSink(session: session)))
        #endif
        }
    }

    /// The command line's store, schema brought up to date.
    func openConfiguration(migrate: Bool = true) throws -> any ConfigurationStore { try openAdmin(migrate: migrate) }

    /// The admin API's and the command line's store (one connection).
    func openAdmin(migrate: Bool = true, busyTimeoutMilliseconds: Int = 5000) throws -> any AdminStore {
        switch self {
        case .sqlite(let path):
            let store = try GatewayStore(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
            if migrate { _ = try store.migrate() }
            return store
        #if canImport(GatewayStorePostgres)
        case .postgres(let location):
            let store = PostgresConfigurationStore(session: try PostgresSession(location: location, maxConnections: 1))
            if migrate { _ = try store.migrate() }
            return store
        #endif
        }
    }
}
