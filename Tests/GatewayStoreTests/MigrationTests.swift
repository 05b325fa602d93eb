import Foundation
import Testing
@testable import GatewayStore

@Suite("Migrations")
struct MigrationTests {
    @Test func appliesOnceThenNothing() throws {
        let folder = try TemporaryFolder()
        let store = try GatewayStore(path: folder.path())
        #expect(try store.pendingMigrationCount() == Migrations.all.count)
        #expect(try store.migrate() == Migrations.all.map(\.name))
        #expect(try store.pendingMigrationCount() == 0)
        #expect(try store.migrate() == [])
        let reopened = try GatewayStore(path: folder.path())
        #expect(try reopened.migrate() == [])
        let recorded = try store.connection.query("SELECT version, name FROM schema_migrations ORDER BY version") {
            "\($0.int(0)):\($0.string(1))"
        }
        #expect(recorded == Migrations.all.map { "\($0.version):\($0.name)" })
    }

    @Test func versionsAreIncreasingAndUnique() {
        let versions = Migrations.all.map(\.version)
        #expect(versions == Array(1...versions.count))
        #expect(Set(Migrations.all.map(\.name)).count == versions.count)
    }

    @Test func createsTheAgreedTables() throws {
        let database = try TestDatabase()
        let tables = try database.store.connection.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name") { $0.string(0) }
        #expect(tables == ["admin_sessions", "admin_tokens", "audit_dimensions", "audit_log", "cache_entries", "cache_leases",
                          "circuit_breakers", "fallback_chains", "gateway_keys", "key_version", "monthly_totals", "orgs", "prices", "projects",
                          "provider_settings", "rate_buckets", "rollup_state", "schema_migrations", "settings", "settings_version",
                          "usage_daily", "usage_hourly"])
        let indexes = try database.store.connection.query(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_log' AND sql IS NOT NULL ORDER BY name") {
            $0.string(0)
        }
        #expect(indexes == ["audit_log_key_time", "audit_log_org_time", "audit_log_project_time", "audit_log_time"])
    }

    @Test func concurrentMigrationsApplyEachStepOnce() throws {
        for _ in 0..<20 {  // a fresh file each time: the WAL switch races too
            let folder = try TemporaryFolder()
            let path = folder.path()
            let results = Collector<Result<[String], StoreError>>()
            runOnThreads(6) { _ in
                do {
                    let store = try GatewayStore(path: path)
                    results.append(.success(try store.migrate()))
                } catch let error as StoreError {
                    results.append(.failure(error))
                } catch {
                    results.append(.failure(StoreError(.other, "\(error)")))
                }
            }
            let outcomes = results.values
            #expect(outcomes.count == 6)
            let applied = outcomes.compactMap { try? $0.get() }
            #expect(applied.count == 6, "\(outcomes)")
            #expect(applied.flatMap { $0 }.sorted() == Migrations.all.map(\.name).sorted())
            let store = try GatewayStore(path: path)
            #expect(try store.pendingMigrationCount() == 0)
            #expect(try store.connection.pragma("journal_mode") == "wal")
        }
    }

    @Test func pingWorks() throws {
        let database = try TestDatabase()
        try database.store.ping()
        try database.store.setSetting("a", to: "1")
        try database.store.setSetting("a", to: "2")
        #expect(try database.store.setting("a") == "2")
        #expect(try database.store.setting("missing") == nil)
    }
}
