import Foundation
import GatewayCore
import Synchronization
import Testing
@testable import GatewayStore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("Backup and check")
struct GatewayStoreBackupTests {
    /// A store with an org, two projects, three keys and `auditRows` audit rows.
    private func populated(auditRows: Int = 3000) throws -> TestDatabase {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        let web = try store.createProject(orgName: "acme", name: "web")
        let api = try store.createProject(orgName: "acme", name: "api")
        let (key, _) = try store.createKey(projectID: web.id, name: "a")
        _ = try store.createKey(projectID: web.id, name: "b")
        _ = try store.createKey(projectID: api.id, name: "c")
        var batch: [AuditRecord] = []
        for index in 0..<auditRows {
            batch.append(makeRecord("req-\(index)", time: Date(timeIntervalSince1970: 1_750_000_000 + Double(index)),
                                    projectID: web.id, keyID: key.id, status: index % 7 == 0 ? 502 : 200))
            if batch.count == 500 { try store.insertAudit(batch); batch.removeAll() }
        }
        try store.insertAudit(batch)
        return database
    }

    /// Every audit row's content, in order, as one string (compared between source and copy).
    private func auditDigest(_ path: String) throws -> (count: Int64, digest: String) {
        let raw = try RawDatabase(path: path, readOnly: true)
        let count = try raw.integer("SELECT count(*) FROM audit_log") ?? -1
        let rows = try raw.strings("""
            SELECT seq, request_id, time_ms, project_id, key_id, status, ifnull(error_code, ''), prompt_tokens,
                   completion_tokens, ifnull(cost_usd, ''), latency_ms FROM audit_log ORDER BY seq
            """)
        var hasher = Hasher()  // same process: a stable seed for both sides
        for row in rows { hasher.combine(row.map { $0 ?? "∅" }.joined(separator: "|")) }
        return (count, String(hasher.finalize()))
    }

    private func counts(_ path: String) throws -> [Int64] {
        let raw = try RawDatabase(path: path, readOnly: true)
        return try ["orgs", "projects", "gateway_keys", "audit_log", "usage_hourly", "prices"].map {
            try raw.integer("SELECT count(*) FROM \($0)") ?? -1
        }
    }

    @Test(arguments: [BackupMethod.vacuumInto, .onlinePages(pagesPerStep: 50, pauseMilliseconds: 0)])
    func theCopyEqualsTheSourceAndStandsAlone(method: BackupMethod) throws {
        let database = try populated()
        let copy = database.folder.path("copy.db")
        let summary = try GatewayStore.backup(database: database.path, to: copy, method: method)
        #expect(summary.auditRows == 3000)
        #expect(summary.schemaVersion == GatewayStore.expectedSchemaVersion)
        #expect(summary.pages > 10)
        #expect(summary.bytes == summary.pages * 4096)
        #expect(try counts(copy) == counts(database.path))
        let source = try auditDigest(database.path), copied = try auditDigest(copy)
        #expect(copied.count == 3000)
        #expect(copied.digest == source.digest)

        // Stands alone: rollback-journal header (bytes 18 and 19 are 1, not WAL's 2), no -wal,
        // no leftover .tmp, and private like the database (it holds provider keys).
        let header = try Data(contentsOf: URL(fileURLWithPath: copy)).prefix(20)
        #expect(header[18] == 1 && header[19] == 1)
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"))
        #expect(!FileManager.default.fileExists(atPath: copy + ".tmp"))
        var info = stat()
        #expect(stat(copy, &info) == 0 && info.st_mode & 0o777 == 0o600)

        let check = GatewayStore.check(database: copy)
        #expect(check.healthy, "\(check.problems)")
        #expect(check.integrity == ["ok"])
        #expect(check.auditRows == 3000 && check.keys == 3 && check.projects == 2 && check.orgs == 1)
        #expect(check.schemaVersion == GatewayStore.expectedSchemaVersion)
        // The gateway can open and use it as its database.
        let reopened = try GatewayStore(path: copy)
        #expect(try reopened.migrate() == [])
        #expect(try reopened.auditRows(AuditQuery()).count == 3000)
    }

    @Test func refusesToOverwriteUnlessForced() throws {
        let database = try populated(auditRows: 10)
        let copy = database.folder.path("copy.db")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: copy))
        #expect(throws: StoreError.self) { try GatewayStore.backup(database: database.path, to: copy) }
        #expect(try String(contentsOfFile: copy, encoding: .utf8) == "precious")
        #expect(!FileManager.default.fileExists(atPath: copy + ".tmp"))
        // A leftover PATH.tmp (another backup running, or one that died) is refused too.
        try Data().write(to: URL(fileURLWithPath: database.folder.path("other.db.tmp")))
        #expect(throws: StoreError.self) { try GatewayStore.backup(database: database.path, to: database.folder.path("other.db")) }
        #expect(throws: StoreError.self) { try GatewayStore.backup(database: database.path, to: database.path, force: true) }

        let summary = try GatewayStore.backup(database: database.path, to: copy, force: true)
        #expect(summary.auditRows == 10)
        #expect(GatewayStore.check(database: copy).healthy)
        _ = try GatewayStore.backup(database: database.path, to: database.folder.path("other.db"), force: true)
        #expect(GatewayStore.check(database: database.folder.path("other.db")).healthy)
        #expect(throws: StoreError.self) { try GatewayStore.backup(database: database.folder.path("missing.db"), to: copy + "2") }
    }

    /// The measurement behind the default (docs/operations.md): while another connection commits
    /// audit batches, the page-by-page backup starts over after each commit and does not finish;
    /// VACUUM INTO copies one snapshot and does.
    @Test func underConcurrentWritesOnlyVacuumIntoFinishes() throws {
        let database = try populated(auditRows: 20000)
        let writer = try database.openAnother()
        let stop = ManagedAtomicFlag()
        let written = Collector<Int>()
        let thread = Thread {
            var index = 0
            while !stop.isSet {
                let batch = (0..<5).map { makeRecord("live-\(index)-\($0)") }
                try? writer.insertAudit(batch)
                index += 1
                written.append(index)
                usleep(2000)  // ~500 commits a second, about what a loaded gateway's writers do
            }
        }
        thread.start()
        defer { stop.set() }
        usleep(50_000)

        var pagesOutcome = "finished"
        var pagesRestarts = 0
        do {
            let summary = try GatewayStore.backup(database: database.path, to: database.folder.path("pages.db"),
                                                  method: .onlinePages(pagesPerStep: 100, pauseMilliseconds: 5),
                                                  timeoutSeconds: 3)
            pagesRestarts = summary.restarts
        } catch let error as StoreError {
            pagesOutcome = error.message
        }
        let before = try database.store.connection.queryFirst("SELECT count(*) FROM audit_log") { $0.int64(0) } ?? 0
        let vacuum = try GatewayStore.backup(database: database.path, to: database.folder.path("vacuum.db"))
        let after = try database.store.connection.queryFirst("SELECT count(*) FROM audit_log") { $0.int64(0) } ?? 0
        stop.set()
        thread.join()
        print("backup under writes: backup-api(100 pages/step, 5 ms): \(pagesOutcome), restarts \(pagesRestarts); "
              + "vacuum-into: \(vacuum.pages) pages in \(String(format: "%.3f", vacuum.seconds)) s, "
              + "\(vacuum.auditRows) rows (live \(before)…\(after)); \(written.values.count) writer commits")
        #expect(pagesOutcome != "finished" || pagesRestarts > 0)
        #expect(vacuum.auditRows >= before && vacuum.auditRows <= after)
        #expect(before > 20000)  // the writer really was writing
        #expect(GatewayStore.check(database: database.folder.path("vacuum.db")).healthy)
    }

    @Test func checkFailsOnACorruptedCopy() throws {
        let database = try populated()
        let copy = database.folder.path("copy.db")
        let summary = try GatewayStore.backup(database: database.path, to: copy)
        // Overwrite three whole pages in the middle of the file with garbage.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: copy))
        try handle.seek(toOffset: UInt64(summary.pages / 2) * 4096)
        handle.write(Data(repeating: 0xA5, count: 3 * 4096))
        try handle.close()
        let check = GatewayStore.check(database: copy)
        #expect(!check.healthy)
        #expect(check.integrity != ["ok"])
        #expect(check.problems.contains { $0.contains("integrity_check") })
        let quick = GatewayStore.check(database: copy, quick: true)
        #expect(!quick.healthy)
    }

    @Test func checkFailsOnANewerOrOlderSchema() throws {
        let database = try populated(auditRows: 5)
        let newer = GatewayStore.expectedSchemaVersion + 1
        try database.store.connection.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', 0)",
                                              [.integer(Int64(newer))])
        let tooNew = GatewayStore.check(database: database.path)
        #expect(!tooNew.healthy)
        #expect(tooNew.schemaVersion == newer)
        #expect(tooNew.unknownMigrations == [newer])
        #expect(tooNew.problems.contains { $0.contains("newer than this binary") })
        #expect(tooNew.integrity == ["ok"])

        try database.store.connection.execute("DELETE FROM schema_migrations WHERE version >= ?",
                                              [.integer(Int64(GatewayStore.expectedSchemaVersion))])
        let tooOld = GatewayStore.check(database: database.path)
        #expect(!tooOld.healthy)
        #expect(tooOld.missingMigrations == [GatewayStore.expectedSchemaVersion])
        #expect(tooOld.problems.contains { $0.contains("deploxa-gateway migrate") })

        try database.store.connection.execute("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'admin', 0)",
                                              [.integer(Int64(GatewayStore.expectedSchemaVersion))])
        #expect(GatewayStore.check(database: database.path).healthy)
    }

    @Test func checkNeverCreatesOrWritesTheFile() throws {
        let folder = try TemporaryFolder()
        let missing = folder.path("missing.db")
        let result = GatewayStore.check(database: missing)
        #expect(!result.healthy)
        #expect(!FileManager.default.fileExists(atPath: missing))

        let database = try populated(auditRows: 5)
        database.store.close()  // a cleanly closed WAL database: no -wal left
        let before = try Data(contentsOf: URL(fileURLWithPath: database.path))
        #expect(GatewayStore.check(database: database.path).healthy)
        #expect(try Data(contentsOf: URL(fileURLWithPath: database.path)) == before)
    }
}

/// A flag one thread sets and another polls.
final class ManagedAtomicFlag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

extension Thread {
    /// Waits until the thread's main has returned (polling; tests only).
    func join() { while !isFinished { usleep(1000) } }
}
