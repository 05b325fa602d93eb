import CSQLite
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `GatewayStore.backup` copies the database (docs/operations.md, "Backup and restore").
public enum BackupMethod: Sendable, Equatable {
    /// `VACUUM INTO`: one read transaction, so the copy is one consistent snapshot whatever the
    /// workers write meanwhile (WAL: they are not blocked). The default.
    case vacuumInto
    /// SQLite's online backup API, `pagesPerStep` pages per `sqlite3_backup_step` with a pause
    /// between steps (`pagesPerStep` ≤ 0: the whole file in one step). A write by another
    /// connection between two steps makes it start over from the first page.
    case onlinePages(pagesPerStep: Int, pauseMilliseconds: Int)

    public var name: String {
        switch self {
        case .vacuumInto: return "vacuum-into"
        case .onlinePages(let pages, _): return pages > 0 ? "backup-api(\(pages) pages/step)" : "backup-api(one step)"
        }
    }
}

/// What `backup` wrote.
public struct BackupSummary: Sendable {
    public var path: String
    public var bytes: Int64
    public var pages: Int64
    public var seconds: Double
    public var schemaVersion: Int?
    public var auditRows: Int64
    public var method: String
    /// Online backup API only: `sqlite3_backup_step` calls, and how often a write elsewhere
    /// sent the copy back to its first page.
    public var steps: Int
    public var restarts: Int
}

/// What `check` found. `healthy` when the file is intact and its schema is exactly this binary's.
public struct DatabaseCheck: Sendable {
    public var path: String
    public var quick: Bool
    /// "ok" alone when intact, else SQLite's messages (at most 100), or why the check could not run.
    public var integrity: [String]
    /// One line per row `PRAGMA foreign_key_check` returned.
    public var foreignKeyViolations: [String]
    /// The highest version recorded in `schema_migrations` (nil: none, or unreadable).
    public var schemaVersion: Int?
    public var expectedSchemaVersion: Int
    /// Versions this binary knows that the file has not had.
    public var missingMigrations: [Int]
    /// Versions the file has that this binary does not know (a newer binary migrated it).
    public var unknownMigrations: [Int]
    public var orgs: Int64?
    public var projects: Int64?
    public var keys: Int64?
    public var auditRows: Int64?
    /// Everything wrong, as sentences for the operator; empty when healthy.
    public var problems: [String]

    public var healthy: Bool { problems.isEmpty }
}

extension GatewayStore {
    /// The schema version this binary's migrations lead to.
    public static var expectedSchemaVersion: Int { Migrations.all.map(\.version).max() ?? 0 }

    /// Copies the database at `source` (which `serve` may be writing to) to `destination`: into
    /// `destination.tmp` (created 0600: the file holds provider keys), switched to rollback-journal
    /// mode so it stands alone without a -wal file, fsynced, then renamed over `destination` and
    /// the folder fsynced. Refuses an existing `destination` (or a leftover `.tmp`) unless `force`.
    /// Never writes to `source`.
    public static func backup(database source: String, to destination: String, force: Bool = false,
                              method: BackupMethod = .vacuumInto, timeoutSeconds: Double = 600) throws -> BackupSummary {
        let started = BusyWaiter.monotonicNanoseconds()
        var sourceInfo = stat()
        guard stat(source, &sourceInfo) == 0 else {
            throw StoreError(.notFound, "no database at \(source)")
        }
        var destinationInfo = stat()
        if stat(destination, &destinationInfo) == 0 {
            if destinationInfo.st_dev == sourceInfo.st_dev && destinationInfo.st_ino == sourceInfo.st_ino {
                throw StoreError(.invalidArgument, "\(destination) is the database itself")
            }
            guard force else { throw StoreError(.invalidArgument, "\(destination) exists (use --force to replace it)") }
        }
        let temporary = destination + ".tmp"
        if force { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary + suffix) } }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = errno == EEXIST ? "it exists (another backup running, or left over: use --force)"
                                         : String(cString: strerror(errno))
            throw StoreError(.io, "cannot create \(temporary): \(reason)")
        }
        closeDescriptor(descriptor)
        var keepTemporary = false
        defer { if !keepTemporary { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(temporary + suffix) } } }

        let database = try RawDatabase(path: source, readOnly: true)
        var steps = 0, restarts = 0
        switch method {
        case .vacuumInto:
            try database.run("VACUUM INTO ?", [.text(temporary)])
        case .onlinePages(let pagesPerStep, let pause):
            (steps, restarts) = try copyPages(from: database, to: temporary, pagesPerStep: pagesPerStep,
                                              pauseMilliseconds: pause, timeoutSeconds: timeoutSeconds, started: started)
        }
        database.close()

        // The copy on its own: rollback-journal mode (a backup-API copy carries the source's WAL
        // flag), and what the summary reports.
        let copy = try RawDatabase(path: temporary, readOnly: false)
        let mode = try copy.strings("PRAGMA journal_mode=DELETE").first?.first ?? nil
        guard mode?.lowercased() == "delete" else {
            throw StoreError(.io, "cannot switch \(temporary) to rollback-journal mode (journal_mode is \(mode ?? "unknown"))")
        }
        let pages = try copy.integer("PRAGMA page_count") ?? 0
        let schemaVersion = try copy.schemaVersions().max()
        let auditRows = try copy.tableExists("audit_log") ? (try copy.integer("SELECT count(*) FROM audit_log") ?? 0) : 0
        copy.close()

        try fsyncPath(temporary, directory: false)
        guard rename(temporary, destination) == 0 else {
            throw StoreError(.io, "cannot rename \(temporary) to \(destination): \(String(cString: strerror(errno)))")
        }
        keepTemporary = true
        try fsyncPath((destination as NSString).deletingLastPathComponent.isEmpty
                      ? "." : (destination as NSString).deletingLastPathComponent, directory: true)
        var written = stat()
        _ = stat(destination, &written)
        let seconds = Double(BusyWaiter.monotonicNanoseconds() - started) / 1e9
        return BackupSummary(path: destination, bytes: Int64(written.st_size), pages: pages, seconds: seconds,
                             schemaVersion: schemaVersion, auditRows: auditRows, method: method.name,
                             steps: steps, restarts: restarts)
    }

    /// The online backup API loop. A restart shows as `sqlite3_backup_remaining` growing again.
    private static func copyPages(from source: RawDatabase, to path: String, pagesPerStep: Int, pauseMilliseconds: Int,
                                  timeoutSeconds: Double, started: UInt64) throws -> (steps: Int, restarts: Int) {
        let destination = try RawDatabase(path: path, readOnly: false)
        defer { destination.close() }
        guard let backup = sqlite3_backup_init(destination.handle, "main", source.handle, "main") else {
            throw StoreError.sqlite(sqlite3_errcode(destination.handle), destination.message)
        }
        var steps = 0, restarts = 0
        var lastRemaining = Int32.max
        var code: Int32 = SQLITE_OK
        let deadline = started + UInt64(max(0, timeoutSeconds) * 1e9)
        while true {
            code = sqlite3_backup_step(backup, Int32(pagesPerStep > 0 ? pagesPerStep : -1))
            steps += 1
            if code == SQLITE_DONE { break }
            guard code == SQLITE_OK || code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED else { break }
            let remaining = sqlite3_backup_remaining(backup)
            if code == SQLITE_OK && lastRemaining != Int32.max && remaining > lastRemaining { restarts += 1 }
            if code == SQLITE_OK { lastRemaining = remaining }
            if BusyWaiter.monotonicNanoseconds() > deadline {
                sqlite3_backup_finish(backup)
                throw StoreError(.busy, "the page-by-page backup did not finish in \(Int(timeoutSeconds)) s "
                                 + "(\(steps) steps, restarted \(restarts) times by writes)")
            }
            if pauseMilliseconds > 0 { usleep(UInt32(pauseMilliseconds) * 1000) }
        }
        let finished = sqlite3_backup_finish(backup)
        if code != SQLITE_DONE { throw StoreError.sqlite(code, "backup step failed: \(destination.message)") }
        if finished != SQLITE_OK { throw StoreError.sqlite(finished, destination.message) }
        return (steps, restarts)
    }

    private static func fsyncPath(_ path: String, directory: Bool) throws {
        let descriptor = open(path, (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError(.io, "cannot open \(path) to fsync: \(String(cString: strerror(errno)))") }
        defer { closeDescriptor(descriptor) }
        guard fsync(descriptor) == 0 else { throw StoreError(.io, "fsync \(path): \(String(cString: strerror(errno)))") }
    }

    // MARK: - Check

    /// Opens `path` read-only (never creating, migrating or writing it) and checks it:
    /// `PRAGMA integrity_check` (`quick_check` when `quick`), `PRAGMA foreign_key_check`, the
    /// schema version against this binary's, and row counts. Never throws: what cannot be read
    /// is a problem of the result.
    public static func check(database path: String, quick: Bool = false) -> DatabaseCheck {
        var result = DatabaseCheck(path: path, quick: quick, integrity: [], foreignKeyViolations: [], schemaVersion: nil,
                                   expectedSchemaVersion: expectedSchemaVersion, missingMigrations: [], unknownMigrations: [],
                                   orgs: nil, projects: nil, keys: nil, auditRows: nil, problems: [])
        var info = stat()
        guard stat(path, &info) == 0 else {
            result.problems.append("no database at \(path)")
            return result
        }
        let database: RawDatabase
        do {
            database = try RawDatabase(path: path, readOnly: true)
        } catch {
            result.problems.append("cannot open \(path): \(Self.message(error))")
            return result
        }
        defer { database.close() }

        do {
            result.integrity = try database.strings(quick ? "PRAGMA quick_check(100)" : "PRAGMA integrity_check(100)")
                .map { $0.first.flatMap { $0 } ?? "" }
            if result.integrity != ["ok"] {
                result.problems.append("\(quick ? "quick_check" : "integrity_check") found \(result.integrity.count) problem(s)")
            }
        } catch {
            result.integrity = [Self.message(error)]
            result.problems.append("\(quick ? "quick_check" : "integrity_check") failed: \(Self.message(error))")
        }
        do {
            result.foreignKeyViolations = try database.strings("PRAGMA foreign_key_check").map { row in
                let cells = row.map { $0 ?? "NULL" }
                return "table \(cells[0]) rowid \(cells[1]) → \(cells[2]) (constraint \(cells[3]))"
            }
            if !result.foreignKeyViolations.isEmpty {
                result.problems.append("foreign_key_check found \(result.foreignKeyViolations.count) violation(s)")
            }
        } catch {
            result.problems.append("foreign_key_check failed: \(Self.message(error))")
        }
        do {
            let versions = Set(try database.schemaVersions())
            let known = Set(Migrations.all.map(\.version))
            result.schemaVersion = versions.max()
            result.missingMigrations = known.subtracting(versions).sorted()
            result.unknownMigrations = versions.subtracting(known).sorted()
            if !result.unknownMigrations.isEmpty {
                result.problems.append("schema version \(result.schemaVersion ?? 0) is newer than this binary's "
                                       + "\(expectedSchemaVersion): use a deploxa-gateway at least as new as the one that migrated it")
            } else if !result.missingMigrations.isEmpty {
                result.problems.append("schema version \(result.schemaVersion.map(String.init) ?? "none") is older than this "
                                       + "binary's \(expectedSchemaVersion): run `deploxa-gateway migrate`")
            }
        } catch {
            result.problems.append("cannot read schema_migrations: \(Self.message(error))")
        }
        func count(_ table: String) -> Int64? {
            guard (try? database.tableExists(table)) == true else { return nil }
            do {
                return try database.integer("SELECT count(*) FROM \(table)")
            } catch {
                result.problems.append("cannot count \(table): \(Self.message(error))")
                return nil
            }
        }
        result.orgs = count("orgs")
        result.projects = count("projects")
        result.keys = count("gateway_keys")
        result.auditRows = count("audit_log")
        return result
    }

    private static func message(_ error: Error) -> String {
        (error as? StoreError)?.message ?? "\(error)"
    }
}

/// `close(2)` (inside `GatewayStore`, `close` names the store's own method).
private func closeDescriptor(_ descriptor: Int32) {
    #if canImport(Glibc)
    _ = Glibc.close(descriptor)
    #else
    _ = Darwin.close(descriptor)
    #endif
}

/// A bare connection for copying and checking: none of `SQLiteConnection`'s set-up (which
/// creates the file and switches it to WAL, both writes). Single-threaded use only.
final class RawDatabase {
    private(set) var handle: OpaquePointer?

    init(path: String, readOnly: Bool) throws {
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX
        var opened: OpaquePointer?
        let code = sqlite3_open_v2(path, &opened, flags, nil)
        guard code == SQLITE_OK, let opened else {
            let message = opened.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(opened)
            throw StoreError.sqlite(code, "cannot open \(path): \(message)")
        }
        handle = opened
        sqlite3_extended_result_codes(opened, 1)
        sqlite3_busy_timeout(opened, 10_000)
    }

    deinit { close() }

    func close() {
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    var message: String { handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed" }

    /// Every row of `sql`, each column as text (NULL as nil).
    func strings(_ sql: String, _ values: [SQLValue] = []) throws -> [[String?]] {
        guard let handle else { throw StoreError(.io, "database is closed") }
        var prepared: OpaquePointer?
        let code = sqlite3_prepare_v2(handle, sql, -1, &prepared, nil)
        guard code == SQLITE_OK, let prepared else { throw StoreError.sqlite(code, message) }
        defer { sqlite3_finalize(prepared) }
        let statement = SQLiteStatement(handle: prepared, database: handle)
        try statement.bind(values)
        var rows: [[String?]] = []
        while try statement.step() {
            rows.append((0..<sqlite3_column_count(prepared)).map { column in
                sqlite3_column_text(prepared, column).map { String(cString: $0) }
            })
        }
        return rows
    }

    func run(_ sql: String, _ values: [SQLValue] = []) throws { _ = try strings(sql, values) }

    func integer(_ sql: String) throws -> Int64? {
        try strings(sql).first?.first.flatMap { $0 }.flatMap { Int64($0) }
    }

    func tableExists(_ name: String) throws -> Bool {
        !(try strings("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.text(name)])).isEmpty
    }

    func schemaVersions() throws -> [Int] {
        guard try tableExists("schema_migrations") else { return [] }
        return try strings("SELECT version FROM schema_migrations").compactMap { $0.first.flatMap { $0 }.flatMap { Int($0) } }
    }
}
