import Foundation
import GatewayCore
import Synchronization

/// All of the gateway's persistent state, behind intent-named methods: the rest of the program
/// never sees SQL. One instance holds one connection (serialized by a lock), so it is safe to
/// share between threads; a worker process typically keeps one for the request path and gives
/// `AuditWriter` another.
public final class GatewayStore: @unchecked Sendable {
    public let path: String
    /// The underlying connection, for modules of this package's store layer (limits, cache)
    /// that add their own statements.
    public let connection: SQLiteConnection
    /// Admissions counted by this connection: every 256th trims the expired rate buckets.
    let admissionCount = Atomic<Int>(0)

    /// Opens (creating if missing) the database file. Does not migrate: call `migrate()`.
    public init(path: String, busyTimeoutMilliseconds: Int = 5000) throws {
        self.path = path
        connection = try SQLiteConnection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds)
    }

    /// Sets up the connection a worker's request thread uses, which serves every request of the
    /// worker, so that nothing it does waits for the disk or for other processes' writes:
    /// - Its commits never checkpoint (copy the WAL back into the database file, with two
    ///   `fdatasync` calls the committing thread waits for). The audit writer's connection, whose
    ///   commits are the WAL's bulk anyway, and the janitor's periodic pass keep the WAL short.
    /// - Pages are read with `pread`, not through a memory map: in WAL mode SQLite drops a
    ///   connection's whole map whenever another connection has committed since its last
    ///   transaction, which under load is every transaction: a `munmap` (with a TLB shootdown on
    ///   every core the process runs on), an `fstat` and a new `mmap` each time.
    /// BENCHMARKS.md, "The request thread waits for nobody's disk".
    public func tuneForTheRequestPath() throws {
        _ = try connection.pragma("wal_autocheckpoint=0")
        _ = try connection.pragma("mmap_size=0")
    }

    /// Closes the connection; later calls throw `.io`.
    public func close() { connection.close() }

    // MARK: - Migrations

    private static let createMigrationsTable = """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at INTEGER NOT NULL
        )
        """

    /// Applies every pending migration, each in its own immediate transaction that re-checks
    /// `schema_migrations` once it holds the write lock, so several processes may call this at
    /// the same moment: exactly one applies each step. Returns the names applied by this call.
    @discardableResult
    public func migrate() throws -> [String] {
        if try pendingMigrationCount() == 0 { return [] }
        try connection.writeTransaction { try connection.executeScript(Self.createMigrationsTable) }
        var applied: [String] = []
        for migration in Migrations.all {
            let didApply = try connection.writeTransaction { () throws -> Bool in
                let done = try connection.queryFirst("SELECT 1 FROM schema_migrations WHERE version = ?",
                                                     [.integer(Int64(migration.version))]) { _ in true } ?? false
                if done { return false }
                try connection.executeScript(migration.sql)
                try connection.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                                       [.integer(Int64(migration.version)), .text(migration.name),
                                        .integer(StoreTime.nowMilliseconds())])
                return true
            }
            if didApply { applied.append(migration.name) }
        }
        // Upgrading a database that already has audit rows: its rollups start from them.
        if applied.contains("admin"), try !rollupsAreComplete() { try rebuildRollups() }
        return applied
    }

    /// How many known migrations this database has not had yet (all of them on a new file).
    public func pendingMigrationCount() throws -> Int {
        let hasTable = try connection.queryFirst(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") { _ in true } ?? false
        guard hasTable else { return Migrations.all.count }
        let versions = Set(try connection.query("SELECT version FROM schema_migrations") { $0.int(0) })
        return Migrations.all.filter { !versions.contains($0.version) }.count
    }

    // MARK: - Health

    /// A trivial read that touches the file (for `/healthz`).
    public func ping() throws {
        _ = try connection.queryFirst("SELECT count(*) FROM sqlite_master") { $0.int64(0) }
    }

    // MARK: - Settings

    public func setting(_ key: String) throws -> String? {
        try connection.queryFirst("SELECT value FROM settings WHERE key = ?", [.text(key)]) { $0.optionalString(0) } ?? nil
    }

    public func setSetting(_ key: String, to value: String?) throws {
        try connection.writeTransaction {
            try connection.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [.text(key), .string(value)])
        }
    }
}

/// Times are stored as integer milliseconds since the Unix epoch (UTC).
public enum StoreTime {
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    public static func date(_ milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    static func nowMilliseconds() -> Int64 { milliseconds(Date()) }
}
