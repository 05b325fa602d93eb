import Foundation
import Testing
@testable import GatewayStore

@Suite("SQLiteConnection")
struct ConnectionTests {
    @Test func opensInWALWithTheAgreedPragmas() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        #expect(try connection.pragma("journal_mode") == "wal")
        #expect(try connection.pragma("synchronous") == "1")  // NORMAL
        #expect(try connection.pragma("foreign_keys") == "1")
        #expect(try connection.pragma("journal_size_limit") == "67108864")
    }

    /// The request thread's connection never checkpoints (its commits leave the WAL growing for
    /// the audit writer's connection to copy back) and reads pages without a memory map.
    @Test func theRequestPathConnectionLeavesCheckpointsToOthers() throws {
        let folder = try TemporaryFolder()
        let tuned = try GatewayStore(path: folder.path("tuned.db"))
        try tuned.tuneForTheRequestPath()
        #expect(try tuned.connection.pragma("wal_autocheckpoint") == "0")
        #expect(try tuned.connection.pragma("mmap_size") == "0")
        let plain = try GatewayStore(path: folder.path("plain.db"))
        #expect(try plain.connection.pragma("wal_autocheckpoint") == "1000")

        // 60 commits of about 25 pages each: past the 1,000-page mark where a commit checkpoints.
        let blob = SQLValue.blob([UInt8](repeating: 7, count: 100_000))
        for store in [tuned, plain] {
            try store.connection.writeTransaction { try store.connection.execute("CREATE TABLE t (b BLOB)") }
            for _ in 0..<60 {
                try store.connection.writeTransaction { try store.connection.execute("INSERT INTO t VALUES (?)", [blob]) }
            }
        }
        func walPages(_ name: String) throws -> Int {
            let size = try FileManager.default.attributesOfItem(atPath: folder.path(name) + "-wal")[.size] as? Int ?? 0
            return size / 4096
        }
        // Checkpointed at 1,000 pages, the plain WAL started over; the tuned one holds every commit.
        #expect(try walPages("plain.db") < 1_100)
        #expect(try walPages("tuned.db") > 1_400)
        #expect(try tuned.connection.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 60)
    }

    @Test func newFileIsPrivate() throws {
        let folder = try TemporaryFolder()
        let path = folder.path()
        let connection = try SQLiteConnection(path: path)
        try connection.writeTransaction { try connection.execute("CREATE TABLE t (x)") }
        for file in [path, path + "-wal"] {
            let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(file)")
        }
    }

    @Test func bindsAndReadsEveryType() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        try connection.writeTransaction {
            try connection.execute("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n)")
            try connection.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                                   [.integer(Int64.max), .double(-1.5), .text("héllo ✓ \u{0}x"), .blob([0, 1, 255]), .null])
            try connection.execute("INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                                   [.integer(-7), .double(0), .text(""), .blob([]), .int(nil)])
        }
        let rows = try connection.query("SELECT i, d, s, b, n FROM t ORDER BY rowid") { row in
            (row.int64(0), row.double(1), row.string(2), row.blob(3), row.isNull(4), row.isNull(3))
        }
        #expect(rows.count == 2)
        #expect(rows[0].0 == Int64.max && rows[0].1 == -1.5 && rows[0].2 == "héllo ✓ \u{0}x" && rows[0].3 == [0, 1, 255] && rows[0].4)
        #expect(rows[1].0 == -7 && rows[1].2 == "" && rows[1].3 == [] && !rows[1].5)
    }

    @Test func rollsBackWhenTheBodyThrows() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        try connection.writeTransaction { try connection.execute("CREATE TABLE t (x UNIQUE)") }
        struct Boom: Error {}
        #expect(throws: Boom.self) {
            try connection.writeTransaction {
                try connection.execute("INSERT INTO t VALUES (1)")
                throw Boom()
            }
        }
        #expect(try connection.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 0)
        #expect(!connection.isInTransaction)
        // A constraint error inside the transaction: classified, rolled back, connection usable.
        let error = #expect(throws: StoreError.self) {
            try connection.writeTransaction {
                try connection.execute("INSERT INTO t VALUES (2)")
                try connection.execute("INSERT INTO t VALUES (2)")
            }
        }
        #expect(error?.kind == .constraint)
        #expect(try connection.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 0)
    }

    @Test func nestedTransactionIsASavepoint() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        struct Boom: Error {}
        try connection.writeTransaction {
            try connection.execute("CREATE TABLE t (x)")
            try connection.execute("INSERT INTO t VALUES (1)")
            _ = try? connection.writeTransaction {
                try connection.execute("INSERT INTO t VALUES (2)")
                throw Boom()
            }
            try connection.writeTransaction { try connection.execute("INSERT INTO t VALUES (3)") }
        }
        #expect(try connection.query("SELECT x FROM t ORDER BY x") { $0.int(0) } == [1, 3])
    }

    @Test func waitsForAnotherWriterThenSucceeds() throws {
        let folder = try TemporaryFolder()
        let first = try SQLiteConnection(path: folder.path())
        try first.writeTransaction { try first.execute("CREATE TABLE t (x)") }
        let second = try SQLiteConnection(path: folder.path(), busyTimeoutMilliseconds: 5000)
        let holding = DispatchSemaphore(value: 0)
        let thread = Thread {
            try? first.writeTransaction {
                try first.execute("INSERT INTO t VALUES (1)")
                holding.signal()
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        thread.start()
        holding.wait()
        let started = Date()
        try second.writeTransaction { try second.execute("INSERT INTO t VALUES (2)") }
        let waited = Date().timeIntervalSince(started)
        #expect(waited >= 0.1)
        // The lock was released after ~0.2 s; short polling steps notice within a few ms.
        #expect(waited < 1.0)
        #expect(try second.queryFirst("SELECT count(*) FROM t") { $0.int(0) } == 2)
    }

    @Test func reportsBusyAfterTheTimeout() throws {
        let folder = try TemporaryFolder()
        let first = try SQLiteConnection(path: folder.path())
        try first.writeTransaction { try first.execute("CREATE TABLE t (x)") }
        let second = try SQLiteConnection(path: folder.path(), busyTimeoutMilliseconds: 50)
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let thread = Thread {
            try? first.writeTransaction {
                holding.signal()
                release.wait()
            }
        }
        thread.start()
        holding.wait()
        let started = Date()
        let error = #expect(throws: StoreError.self) {
            try second.writeTransaction { try second.execute("INSERT INTO t VALUES (2)") }
        }
        let waited = Date().timeIntervalSince(started)
        release.signal()
        #expect(error?.kind == .busy)
        #expect(waited >= 0.045 && waited < 1.0)
        #expect(!second.isInTransaction)
    }

    @Test func statementsAreCachedAndReusable() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        try connection.writeTransaction { try connection.execute("CREATE TABLE t (x)") }
        try connection.writeTransaction {
            for value in 0..<100 { try connection.execute("INSERT INTO t VALUES (?)", [.integer(Int64(value))]) }
        }
        // An aborted read (first row only) must leave the statement reset for the next use.
        for _ in 0..<3 {
            #expect(try connection.queryFirst("SELECT x FROM t ORDER BY x") { $0.int(0) } == 0)
        }
        #expect(try connection.query("SELECT x FROM t WHERE x < ?", [.integer(5)]) { $0.int(0) } == [0, 1, 2, 3, 4])
    }

    @Test func closedConnectionThrows() throws {
        let folder = try TemporaryFolder()
        let connection = try SQLiteConnection(path: folder.path())
        connection.close()
        #expect(throws: StoreError.self) { try connection.execute("SELECT 1") }
    }

    @Test func unopenableFileIsAnIOError() throws {
        let error = #expect(throws: StoreError.self) {
            _ = try SQLiteConnection(path: "/nonexistent-folder-\(UUID().uuidString)/x.db")
        }
        #expect(error?.kind == .io)
    }
}
