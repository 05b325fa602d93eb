import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// Timings on a large database, run only when DEPLOXA_STORE_BENCH_DB names a migrated file (a
/// copy: the test writes to it). Prints what it measured; asserts nothing about speed.
@Suite("Store benchmarks", .enabled(if: ProcessInfo.processInfo.environment["DEPLOXA_STORE_BENCH_DB"] != nil))
struct StoreBenchmarkTests {
    /// To stderr: unbuffered, so a long run shows its progress.
    private func report(_ line: String) { FileHandle.standardError.write(Data((line + "\n").utf8)) }

    private func time(_ label: String, _ body: () throws -> Void) rethrows {
        let start = Date()
        try body()
        report(String(format: "bench %@: %.1f ms", label, Date().timeIntervalSince(start) * 1000))
    }

    @Test func auditPagesUsageAndInserts() throws {
        let store = try GatewayStore(path: ProcessInfo.processInfo.environment["DEPLOXA_STORE_BENCH_DB"]!)
        let newest = try #require(try store.connection.queryFirst("SELECT max(time_ms) FROM audit_log") { $0.int64(0) })
        let to = StoreTime.date(newest + 1), from = to.addingTimeInterval(-30 * 86_400)
        report("bench rows: \(try store.auditCount())")
        let filters: [(String, AuditFilter)] = [
            ("all", AuditFilter(from: from, to: to)),
            ("project", AuditFilter(projectID: 3, from: from, to: to)),
            ("org scope", AuditFilter(scope: .org(id: 2, name: "x"), from: from, to: to)),
            ("key", AuditFilter(keyID: "gk_7", from: from, to: to)),
            ("model", AuditFilter(model: "model3", from: from, to: to)),
            ("user (rare)", AuditFilter(user: "user7", from: from, to: to)),
            ("status 500 in project", AuditFilter(projectID: 8, status: 500, from: from, to: to)),
            ("no match", AuditFilter(user: "nobody", from: from, to: to)),
        ]
        for (label, filter) in filters {
            var page = try store.auditPage(filter, limit: 50, after: nil)
            try time("audit page 1 \(label) (\(page.rows.count) rows)") { page = try store.auditPage(filter, limit: 50, after: nil) }
            try time("audit page 2 \(label)") { _ = try store.auditPage(filter, limit: 50, after: page.next) }
        }
        try time("usage by model, 30 days") { _ = try store.usage(groupBy: .model, from: from, to: to) }
        try time("usage by user, 30 days") { _ = try store.usage(groupBy: .user, from: from, to: to) }
        try time("series hourly, 7 days") {
            _ = try store.usageSeries(bucket: .hour, groupBy: nil, scope: .installation, projectID: nil,
                                      from: to.addingTimeInterval(-7 * 86_400), to: to)
        }
        // The audit writer's cost: a 256-row batch (3 models, users and providers, one project),
        // the whole insertAudit and, apart, the rollups' Swift and SQL halves. Steady state: 10 rounds.
        var maker = RecordMaker(seed: 1)
        var whole = 0.0, swift = 0.0, sql = 0.0
        for _ in 0..<10 {
            let batch = (0..<256).map { _ in maker.record(projects: [nil], start: to, spanSeconds: 60) }
            var start = Date()
            try store.insertAudit(batch)
            whole += Date().timeIntervalSince(start)
            let again = (0..<256).map { _ in maker.record(projects: [nil], start: to, spanSeconds: 60) }
            start = Date()
            var rollups = RollupBatch()
            for record in again { rollups.add(record) }
            swift += Date().timeIntervalSince(start)
            start = Date()
            try store.connection.writeTransaction { try store.applyRollups(rollups) }
            sql += Date().timeIntervalSince(start)
        }
        var empty = 0.0
        for _ in 0..<10 {
            let start = Date()
            try store.connection.writeTransaction { try store.connection.execute("UPDATE rollup_state SET complete = complete WHERE id = 1") }
            empty += Date().timeIntervalSince(start)
        }
        do {
            let batch = (0..<256).map { _ in maker.record(projects: [nil], start: to, spanSeconds: 60) }
            var rollups = RollupBatch()
            for record in batch { rollups.add(record) }
            var perStatement: [String: Double] = [:]
            try store.connection.writeTransaction {
                for (key, totals) in rollups.totals {
                    let blob = totals.latency.encoded().map(SQLValue.blob) ?? .null
                    let values: [SQLValue] = [.text(key.kind.rawValue), .integer(key.bucket), .integer(key.projectID), .text(key.value),
                                              .integer(1), .integer(1), .integer(1), .integer(1), .integer(1), .integer(1), .integer(1), .integer(1), blob, .null]
                    let start = Date()
                    try store.connection.execute(key.table == .hourly ? GatewayStore.hourlyUpsert : GatewayStore.dailyUpsert, values)
                    perStatement["upsert \(key.table)", default: 0] += Date().timeIntervalSince(start)
                }
                for (key, time) in rollups.dimensions {
                    let start = Date()
                    try store.connection.execute(GatewayStore.dimensionUpsert, [.integer(key.projectID), .text(key.kind), .text(key.value), .integer(time)])
                    perStatement["dimension", default: 0] += Date().timeIntervalSince(start)
                }
            }
            report("bench statements: \(rollups.totals.count) upserts, \(perStatement.mapValues { ($0 * 1000 * 10).rounded() / 10 })")
        }
        report(String(format: "bench an almost empty write transaction: %.1f ms", empty * 100))
        report(String(format: "bench per 256-row batch: insertAudit %.1f ms, of which rollups ≈ Swift %.1f ms + SQL %.1f ms",
                      whole * 100, swift * 100, sql * 100))
        if ProcessInfo.processInfo.environment["DEPLOXA_STORE_BENCH_REBUILD"] != nil {
            try time("rebuildRollups") { report("bench folded \(try store.rebuildRollups())") }
        }
        try time("usage by model after rebuild, 30 days") { _ = try store.usage(groupBy: .model, from: from, to: to) }
        try time("dimensions") { _ = try store.dimensions(scope: .installation) }
    }
}
