import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Audit paging")
struct AuditPagingTests {
    @Test func cursorTokens() {
        let cursor = AuditCursor(timeMs: 1_750_000_000_123, seq: 42)
        #expect(AuditCursor(token: cursor.token) == cursor)
        for garbage in ["", "_", "1_", "_1", "1_2_3", "-1_2", "1_-2", "a_1", "1 _2", "99999999999999999999_1", "１_2"] {
            #expect(AuditCursor(token: garbage) == nil, "\(garbage)")
        }
    }

    private func walk(_ store: GatewayStore, _ filter: AuditFilter, limit: Int, candidateLimit: Int = 20_000,
                      between: (Int) throws -> Void = { _ in }) throws -> [AuditRow] {
        var rows: [AuditRow] = []
        var cursor: AuditCursor?
        var page = 0
        repeat {
            let result = try store.auditPage(filter, limit: limit, after: cursor, candidateLimit: candidateLimit)
            #expect(result.rows.count <= limit)
            rows += result.rows
            cursor = result.next
            page += 1
            try between(page)
        } while cursor != nil && page < 10_000
        return rows
    }

    private func isNewestFirst(_ rows: [AuditRow]) -> Bool {
        zip(rows, rows.dropFirst()).allSatisfy { a, b in
            let ta = StoreTime.milliseconds(a.record.time), tb = StoreTime.milliseconds(b.record.time)
            return ta > tb || (ta == tb && a.sequence > b.sequence)
        }
    }

    /// Rows that existed when the walk began come back exactly once, whatever is inserted meanwhile.
    @Test func everyRowOnceWhileRowsArrive() throws {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        let project = try store.createProject(orgName: "acme", name: "web")
        let base = Date(timeIntervalSince1970: 1_750_000_000)
        // Times repeat (ties broken by seq), some rows without a project.
        let initial = (0..<400).map { makeRecord("i\($0)", time: base.addingTimeInterval(Double($0 % 97)), projectID: $0 % 5 == 0 ? nil : project.id) }
        try store.insertAudit(initial)
        let other = try database.openAnother()
        var added = 0
        let rows = try walk(store, AuditFilter(), limit: 17) { page in
            // Newer, older and same-time rows arrive between pages.
            try other.insertAudit([makeRecord("n\(page)", time: base.addingTimeInterval(500)),
                                   makeRecord("o\(page)", time: base.addingTimeInterval(-Double(page))),
                                   makeRecord("s\(page)", time: base.addingTimeInterval(50))])
            added += 3
        }
        let ids = rows.map(\.record.requestID)
        #expect(Set(ids).count == ids.count, "no row twice")
        #expect(Set(initial.map(\.requestID)).isSubset(of: Set(ids)))
        #expect(isNewestFirst(rows))
        #expect(added > 0)

        // Scoped: only the project's rows, by the project index; the org scope likewise.
        let scoped = try walk(store, AuditFilter(scope: .project(id: project.id, orgID: project.orgID, slug: "acme/web")), limit: 50)
        #expect(scoped.allSatisfy { $0.record.projectID == project.id })
        #expect(scoped.count == initial.filter { $0.projectID != nil }.count)
        #expect(isNewestFirst(scoped))
        let org = try walk(store, AuditFilter(scope: .org(id: project.orgID, name: "acme")), limit: 1000)
        #expect(org.count == scoped.count)
    }

    @Test func unindexedFiltersExamineABoundedNumberOfRows() throws {
        let database = try TestDatabase()
        let store = database.store
        let base = Date(timeIntervalSince1970: 1_750_000_000)
        var records: [AuditRecord] = []
        for index in 0..<1000 {
            var record = makeRecord("u\(index)", time: base.addingTimeInterval(Double(index)),
                                    modelRequested: index % 100 == 0 ? "rare" : "gpt-4o", modelServed: nil,
                                    status: [200, 429, 500, 404][index % 4])
            record.user = index % 3 == 0 ? "alice" : "bob"
            record.provider = index % 2 == 0 ? "openai" : "anthropic"
            records.append(record)
        }
        try store.insertAudit(records)

        // At most 50 rows examined per call: pages come back short or empty, but the walk finds all.
        let first = try store.auditPage(AuditFilter(model: "rare"), limit: 20, after: nil, candidateLimit: 50)
        #expect(first.rows.count <= 1 && first.next != nil)
        let rare = try walk(store, AuditFilter(model: "rare"), limit: 20, candidateLimit: 50)
        #expect(rare.map(\.record.requestID) == stride(from: 900, through: 0, by: -100).map { "u\($0)" })

        let limited = try walk(store, AuditFilter(status: 429), limit: 30, candidateLimit: 100)
        #expect(limited.count == 250 && limited.allSatisfy { $0.record.status == 429 })
        let clientErrors = try walk(store, AuditFilter(statusClass: 4), limit: 64)
        #expect(clientErrors.count == 500)
        let combined = try walk(store, AuditFilter(provider: "openai", user: "alice", statusClass: 2,
                                                   from: base.addingTimeInterval(100), to: base.addingTimeInterval(700)), limit: 7, candidateLimit: 13)
        let expected = records.filter {
            $0.provider == "openai" && $0.user == "alice" && $0.status / 100 == 2
                && $0.time >= base.addingTimeInterval(100) && $0.time < base.addingTimeInterval(700)
        }
        #expect(combined.map(\.record.requestID) == expected.reversed().map(\.requestID))
        #expect(combined.first?.record == expected.last)
        #expect(throws: StoreError.self) { try store.auditPage(AuditFilter(), limit: 0, after: nil) }
        #expect(throws: StoreError.self) { try store.auditPage(AuditFilter(statusClass: 7), limit: 10, after: nil) }
    }

    @Test func oneRowByRequestIDWithinScope() throws {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        _ = try store.createOrg(name: "zeta")
        let web = try store.createProject(orgName: "acme", name: "web")
        let app = try store.createProject(orgName: "zeta", name: "app")
        var record = makeRecord("r1", projectID: web.id)
        record.orgID = web.orgID
        try store.insertAudit([record])
        #expect(try store.auditRow(requestID: "r1", scope: .installation)?.projectSlug == "acme/web")
        #expect(try store.auditRow(requestID: "r1", scope: .org(id: web.orgID, name: "acme")) != nil)
        #expect(try store.auditRow(requestID: "r1", scope: .org(id: app.orgID, name: "zeta")) == nil)
        #expect(try store.auditRow(requestID: "r1", scope: .project(id: app.id, orgID: app.orgID, slug: "zeta/app")) == nil)
        #expect(try store.auditRow(requestID: "nope", scope: .installation) == nil)
    }
}
