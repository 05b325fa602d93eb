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
    /// How long a caller waits for a statement's answer: the server's statement_timeout and a
    /// margin (nil: no limit, as statement_timeout 0). A backstop, see `StatementAnswer`.
    let answerTimeout: TimeAmount?

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
        answerTimeout = statementTimeoutMilliseconds > 0 ? .milliseconds(Int64(statementTimeoutMilliseconds) + 3000) : nil
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
        try run(query, confirmingCommit: false).rows.map { $0.makeRandomAccess() }
    }

    /// Runs one statement and returns how many rows it changed (its command tag's count).
    @discardableResult
    public func execute(_ query: PostgresQuery) throws -> Int {
        try run(query, confirmingCommit: false).metadata.rows ?? 0
    }

    /// Runs one statement and returns its rows once its commit is confirmed: for writes somebody
    /// is told have succeeded (an audit batch, an admin change).
    ///
    /// `query` and `execute` send a lone statement over the extended protocol, which PostgreSQL
    /// commits at the Sync after it, after the statement's CommandComplete; PostgresNIO reports
    /// success on CommandComplete. A commit that fails in between (the backend terminated by an
    /// operator or by a fast shutdown, a deferred constraint) would be taken for done and what it
    /// wrote lost. Here a second statement follows on the same connection. It is answered only
    /// after the Sync; an error there makes PostgresNIO close the connection (an error after a
    /// complete statement), and a terminated backend has closed it, so it fails instead
    /// (docs/postgres.md, "When a write counts as done"). One round trip more, after the commit:
    /// no lock is held longer (BEGIN … COMMIT would hold the statement's row locks, which
    /// admissions wait for, over two more). A failure still leaves the outcome unknown (the
    /// commit may have happened), so what is written this way must be safe to write again, as
    /// audit batches are.
    @discardableResult
    public func queryCommitted(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try run(query, confirmingCommit: true).rows.map { $0.makeRandomAccess() }
    }

    /// `execute` whose success means committed, as `queryCommitted`.
    @discardableResult
    public func executeCommitted(_ query: PostgresQuery) throws -> Int {
        try run(query, confirmingCommit: true).metadata.rows ?? 0
    }

    /// What `queryCommitted` sends after the statement. Its text names it in pg_stat_activity.
    static let commitConfirmation = "SELECT 1 /* confirms the commit of the statement before */"

    /// One statement on a borrowed connection, and with `confirmingCommit` the confirmation after it.
    private func run(_ query: PostgresQuery, confirmingCommit: Bool) throws -> PostgresQueryResult {
        try withRetries {
            try withConnection { connection in
                let result = try connection.answer(query, logger: logger, within: answerTimeout)
                if confirmingCommit {
                    do {
                        _ = try connection.answer(PostgresQuery(unsafeSQL: Self.commitConfirmation), logger: logger, within: answerTimeout)
                    } catch {
                        throw UnconfirmedCommit(cause: Self.describe(error))
                    }
                }
                return result
            }
        }
    }

    /// Runs several statements on one connection inside one transaction (BEGIN … COMMIT, or
    /// ROLLBACK when `body` throws). For the command line's multi-statement changes and the
    /// migrations; the request path uses single statements only.
    public func transaction<T>(_ body: (PostgresTransaction) throws -> T) throws -> T {
        try withRetries {
            try withConnection { connection in
                let transaction = PostgresTransaction(connection: connection, logger: logger, answerTimeout: answerTimeout)
                try transaction.run("BEGIN")
                do {
                    let result = try body(transaction)
                    try transaction.commit()
                    return result
                } catch {
                    // Only a connection the error left open takes a ROLLBACK; a lost one has
                    // rolled back already.
                    if Self.canReuse(connection, after: error) { _ = try? transaction.run("ROLLBACK") }
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
            if Self.canReuse(connection, after: error) {
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
        if let error = error as? any ConnectionEnding { return StoreError(.io, error.description) }
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

    /// Whether `connection` may serve another statement after `error`: an ERROR leaves it open;
    /// FATAL and PANIC end it (a terminated backend), and so does a `ConnectionEnding` error.
    private static func canReuse(_ connection: PostgresConnection, after error: any Error) -> Bool {
        guard !connection.isClosed else { return false }
        guard let error = error as? PSQLError else { return error is StoreError }
        guard error.code == .server else { return false }
        let severity = error.serverInfo?[.severity] ?? "ERROR"
        return severity != "FATAL" && severity != "PANIC"
    }

    /// A PSQLError's code and server message only: its full description quotes the statement.
    static func describe(_ error: any Error) -> String {
        if let error = error as? any ConnectionEnding { return error.description }
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
    let answerTimeout: TimeAmount?

    @discardableResult
    public func query(_ query: PostgresQuery) throws -> [PostgresRandomAccessRow] {
        try connection.answer(query, logger: logger, within: answerTimeout).rows.map { $0.makeRandomAccess() }
    }

    @discardableResult
    public func execute(_ query: PostgresQuery) throws -> Int {
        try connection.answer(query, logger: logger, within: answerTimeout).metadata.rows ?? 0
    }

    func run(_ sql: String) throws {
        _ = try connection.answer(PostgresQuery(unsafeSQL: sql), logger: logger, within: answerTimeout)
    }

    /// COMMIT, which answers ROLLBACK instead of failing when the transaction had already failed.
    func commit() throws {
        let tag = try connection.answer(PostgresQuery(unsafeSQL: "COMMIT"), logger: logger, within: answerTimeout).metadata.command
        guard tag == "COMMIT" else { throw StoreError(.io, "the transaction was rolled back (\(tag))") }
    }
}

/// Sending a statement and waiting for its answer, for at most a while. PostgresNIO writes a
/// statement to its channel without a promise for the write, so a statement written after the
/// connection has closed (its handlers already gone: a backend terminated between two statements)
/// is dropped and never answered, and a plain `wait()` would block the worker's request thread or
/// its audit writer for good. So the statement is handed over on the connection's event loop,
/// where the check that the channel is open and the write cannot be separated by the close: an
/// open channel's handler takes the statement, and fails it if the connection closes later. The
/// wait is still bounded, for a server that stops answering on an open connection. Either way the
/// caller gets `.io` and the connection is dropped.
enum StatementAnswer {
    struct Missing: ConnectionEnding {
        let sql: String
        /// nil: not sent, its connection had closed.
        let timeout: TimeAmount?
        var description: String {
            // The statement's first word only (never a value: values travel as binds).
            let verb = sql.prefix { !$0.isWhitespace }.prefix(24)
            guard let timeout else { return "\(verb) was not sent: its database connection had closed" }
            return "the database did not answer \(verb) within \(timeout.nanoseconds / 1_000_000) ms"
        }
    }
}

/// A failure after which the connection is dropped, whatever its state, and the caller gets
/// `.io` with `description` (which quotes no value).
protocol ConnectionEnding: Error, CustomStringConvertible {}

/// `queryCommitted`'s confirmation failed: the statement's commit may or may not have happened.
struct UnconfirmedCommit: ConnectionEnding {
    let cause: String
    var description: String { "the commit was not confirmed: \(cause)" }
}

extension PostgresConnection {
    func answer(_ query: PostgresQuery, logger: Logger, within timeout: TimeAmount?) throws -> PostgresQueryResult {
        let loop = eventLoop
        let future = loop.flatSubmit { () -> EventLoopFuture<PostgresQueryResult> in
            // On the event loop: a channel still active here takes the write below at once.
            guard !self.isClosed else { return loop.makeFailedFuture(StatementAnswer.Missing(sql: query.sql, timeout: nil)) }
            return self.query(query, logger: logger)
        }
        guard let timeout else { return try future.wait() }
        let answered = loop.makePromise(of: PostgresQueryResult.self)
        let timer = loop.scheduleTask(in: timeout) { answered.fail(StatementAnswer.Missing(sql: query.sql, timeout: timeout)) }
        future.cascade(to: answered)
        answered.futureResult.whenComplete { _ in timer.cancel() }
        return try answered.futureResult.wait()
    }
}
