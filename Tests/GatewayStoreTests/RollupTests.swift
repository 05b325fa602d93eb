import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

/// A day of 2025 at midnight UTC (2025-06-15), for edge tests.
let rollupDay = Date(timeIntervalSince1970: 1_749_945_600)

/// Sums the way the rollups must: straight over the records, in Swift.
struct DirectTotals: Equatable {
    var requests = 0, prompt = 0, completion = 0, cached = 0, errors = 0, cacheHits = 0, unknownCost = 0
    var costNanos: Int64 = 0

    init() {}

    init(_ records: [AuditRecord]) {
        for record in records {
            requests += 1
            prompt += record.promptTokens ?? 0
            completion += record.completionTokens ?? 0
            cached += record.cachedTokens ?? 0
            if record.status >= 400 { errors += 1 }
            if record.cacheHit { cacheHits += 1 }
            if let cost = record.costUSD { costNanos += SpendAmount.nanos(cost) }
            if record.costUSD == nil && record.status < 400 && (record.promptTokens ?? 0) + (record.completionTokens ?? 0) > 0
                && !record.cacheHit { unknownCost += 1 }
        }
    }

    init(_ rows: [UsageRow]) {
        for row in rows {
            requests += row.requests
            prompt += row.promptTokens
            completion += row.completionTokens
            cached += row.cachedTokens
            errors += row.errors
            cacheHits += row.cacheHits
            unknownCost += row.unknownCostRequests
            costNanos += SpendAmount.nanos(row.costUSD)
        }
    }
}

/// Random but repeatable audit rows over several projects, models, keys, users and statuses.
struct RecordMaker {
    var state: UInt64
    var counter = 0

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }

    mutating func pick<T>(_ values: [T]) -> T { values[Int(next() % UInt64(values.count))] }

    mutating func record(projects: [Project?], start: Date, spanSeconds: Int) -> AuditRecord {
        counter += 1
        let project = pick(projects)
        let status = pick([200, 200, 200, 200, 429, 500])
        let time = start.addingTimeInterval(Double(next() % UInt64(spanSeconds * 1000)) / 1000)
        return AuditRecord(
            requestID: "r\(counter)-\(next())", time: time, method: "POST", route: "/v1/chat/completions",
            orgID: project?.orgID, projectID: project?.id, keyID: project == nil ? nil : pick(["gk_aaaaaaaaaaaa", "gk_bbbbbbbbbbbb"]),
            user: pick([nil, "alice", "bob"]), provider: pick([nil, "openai", "anthropic"]),
            modelRequested: pick([nil, "gpt-4o", "claude"]), modelServed: pick([nil, "gpt-4o-2024", "claude-3"]),
            status: status, promptTokens: pick([nil, 0, 12, 1000]), completionTokens: pick([nil, 5, 77]),
            cachedTokens: pick([nil, 3]), costUSD: status == 200 ? pick([nil, 0.000123, 0.5, 1.234567891]) : nil,
            latencyMs: exp(Double(next() % 1000) / 100), timeToFirstTokenMs: pick([nil, 1.5, 250.0]),
            cacheHit: pick([false, false, true]))
    }
}

@Suite("Usage rollups")
struct RollupTests {
    private func setUp() throws -> (TestDatabase, [Project]) {
        let database = try TestDatabase()
        let store = database.store
        _ = try store.createOrg(name: "acme")
        _ = try store.createOrg(name: "zeta")
        let projects = [try store.createProject(orgName: "acme", name: "web"), try store.createProject(orgName: "acme", name: "api"),
                        try store.createProject(orgName: "zeta", name: "app")]
        return (database, projects)
    }

    private func insertRandom(_ store: GatewayStore, _ projects: [Project], count: Int, seed: UInt64 = 7,
                              start: Date = rollupDay.addingTimeInterval(-30 * 3600), spanSeconds: Int = 3 * 86_400) throws -> [AuditRecord] {
        var maker = RecordMaker(seed: seed)
        let records = (0..<count).map { _ in maker.record(projects: projects.map(Optional.some) + [nil], start: start, spanSeconds: spanSeconds) }
        for batch in stride(from: 0, to: records.count, by: 64) {
            try store.insertAudit(Array(records[batch..<min(batch + 64, records.count)]))
        }
        return records
    }

    @Test func everyGroupingAddsUpToTheAuditRows() throws {
        let (database, projects) = try setUp()
        let store = database.store
        let records = try insertRandom(store, projects, count: 600)
        let direct = DirectTotals(records)
        for grouping in UsageGrouping.allCases {
            let rows = try store.usage(groupBy: grouping)
            #expect(DirectTotals(rows) == direct, "\(grouping)")
            #expect(rows.map(\.group) == rows.map(\.group).sorted())
        }
        // Group by group, for a few groupings.
        let byModel = Dictionary(grouping: records) { $0.modelServed ?? $0.modelRequested ?? "(none)" }
        for row in try store.usage(groupBy: .model) { #expect(DirectTotals(byModel[row.group] ?? []) == DirectTotals([row])) }
        let byProject = Dictionary(grouping: records) { record in projects.first { $0.id == record.projectID }?.slug ?? "(none)" }
        let projectRows = try store.usage(groupBy: .project)
        #expect(Set(projectRows.map(\.group)) == ["acme/web", "acme/api", "zeta/app", "(none)"])
        for row in projectRows { #expect(DirectTotals(byProject[row.group] ?? []) == DirectTotals([row])) }
        let byDay = Dictionary(grouping: records) { UsageLabels.day(StoreTime.milliseconds($0.time)) }
        for row in try store.usage(groupBy: .day) { #expect(DirectTotals(byDay[row.group] ?? []) == DirectTotals([row])) }
        #expect(try store.usage(groupBy: .hour).first?.group.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:00Z/) != nil)

        // Scopes and the project filter.
        let acme = AdminScope.org(id: projects[0].orgID, name: "acme")
        #expect(DirectTotals(try store.usage(groupBy: .model, scope: acme))
                == DirectTotals(records.filter { $0.orgID == projects[0].orgID }))
        let web = AdminScope.project(id: projects[0].id, orgID: projects[0].orgID, slug: "acme/web")
        #expect(DirectTotals(try store.usage(groupBy: .key, scope: web)) == DirectTotals(records.filter { $0.projectID == projects[0].id }))
        #expect(DirectTotals(try store.usage(groupBy: .key, scope: .installation, projectID: projects[1].id))
                == DirectTotals(records.filter { $0.projectID == projects[1].id }))
        #expect(try store.usage(groupBy: .model, scope: acme, projectID: projects[2].id).isEmpty)

        // The series adds up too, per bucket width.
        for bucket in UsageBucket.allCases {
            let points = try store.usageSeries(bucket: bucket, groupBy: nil, scope: .installation, projectID: nil,
                                               from: rollupDay.addingTimeInterval(-10 * 86_400), to: rollupDay.addingTimeInterval(10 * 86_400))
            #expect(DirectTotals(points.map(\.figures)) == direct)
            #expect(points.allSatisfy { $0.group == "" })
            let byProvider = try store.usageSeries(bucket: bucket, groupBy: .provider, scope: .installation, projectID: nil,
                                                   from: rollupDay.addingTimeInterval(-10 * 86_400), to: rollupDay.addingTimeInterval(10 * 86_400))
            #expect(DirectTotals(byProvider.map(\.figures)) == direct)
            #expect(byProvider.map(\.bucketStart) == byProvider.map(\.bucketStart).sorted())
        }
    }

    @Test func aRetriedBatchAddsNothingAndRebuildAgrees() throws {
        let (database, projects) = try setUp()
        let store = database.store
        let records = try insertRandom(store, projects, count: 300)
        let before = try UsageGrouping.allCases.map { try store.usage(groupBy: $0) }
        try store.insertAudit(Array(records[0..<100]))  // a journal replayed after its batch had committed
        try store.insertAudit(records)
        #expect(try UsageGrouping.allCases.map { try store.usage(groupBy: $0) } == before)

        #expect(try store.rebuildRollups() == records.count)
        #expect(try UsageGrouping.allCases.map { try store.usage(groupBy: $0) } == before)
        #expect(try store.rollupsAreComplete())
    }

    @Test func dimensionsPerScope() throws {
        let (database, projects) = try setUp()
        let store = database.store
        try store.insertAudit([
            makeRecord("a", projectID: projects[0].id, keyID: "gk_000000000001", modelRequested: "gpt-4o", modelServed: "gpt-4o-2024"),
            makeRecord("b", projectID: projects[2].id, keyID: "gk_000000000002", modelRequested: "o3", modelServed: nil),
            makeRecord("c", modelRequested: nil, modelServed: nil),
        ])
        let all = try store.dimensions(scope: .installation)
        #expect(all.models == ["gpt-4o", "gpt-4o-2024", "o3"])
        #expect(all.keyIDs == ["gk_000000000001", "gk_000000000002"])
        #expect(all.users == ["u1"])
        #expect(all.providers == ["openai"])
        let acme = try store.dimensions(scope: .org(id: projects[0].orgID, name: "acme"))
        #expect(acme.models == ["gpt-4o", "gpt-4o-2024"])
        #expect(acme.keyIDs == ["gk_000000000001"])
        let app = try store.dimensions(scope: .project(id: projects[2].id, orgID: projects[2].orgID, slug: "zeta/app"))
        #expect(app.models == ["o3"])
    }

    @Test func percentilesOfMergedHistogramsStayWithinABucket() throws {
        let (database, projects) = try setUp()
        let store = database.store
        var maker = RecordMaker(seed: 99)
        var latencies: [Double] = []
        var records: [AuditRecord] = []
        for index in 0..<2000 {
            // Log-uniform from 0.7 ms to about 20 s, over two hours and two projects (four rollup rows to merge).
            let latency = 0.7 * exp(Double(maker.next() % 10_000) / 10_000 * 10.2)
            latencies.append(latency)
            records.append(AuditRecord(requestID: "p\(index)", time: rollupDay.addingTimeInterval(Double(index % 2) * 3600 + 1),
                                       method: "POST", route: "/v1/chat/completions", orgID: projects[index % 3 == 0 ? 0 : 1].orgID,
                                       projectID: projects[index % 3 == 0 ? 0 : 1].id, status: 200,
                                       latencyMs: latency, timeToFirstTokenMs: latency / 2))
        }
        try store.insertAudit(records)
        let sorted = latencies.sorted()
        func truth(_ fraction: Double) -> Double { sorted[Int((fraction * Double(sorted.count)).rounded(.up)) - 1] }
        let row = try #require(try store.usage(groupBy: .day).first)
        for (estimate, fraction) in [(row.latencyP50Ms, 0.5), (row.latencyP95Ms, 0.95), (row.latencyP99Ms, 0.99),
                                     (row.ttftP50Ms.map { $0 * 2 }, 0.5), (row.ttftP99Ms.map { $0 * 2 }, 0.99)] {
            let estimate = try #require(estimate)
            let (lower, upper) = LatencyHistogram.bounds(of: LatencyHistogram.bucket(for: truth(fraction)))
            // Within one bucket's width of the truth (half a bucket, in fact, for a geometric middle).
            #expect(abs(estimate - truth(fraction)) <= (upper - lower) * 1.01, "p\(fraction): \(estimate) vs \(truth(fraction))")
        }
        #expect(row.ttftP95Ms != nil)
        #expect(try store.usage(groupBy: .hour).count == 2)
    }

    @Test func histogramEncodingAndSQLMerge() throws {
        var first = LatencyHistogram()
        for value in [0.1, 0.6, 12, 12.5, 1e9, -.infinity, .nan] { first.add(value) }
        var second = LatencyHistogram()
        second.add(12)
        let database = try TestDatabase()
        let merged = try database.store.connection.queryFirst("SELECT deploxa_hist_merge(?, ?), deploxa_hist_merge(NULL, NULL)",
                                                              [.blob(first.encoded()!), .blob(second.encoded()!)]) {
            (bytes: $0.blob(0), bothNull: $0.isNull(1))
        }
        var expected = first
        expected.merge(second)
        let bytes = try #require(merged?.bytes)
        #expect(bytes.withUnsafeBytes { LatencyHistogram(blob: $0) } == expected)
        #expect(merged?.bothNull == true)
        #expect(expected.total == 8)
        #expect(LatencyHistogram.bucket(for: 1e12) == LatencyHistogram.bucketCount - 1)
        #expect(LatencyHistogram.bucket(for: 0.49) == 0)
        #expect(LatencyHistogram.bucket(for: 0.5) == 1)
    }

    /// Ranges round out to hours; whole days come from the daily table and the edges from the hourly one.
    @Test func hourAndDayEdges() throws {
        let (database, projects) = try setUp()
        let store = database.store
        let day = rollupDay
        func at(_ seconds: Double, _ id: String) -> AuditRecord { makeRecord(id, time: day.addingTimeInterval(seconds), projectID: projects[0].id) }
        try store.insertAudit([
            at(-2 * 3600 - 0.001, "d0-21:59"), at(-2 * 3600, "d0-22:00"), at(-0.001, "d0-23:59"), at(0, "d1-00:00"),
            at(12 * 3600, "d1-12:00"), at(86_400 + 3600 + 3599.999, "d2-01:59"), at(86_400 + 2 * 3600, "d2-02:00"),
        ])
        func requests(_ from: Date?, _ to: Date?, _ grouping: UsageGrouping = .project) throws -> Int {
            try store.usage(groupBy: grouping, from: from, to: to).reduce(0) { $0 + $1.requests }
        }
        // d0 22:00 to d2 02:00: hourly, one whole daily bucket, hourly.
        #expect(RollupSegment.covering(from: StoreTime.milliseconds(day) - 2 * RollupTime.hour,
                                       to: StoreTime.milliseconds(day) + RollupTime.day + 2 * RollupTime.hour).count == 3)
        for grouping in [UsageGrouping.project, .day, .hour, .model] {
            #expect(try requests(day.addingTimeInterval(-2 * 3600), day.addingTimeInterval(86_400 + 2 * 3600), grouping) == 5)
        }
        #expect(try requests(day, nil) == 4)
        #expect(try requests(nil, day) == 3)
        #expect(try requests(day, day.addingTimeInterval(86_400)) == 2)
        // from rounds down, to rounds up to the hour.
        #expect(try requests(day.addingTimeInterval(-2 * 3600 + 1800), day.addingTimeInterval(-1)) == 2)
        #expect(try requests(day.addingTimeInterval(12 * 3600 + 60), day.addingTimeInterval(12 * 3600 + 120)) == 1)
        #expect(try store.usage(groupBy: .day).map(\.group) == ["2025-06-14", "2025-06-15", "2025-06-16"])
        #expect(try store.usage(groupBy: .hour, from: day, to: day.addingTimeInterval(86_400)).map(\.group)
                == ["2025-06-15T00:00Z", "2025-06-15T12:00Z"])
        let daily = try store.usageSeries(bucket: .day, groupBy: nil, scope: .installation, projectID: nil,
                                          from: day.addingTimeInterval(1), to: day.addingTimeInterval(2))
        #expect(daily.map(\.bucketStart) == [day] && daily.first?.requests == 2)
        let hourly = try store.usageSeries(bucket: .hour, groupBy: .project, scope: .installation, projectID: nil,
                                           from: day.addingTimeInterval(-3 * 3600), to: day.addingTimeInterval(1))
        #expect(hourly.map(\.requests) == [1, 1, 1, 1])
        #expect(hourly.map(\.bucketStart) == [-3.0, -2, -1, 0].map { day.addingTimeInterval($0 * 3600) })
        #expect(Set(hourly.map(\.group)) == ["acme/web"])
        #expect(throws: StoreError.self) {
            try store.usageSeries(bucket: .hour, groupBy: .day, scope: .installation, projectID: nil, from: day, to: day)
        }
    }
}
