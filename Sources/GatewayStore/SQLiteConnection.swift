import CSQLite
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One connection to the shared database file, set up the way several processes can share it:
/// WAL (readers never block the writer), `synchronous=NORMAL` (no fsync per commit; a process
/// crash loses nothing committed), foreign keys on, the WAL trimmed to 64 MB after checkpoints,
/// a busy handler with short sleeps (see `BusyWaiter`), and the rollups' histogram merge function
/// (`LatencyHistogram`).
///
/// A `ConnectionLock` serializes all use, so one connection may be shared by threads; statements
/// are prepared once per SQL text and reused. Every write goes through `writeTransaction`,
/// which starts with `BEGIN IMMEDIATE`: a deferred transaction that later upgrades to a write
/// can fail with SQLITE_BUSY that no busy handler can resolve.
public final class SQLiteConnection: @unchecked Sendable {
    public let path: String
    public let busyTimeoutMilliseconds: Int

    private let lock = ConnectionLock()
    private var database: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var savepointDepth = 0
    private let busyWaiter: BusyWaiter

    /// Opens (and creates, mode 0600, if missing) the database file at `path`.
    public init(path: String, busyTimeoutMilliseconds: Int = 5000) throws {
        self.path = path
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        busyWaiter = BusyWaiter(timeoutMilliseconds: busyTimeoutMilliseconds)

        try SQLiteConnection.createPrivateFile(at: path)
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(handle)
            throw StoreError.sqlite(code, "cannot open database \(path): \(message)")
        }
        database = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_handler(handle, { context, attempt in
            guard let context else { return 0 }
            return Unmanaged<BusyWaiter>.fromOpaque(context).takeUnretainedValue().shouldRetry(attempt: attempt) ? 1 : 0
        }, Unmanaged.passUnretained(busyWaiter).toOpaque())

        do {
            let registered = LatencyHistogram.register(on: handle)
            guard registered == SQLITE_OK else { throw StoreError.sqlite(registered, "cannot register the histogram function") }
            let mode = try enableWAL()
            guard mode?.lowercased() == "wal" else {
                throw StoreError(.io, "cannot enable WAL on \(path) (journal_mode is \(mode ?? "unknown"))")
            }
            _ = try pragma("synchronous=NORMAL")
            _ = try pragma("foreign_keys=ON")
            _ = try pragma("journal_size_limit=67108864")
            // Database pages read through a memory map, not a pread each: a commit by any other
            // process empties every connection's page cache, so each transaction reads its pages
            // again. (Not on the request path's connection: `GatewayStore.tuneForTheRequestPath`.)
            _ = try pragma("mmap_size=268435456")
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// Finalizes every cached statement and closes the file. Later calls throw `.io`.
    public func close() {
        lock.enter()
        defer { lock.leave() }
        for statement in statements.values { sqlite3_finalize(statement) }
        statements.removeAll()
        if let database { sqlite3_close_v2(database) }
        database = nil
    }

    // MARK: - Statements

    /// Runs `body` with the cached prepared statement for `sql`, then resets it and clears its
    /// bindings, whatever `body` did.
    public func withStatement<R>(_ sql: String, _ body: (SQLiteStatement) throws -> R) throws -> R {
        lock.enter()
        defer { lock.leave() }
        let database = try openDatabase()
        let handle = try preparedStatement(sql, in: database)
        defer {
            sqlite3_reset(handle)
            sqlite3_clear_bindings(handle)
        }
        return try body(SQLiteStatement(handle: handle, database: database))
    }

    /// Runs one statement to completion, ignoring any rows.
    public func execute(_ sql: String, _ values: [SQLValue] = []) throws {
        try withStatement(sql) { statement in
            try statement.bind(values)
            while try statement.step() {}
        }
    }

    /// Runs one statement and maps every row.
    public func query<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (SQLiteRow) throws -> T) throws -> [T] {
        try withStatement(sql) { statement in
            try statement.bind(values)
            var results: [T] = []
            while try statement.step() { results.append(try map(statement.row)) }
            return results
        }
    }

    /// Runs one statement and maps its first row, if any.
    public func queryFirst<T>(_ sql: String, _ values: [SQLValue] = [], _ map: (SQLiteRow) throws -> T) throws -> T? {
        try withStatement(sql) { statement in
            try statement.bind(values)
            return try statement.step() ? try map(statement.row) : nil
        }
    }

    /// Runs several `;`-separated statements without bindings (migrations: constant SQL only).
    public func executeScript(_ sql: String) throws {
        lock.enter()
        defer { lock.leave() }
        let database = try openDatabase()
        var errorMessage: UnsafeMutablePointer<CChar>?
        let code = sqlite3_exec(database, sql, nil, nil, &errorMessage)
        if code != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(database))
            sqlite3_free(errorMessage)
            throw StoreError.sqlite(code, message)
        }
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE (call inside the same transaction).
    public var changes: Int {
        lock.enter()
        defer { lock.leave() }
        return database.map { Int(sqlite3_changes($0)) } ?? 0
    }

    /// The rowid of the last successful INSERT (call inside the same transaction).
    public var lastInsertRowID: Int64 {
        lock.enter()
        defer { lock.leave() }
        return database.map { sqlite3_last_insert_rowid($0) } ?? 0
    }

    // MARK: - Transactions

    /// Runs `body` in a write transaction started with `BEGIN IMMEDIATE`, so the write lock is
    /// taken (waiting through the busy handler) before anything is read. Commits when `body`
    /// returns, rolls back when it throws. A nested call becomes a savepoint of the outer one.
    /// Never do slow work (network calls) inside `body`: every writer in every process waits.
    public func writeTransaction<T>(_ body: () throws -> T) throws -> T {
        lock.enter()
        defer { lock.leave() }
        let database = try openDatabase()
        if savepointDepth > 0 {
            return try savepoint(depth: savepointDepth, body)
        }
        try run("BEGIN IMMEDIATE", on: database)
        savepointDepth = 1
        defer { savepointDepth = 0 }
        do {
            let result = try body()
            try run("COMMIT", on: database)
            return result
        } catch {
            if sqlite3_get_autocommit(database) == 0 { _ = sqlite3_exec(database, "ROLLBACK", nil, nil, nil) }
            throw error
        }
    }

    private func savepoint<T>(depth: Int, _ body: () throws -> T) throws -> T {
        let database = try openDatabase()
        let name = "sp\(depth)"
        try run("SAVEPOINT \(name)", on: database)
        savepointDepth += 1
        defer { savepointDepth -= 1 }
        do {
            let result = try body()
            try run("RELEASE \(name)", on: database)
            return result
        } catch {
            _ = sqlite3_exec(database, "ROLLBACK TO \(name); RELEASE \(name)", nil, nil, nil)
            throw error
        }
    }

    /// Whether a transaction is open on this connection.
    public var isInTransaction: Bool {
        lock.enter()
        defer { lock.leave() }
        return database.map { sqlite3_get_autocommit($0) == 0 } ?? false
    }

    // MARK: - Internals

    /// Runs a PRAGMA and returns the first column of its first row, if it has one.
    @discardableResult
    public func pragma(_ text: String) throws -> String? {
        lock.enter()
        defer { lock.leave() }
        let database = try openDatabase()
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v2(database, "PRAGMA \(text)", -1, &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw StoreError.sqlite(code, String(cString: sqlite3_errmsg(database)))
        }
        defer { sqlite3_finalize(handle) }
        let statement = SQLiteStatement(handle: handle, database: database)
        return try statement.step() ? statement.row.optionalString(0) : nil
    }

    /// Switching a new file to WAL takes an exclusive lock, and when two connections race for
    /// it SQLite returns SQLITE_BUSY at once instead of calling the busy handler (it would be a
    /// deadlock). So several processes opening a fresh file at the same moment retry here.
    private func enableWAL() throws -> String? {
        let waiter = BusyWaiter(timeoutMilliseconds: busyTimeoutMilliseconds)
        var attempt: Int32 = 0
        while true {
            do {
                return try pragma("journal_mode=WAL")
            } catch let error as StoreError where error.kind == .busy {
                guard waiter.shouldRetry(attempt: attempt) else { throw error }
                attempt += 1
            }
        }
    }

    private func openDatabase() throws -> OpaquePointer {
        guard let database else { throw StoreError(.io, "database \(path) is closed") }
        return database
    }

    private func preparedStatement(_ sql: String, in database: OpaquePointer) throws -> OpaquePointer {
        if let cached = statements[sql] { return cached }
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(database, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else {
            throw StoreError.sqlite(code, String(cString: sqlite3_errmsg(database)))
        }
        statements[sql] = handle
        return handle
    }

    private func run(_ sql: String, on database: OpaquePointer) throws {
        let code = sqlite3_exec(database, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw StoreError.sqlite(code, String(cString: sqlite3_errmsg(database))) }
    }

    /// SQLite creates files 0644 less the umask; the database holds provider keys, so a new
    /// file is created 0600 first (the -wal and -shm files copy the database file's mode).
    private static func createPrivateFile(at path: String) throws {
        guard !path.isEmpty, path != ":memory:", !path.hasPrefix("file:") else { return }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if descriptor >= 0 {
            #if canImport(Glibc)
            Glibc.close(descriptor)
            #else
            Darwin.close(descriptor)
            #endif
        } else if errno != EEXIST {
            let reason = String(cString: strerror(errno))
            throw StoreError(.io, "cannot create database \(path): \(reason)")
        }
    }
}

/// A connection's lock: the standard `Mutex` (taken and released in separate calls, hence its
/// manual-locking methods), re-entrant for the thread holding it, since a transaction's body runs
/// the connection's statements under the transaction's hold. Uncontended in a worker, whose one
/// request thread is the request path's only user of its connection.
final class ConnectionLock: Sendable {
    private let mutex = Mutex(())
    /// The holding thread (0: none); read without the mutex only to recognise the holder itself.
    private let holder = Atomic<UInt>(0)
    private let depth = Atomic<Int>(0)

    func enter() {
        let me = UInt(pthread_self())
        if holder.load(ordering: .acquiring) == me {
            depth.add(1, ordering: .relaxed)
            return
        }
        mutex._unsafeLock()
        holder.store(me, ordering: .releasing)
        depth.store(1, ordering: .relaxed)
    }

    func leave() {
        if depth.subtract(1, ordering: .relaxed).newValue > 0 { return }
        holder.store(0, ordering: .releasing)
        mutex._unsafeUnlock()
    }
}
