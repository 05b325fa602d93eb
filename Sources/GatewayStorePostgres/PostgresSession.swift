import Dispatch
import Foundation
import GatewayStore
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import Synchronization

/// A few connections to the shared database, used from blocking callers: the worker's request
/// thread and its audit writer thread (never Swift's cooperative pool, which a wait would starve).
/// Each call borrows a connection, sends one statement and waits for its answer, so a worker
/// needs only as many connections as threads that call at once (docs/postgres.md sizes the
/// pool: nodes × workers × connections must stay under the server's `max_connections`).
///
/// Failures become `StoreError`s the pipeline already maps: the database unreachable or a
/// connection lost → `.io` (503); a lock or statement timeout → `.busy` (503 with Retry-After);
/// a serialization failure or deadlock is retried here a bounded number of times first.
public final class PostgresSession: Sendable {
    public let location: PostgresLocation
    public let maxConnections: Int
    private let configuration: PostgresConnection.Configuration
    private let group: MultiThreadedEventLoopGroup
    private let logger: Logger
    private let idle = Mutex<[PostgresConnection]>([])
    private let slots: DispatchSemaphore
    private let nextID = Atomic<Int>(0)
    private let closed = Atomic<Bool>(false)
    /// Until when (uptime nanoseconds) a new connection is not even tried after one failed: with
    /// the database away, each store call fails at once instead of waiting out a connect timeout.
    private let reconnectNotBefore = Atomic<UInt64>(0)
    private static let reconnectBackoffNanoseconds: UInt64 = 500_000_000
    /// How long a caller waits for a free connection before giving up with `.busy`.
    private let acquireTimeout: Double

    /// Statement and lock timeouts keep a stuck database from holding a request for long: a
    /// limited request fails closed with 503 instead of waiting.
    ///
    /// `commitsWaitForDisk: false` sets `synchronous_commit = off` for this session's
    /// connections: a commit is visible to every other session at once, as always, but returns
    /// before its WAL reaches the disk, so a crash of the database server can forget the last
    /// moments of such commits (docs/postgres.md, "Commit durability and speed").
    ///
    /// `genericPlans: true` sets `plan_cache_mode = force_generic_plan`: the statements inside
    /// the PL/pgSQL functions keep one plan per connection. By default PostgreSQL kept planning
    /// some of them again on every call (the admission's `= ANY(scopes)` lock among them: about
    /// 100 µs of the database's CPU per request; docs/postgres.md, "Where the database's time
    /// goes"). For the request path and the audit writer, whose statements are all fixed; not
    /// for the admin API's ad-hoc queries, which are better planned with their values.
    public init(location: PostgresLocation, maxConnections: Int = 2, connectTimeoutSeconds: Int64 = 2,
                statementTimeoutMilliseconds: Int = 5000, lockTimeoutMilliseconds: Int = 2000,
                commitsWaitForDisk: Bool = true, genericPlans: Bool = false,
                acquireTimeoutSeconds: Double = 5, logger: Logger = Logger(label: "deploxa.postgres")) throws {
        self.location = location
        self.maxConnections = max(1, maxConnections)
        self.acquireTimeout = acquireTimeoutSeconds
        self.logger = logger
        var configuration: PostgresConnection.Configuration
        if let host = location.host {
            configuration = .init(host: host, port: location.port, username: location.user, password: location.password,
                                  database: location.database, tls: try Self.tls(location.tls, host: host))
        } else {
            let directory = location.socketDirectory ?? "/var/run/postgresql"
            configuration = .init(unixSocketPath: "\(directory)/.s.PGSQL.\(location.port)", username: location.user,
                                  password: location.password, database: location.database)
        }
        configuration.options.connectTimeout = .seconds(connectTimeoutSeconds)
        configuration.options.additionalStartupParameters = [
            ("application_name", location.applicationName),
            ("statement_timeout", String(statementTimeoutMilliseconds)),
            ("lock_timeout", String(lockTimeoutMilliseconds)),
            ("idle_in_transaction_session_timeout", "10000"),
            ("TimeZone", "UTC"),
        ] + (commitsWaitForDisk ? [] : [("synchronous_commit", "off")])
          + (genericPlans ? [("plan_cache_mode", "force_generic_plan")] : [])
        self.configuration = configuration
        slots = DispatchSemaphore(value: self.maxConnections)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    deinit {
        close()
    }

    /// Closes every connection; later calls fail with `.io`.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let connections = idle.withLock { connections in
            defer { connections.removeAll() }
            return connections
        }
        for connection in connections { _ = try? connection.close().wait() }
        try? group.syncShutdownGracefully()
    }

    // MARK: - Statements

    /// Runs one statement and returns its rows, retrying serialization failures and deadlocks.
    @discardableResult
    public func query(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try withRetries { try withConnection { try $0.query(query, logger: logger).wait().rows.map { $0.makeRandomAccess() } } }
    }

    /// Runs one statement and returns how many rows it changed (its command tag's count).
    @discardableResult
    public func execute(_ query: PostgresQuery) throws -> Int {
        try withRetries { try withConnection { try $0.query(query, logger: logger).wait().metadata.rows ?? 0 } }
    }

    /// Runs several statements on one connection inside one transaction (BEGIN … COMMIT, or
    /// ROLLBACK when `body` throws). For the command line's multi-statement changes and the
    /// migrations; the request path uses single statements only.
    public func transaction<T>(_ body: (PostgresTransaction) throws -> T) throws -> T {
        try withRetries {
            try withConnection { connection in
                let transaction = PostgresTransaction(connection: connection, logger: logger)
                try transaction.run("BEGIN")
                do {
                    let result = try body(transaction)
                    try transaction.run("COMMIT")
                    return result
                } catch {
                    _ = try? transaction.run("ROLLBACK")
                    throw error
                }
            }
        }
    }

    // MARK: - Connections

    private func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        guard !closed.load(ordering: .acquiring) else { throw StoreError(.io, "the database session is closed") }
        guard slots.wait(timeout: .now() + acquireTimeout) == .success else {
            throw StoreError(.busy, "no database connection came free within \(Int(acquireTimeout)) s")
        }
        defer { slots.signal() }
        let reused = idle.withLock { $0.popLast() }
        let connection: PostgresConnection
        if let reused, !reused.isClosed {
            connection = reused
        } else {
            connection = try connect()
        }
        do {
            let result = try body(connection)
            idle.withLock { $0.append(connection) }
            return result
        } catch {
            // A connection that still works goes back (a server error leaves it usable); a lost
            // one is dropped and the next call connects again.
            if !connection.isClosed && Self.leavesConnectionUsable(error) {
                idle.withLock { $0.append(connection) }
            } else {
                _ = try? connection.close().wait()
            }
            throw Self.storeError(error)
        }
    }

    private func connect() throws -> PostgresConnection {
        if DispatchTime.now().uptimeNanoseconds < reconnectNotBefore.load(ordering: .relaxed) {
            throw StoreError(.io, "the database at \(location) did not answer a moment ago")
        }
        let id = nextID.wrappingAdd(1, ordering: .relaxed).newValue
        do {
            return try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
        } catch {
            reconnectNotBefore.store(DispatchTime.now().uptimeNanoseconds + Self.reconnectBackoffNanoseconds, ordering: .relaxed)
            throw StoreError(.io, "cannot connect to \(location): \(Self.describe(error))")
        }
    }

    /// Serialization failures and deadlocks are the database asking for a retry: up to three.
    private func withRetries<T>(_ body: () throws -> T) throws -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch let error as StoreError where error.kind == .busy && error.resultCode == Self.retryableCode && attempt < 3 {
                attempt += 1
                Thread.sleep(forTimeInterval: 0.002 * Double(attempt))
            }
        }
    }

    // MARK: - Errors

    /// Marks errors `withRetries` repeats (40001 serialization failure, 40P01 deadlock).
    static let retryableCode: Int32 = 40001

    static func storeError(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let error = error as? PSQLError else { return StoreError(.io, "database call failed: \(describe(error))") }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else {
            return StoreError(.io, "database connection failed: \(describe(error))")
        }
        // The server's primary message names objects, not values (DETAIL, which may quote a
        // value, is never used), so it is safe to log.
        let message = "postgres \(state): \(error.serverInfo?[.message] ?? "error")"
        switch state {
        case "40001", "40P01": return StoreError(.busy, message, resultCode: retryableCode)
        case "55P03", "57014": return StoreError(.busy, message)  // lock_timeout, statement_timeout
        case "P0002": return StoreError(.notFound, error.serverInfo?[.message] ?? "not found")
        case "22023": return StoreError(.invalidArgument, error.serverInfo?[.message] ?? "invalid argument")
        default:
            if state.hasPrefix("23") { return StoreError(.constraint, message) }
            if state.hasPrefix("08") || state.hasPrefix("57") || state.hasPrefix("53") { return StoreError(.io, message) }
            return StoreError(.other, message)
        }
    }

    private static func leavesConnectionUsable(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return error is StoreError }
        return error.code == .server
    }

    /// A PSQLError's code and server message only: its full description quotes the statement.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return String(describing: type(of: error)) }
        if let message = error.serverInfo?[.message] { return "\(error.code): \(message)" }
        if let underlying = error.underlying { return "\(error.code) (\(underlying))" }
        return "\(error.code)"
    }

    private static func tls(_ mode: PostgresLocation.TLSMode, host: String) throws -> PostgresConnection.Configuration.TLS {
        switch mode {
        case .disable:
            return .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            let context = try NIOSSLContext(configuration: configuration)
            return mode == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            return .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
        }
    }
}

/// Statements inside `PostgresSession.transaction`, all on the one connection that holds it.
public struct PostgresTransaction {
    let connection: PostgresConnection
    let logger: Logger

    @discardableResult
    public func query(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try connection.query(query, logger: logger).wait().rows.map { $0.makeRandomAccess() }
    }

    @discardableResult
    public func execute(_ query: PostgresQuery) throws -> Int {
        try connection.query(query, logger: logger).wait().metadata.rows ?? 0
    }

    func run(_ sql: String) throws {
        _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).wait()
    }
}
