import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Audit retention and WAL upkeep")
struct RetentionTests {
    @Test func oldRowsGoNewStayUsageKeeps() throws {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        let project = try store.createProject(orgName: "acme", name: "web")
        let now = Date()
        var maker = RecordMaker(seed: 3)
        // 200 rows 100 to 95 days old, 150 from the last five days.
        let old = (0..<200).map { _ in maker.record(projects: [project, nil], start: now.addingTimeInterval(-100 * 86_400), spanSeconds: 5 * 86_400) }
        let recent = (0..<150).map { _ in maker.record(projects: [project, nil], start: now.addingTimeInterval(-5 * 86_400), spanSeconds: 5 * 86_400 - 60) }
        try store.insertAudit(old)
        try store.insertAudit(recent)
        let before = try UsageGrouping.allCases.map { try store.usage(groupBy: $0) }
        #expect(DirectTotals(before[0]) == DirectTotals(old + recent))

        let janitor = AuditJanitor(store: try database.openAnother(), retentionDays: 90, batchSize: 7, interval: 3600,
                                   pauseBetweenBatches: 0)
        defer { janitor.close() }
        #expect(janitor.runPass(now: now) == 200)
        #expect(try store.auditCount() == 150)
        let left = Set(try store.auditRows(AuditQuery()).map(\.record.requestID))
        #expect(left == Set(recent.map(\.requestID)))
        #expect(try store.deleteAuditRows(olderThan: now.addingTimeInterval(-90 * 86_400)) == 0)
        #expect(try UsageGrouping.allCases.map { try store.usage(groupBy: $0) } == before)

        // A rebuild after retention keeps the buckets whose rows are gone.
        #expect(try store.rebuildRollups() == 150)
        #expect(try UsageGrouping.allCases.map { try store.usage(groupBy: $0) } == before)

        // Keeping forever deletes nothing.
        let keeper = AuditJanitor(store: try database.openAnother(), retentionDays: 0, interval: 3600)
        defer { keeper.close() }
        #expect(keeper.runPass(now: now.addingTimeInterval(1000 * 86_400)) == 0)
        #expect(try store.auditCount() == 150)
    }

    @Test func checkpointIsPassiveAndPrunesSessionsToo() throws {
        let database = try TestDatabase()
        let store = database.store
        try store.insertAudit((0..<50).map { makeRecord("c\($0)") })
        let result = try store.checkpointWAL()
        #expect(result.walFrames >= result.checkpointedFrames)
        #expect(try store.connection.pragma("journal_size_limit") == "67108864")
        // A reader holding a snapshot does not make the checkpoint wait.
        let reader = try database.openAnother()
        try reader.connection.executeScript("BEGIN; SELECT count(*) FROM audit_log;")
        try store.insertAudit([makeRecord("after")])
        let started = Date()
        _ = try store.checkpointWAL()
        #expect(Date().timeIntervalSince(started) < 1)
        try reader.connection.executeScript("COMMIT")

        let (token, _) = try store.createAdminToken(name: nil, orgName: nil, projectSlug: nil, readOnly: true)
        let session = try store.createAdminSession(tokenID: token.id, lifetimeSeconds: 1)
        let janitor = AuditJanitor(store: store, retentionDays: 90, interval: 3600)
        defer { janitor.close() }
        janitor.runPass(now: Date().addingTimeInterval(5))
        #expect(try store.connection.queryFirst("SELECT count(*) FROM admin_sessions") { $0.int(0) } == 0)
        #expect(try store.adminSession(secret: session.secret) == nil)
    }
}
