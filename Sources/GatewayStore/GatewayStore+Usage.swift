import Foundation
import GatewayCore

/// How `usage` groups requests.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case model, project, user, key, provider, day, hour
}

/// The width of `usageSeries`' time buckets.
public enum UsageBucket: String, Sendable, CaseIterable {
    case hour, day
}

/// One group of the usage report.
public struct UsageRow: Sendable, Equatable {
    public var group: String
    public var requests: Int
    public var promptTokens: Int
    public var completionTokens: Int
    public var cachedTokens: Int
    /// Prompt + completion tokens.
    public var totalTokens: Int
    /// Sum over rows with a known cost (summed exactly in nano-USD).
    public var costUSD: Double
    /// Successful rows with usage but no price: their cost is unknown, not zero.
    public var unknownCostRequests: Int
    public var cacheHits: Int
    public var errors: Int
    /// Percentiles from the rollups' histograms (within ±4.5 %, see `LatencyHistogram`); nil without samples.
    public var latencyP50Ms: Double?
    public var latencyP95Ms: Double?
    public var latencyP99Ms: Double?
    public var ttftP50Ms: Double?
    public var ttftP95Ms: Double?
    public var ttftP99Ms: Double?

    public init(group: String, requests: Int, promptTokens: Int, completionTokens: Int, cachedTokens: Int, costUSD: Double,
                unknownCostRequests: Int, cacheHits: Int, errors: Int, latencyP50Ms: Double? = nil, latencyP95Ms: Double? = nil,
                latencyP99Ms: Double? = nil, ttftP50Ms: Double? = nil, ttftP95Ms: Double? = nil, ttftP99Ms: Double? = nil) {
        self.group = group
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.totalTokens = promptTokens + completionTokens
        self.costUSD = costUSD
        self.unknownCostRequests = unknownCostRequests
        self.cacheHits = cacheHits
        self.errors = errors
        self.latencyP50Ms = latencyP50Ms
        self.latencyP95Ms = latencyP95Ms
        self.latencyP99Ms = latencyP99Ms
        self.ttftP50Ms = ttftP50Ms
        self.ttftP95Ms = ttftP95Ms
        self.ttftP99Ms = ttftP99Ms
    }

    init(group: String, _ totals: RollupTotals) {
        self.init(group: group, requests: Int(totals.requests), promptTokens: Int(totals.promptTokens),
                  completionTokens: Int(totals.completionTokens), cachedTokens: Int(totals.cachedTokens),
                  costUSD: SpendAmount.usd(totals.costNanos), unknownCostRequests: Int(totals.unknownCost),
                  cacheHits: Int(totals.cacheHits), errors: Int(totals.errors),
                  latencyP50Ms: totals.latency.percentile(0.5), latencyP95Ms: totals.latency.percentile(0.95),
                  latencyP99Ms: totals.latency.percentile(0.99), ttftP50Ms: totals.ttft.percentile(0.5),
                  ttftP95Ms: totals.ttft.percentile(0.95), ttftP99Ms: totals.ttft.percentile(0.99))
    }
}

/// One point of a usage chart: one time bucket of one group.
public struct UsageSeriesPoint: Sendable, Equatable {
    public var bucketStart: Date
    /// "" when the series is not grouped.
    public var group: String
    public var figures: UsageRow

    public var requests: Int { figures.requests }
    public var costUSD: Double { figures.costUSD }
    public var totalTokens: Int { figures.totalTokens }
    public var promptTokens: Int { figures.promptTokens }
    public var completionTokens: Int { figures.completionTokens }
    public var errors: Int { figures.errors }
    public var cacheHits: Int { figures.cacheHits }
    public var unknownCostRequests: Int { figures.unknownCostRequests }
    public var latencyP50Ms: Double? { figures.latencyP50Ms }
    public var latencyP95Ms: Double? { figures.latencyP95Ms }
    public var latencyP99Ms: Double? { figures.latencyP99Ms }
    public var ttftP50Ms: Double? { figures.ttftP50Ms }
    public var ttftP95Ms: Double? { figures.ttftP95Ms }
    public var ttftP99Ms: Double? { figures.ttftP99Ms }

    public init(bucketStart: Date, group: String, figures: UsageRow) {
        self.bucketStart = bucketStart
        self.group = group
        self.figures = figures
    }
}

/// Where usage reports read their rollup rows: the SQLite file or the shared PostgreSQL
/// database. The reports themselves (grouping, time ranges, percentiles merged from histograms)
/// are written once, in this protocol's extension, so both backends answer alike.
public protocol RollupSource {
    /// Calls `body` for every row of `selection` (any order).
    func rollupRows(_ selection: RollupSelection, _ body: (RollupRow) -> Void) throws
    func projects() throws -> [Project]
}

/// Which rollup rows a report reads: one kind, from one table, over [from, to), within a scope.
public struct RollupSelection: Sendable, Equatable {
    /// `usage_hourly` or `usage_daily`.
    public var table: String
    /// 'all', 'model', 'key', 'provider' or 'user'.
    public var kind: String
    public var from: Int64?
    public var to: Int64?
    public var scope: AdminScope
    public var projectID: Int64?
    /// Whether the latency histograms are wanted (percentiles); counters only otherwise.
    public var histograms: Bool
}

/// One rollup row as a backend read it.
public struct RollupRow {
    public var bucket: Int64
    public var projectID: Int64
    public var value: String
    var totals: RollupTotals

    init(bucket: Int64, projectID: Int64, value: String, totals: RollupTotals) {
        self.bucket = bucket
        self.projectID = projectID
        self.value = value
        self.totals = totals
    }

    /// The columns of `usage_hourly`/`usage_daily`; histograms in `LatencyHistogram`'s stored form.
    public init(bucket: Int64, projectID: Int64, value: String, requests: Int64, promptTokens: Int64, completionTokens: Int64,
                cachedTokens: Int64, costNanos: Int64, unknownCost: Int64, cacheHits: Int64, errors: Int64,
                latencyHistogram: [UInt8]?, ttftHistogram: [UInt8]?) {
        var totals = RollupTotals()
        totals.requests = requests
        totals.promptTokens = promptTokens
        totals.completionTokens = completionTokens
        totals.cachedTokens = cachedTokens
        totals.costNanos = costNanos
        totals.unknownCost = unknownCost
        totals.cacheHits = cacheHits
        totals.errors = errors
        latencyHistogram?.withUnsafeBytes { totals.latency.merge(blob: $0) }
        ttftHistogram?.withUnsafeBytes { totals.ttft.merge(blob: $0) }
        self.init(bucket: bucket, projectID: projectID, value: value, totals: totals)
    }

    /// The scope as SQL over a project-id column, with `?` placeholders (both backends' readers).
    public static func scopeCondition(_ scope: AdminScope, column: String) -> (sql: String, projectOrOrgID: Int64?) {
        switch scope {
        case .installation: return ("", nil)
        case .org(let id, _): return ("\(column) IN (SELECT id FROM projects WHERE org_id = ?)", id)
        case .project(let id, _, _): return ("\(column) = ?", id)
        }
    }
}

extension GatewayStore: RollupSource {
    public func rollupRows(_ selection: RollupSelection, _ body: (RollupRow) -> Void) throws {
        var conditions = ["kind = ?"]
        var values: [SQLValue] = [.text(selection.kind)]
        if let from = selection.from { conditions.append("bucket >= ?"); values.append(.integer(from)) }
        if let to = selection.to { conditions.append("bucket < ?"); values.append(.integer(to)) }
        let scope = RollupRow.scopeCondition(selection.scope, column: "project_id")
        if let id = scope.projectOrOrgID { conditions.append(scope.sql); values.append(.integer(id)) }
        if let projectID = selection.projectID { conditions.append("project_id = ?"); values.append(.integer(projectID)) }
        let table = selection.table == RollupTable.daily.name ? RollupTable.daily.name : RollupTable.hourly.name
        let sql = """
            SELECT bucket, project_id, value, requests, prompt_tokens, completion_tokens, cached_tokens, cost_nanos,
                   unknown_cost, cache_hits, errors\(selection.histograms ? ", latency_hist, ttft_hist" : "")
            FROM \(table) WHERE \(conditions.joined(separator: " AND "))
            """
        try connection.withStatement(sql) { statement in
            try statement.bind(values)
            while try statement.step() {
                let row = statement.row
                var totals = RollupTotals()
                totals.requests = row.int64(3)
                totals.promptTokens = row.int64(4)
                totals.completionTokens = row.int64(5)
                totals.cachedTokens = row.int64(6)
                totals.costNanos = row.int64(7)
                totals.unknownCost = row.int64(8)
                totals.cacheHits = row.int64(9)
                totals.errors = row.int64(10)
                if selection.histograms {
                    row.withBlob(11) { totals.latency.merge(blob: $0) }
                    row.withBlob(12) { totals.ttft.merge(blob: $0) }
                }
                body(RollupRow(bucket: row.int64(0), projectID: row.int64(1), value: row.string(2), totals: totals))
            }
        }
    }
}

/// Usage reports, read from the rollups only (never `audit_log`).
///
/// Ranges: `from` inclusive, `to` exclusive, `from` rounded down and `to` rounded up to whole
/// hours (the rollups' finest grain): a range always covers every hour it touches, so "the last
/// 24 hours" ending now includes the hour in progress. Whole UTC days inside the range are read
/// from the daily table, the hours at its edges from the hourly one.
extension RollupSource {
    /// Requests, tokens, cost, cache hits, errors and latency percentiles per group over
    /// [from, to), within `scope` (and `projectID`, if set: a project outside the scope gives no
    /// rows). `project` groups are "org/project" ("(none)" for unauthenticated requests), `day`
    /// groups "2026-12-04", `hour` groups "2026-12-04T13:00Z" (read from the hourly table only).
    public func usage(groupBy grouping: UsageGrouping, scope: AdminScope = .installation, projectID: Int64? = nil,
                      from: Date? = nil, to: Date? = nil) throws -> [UsageRow] {
        let lower = from.map { RollupTime.floor(StoreTime.milliseconds($0), RollupTime.hour) }
        let upper = to.map { RollupTime.ceil(StoreTime.milliseconds($0), RollupTime.hour) }
        let segments = grouping == .hour
            ? [RollupSegment(table: .hourly, from: lower, to: upper)]
            : RollupSegment.covering(from: lower, to: upper)
        let slugs = grouping == .project ? try projectSlugs() : [:]
        var groups: [String: RollupTotals] = [:]
        for segment in segments {
            try readRollups(kind: grouping.rollupKind, segment: segment, scope: scope, projectID: projectID) { bucket, project, value, totals in
                let group: String
                switch grouping {
                case .model, .key, .provider, .user: group = value
                case .project: group = Self.projectGroup(project, slugs)
                case .day: group = UsageLabels.day(bucket)
                case .hour: group = UsageLabels.hour(bucket)
                }
                groups[group, default: RollupTotals()].merge(totals)
            }
        }
        return groups.keys.sorted().map { UsageRow(group: $0, groups[$0]!) }
    }

    /// The whole range as one group (named ""): what `usage` would give if every row were one
    /// group, percentiles merged from the histograms (never averaged from the groups').
    public func usageTotal(scope: AdminScope = .installation, projectID: Int64? = nil, from: Date? = nil, to: Date? = nil) throws -> UsageRow {
        let lower = from.map { RollupTime.floor(StoreTime.milliseconds($0), RollupTime.hour) }
        let upper = to.map { RollupTime.ceil(StoreTime.milliseconds($0), RollupTime.hour) }
        var total = RollupTotals()
        for segment in RollupSegment.covering(from: lower, to: upper) {
            try readRollups(kind: .all, segment: segment, scope: scope, projectID: projectID) { _, _, _, totals in total.merge(totals) }
        }
        return UsageRow(group: "", total)
    }

    /// For charts: one point per time bucket and group that had requests (no zero points), by
    /// bucket then group. `bucket` .hour reads the hourly table over [from, to) rounded out to
    /// hours, .day the daily one rounded out to UTC days. `groupBy` nil: one series, group "";
    /// `.day`/`.hour` are not groupings of a series (`.invalidArgument`). `percentiles` false reads
    /// the counters only (no histograms; percentiles nil): several times faster on groups with
    /// many values, such as users.
    public func usageSeries(bucket: UsageBucket, groupBy grouping: UsageGrouping?, scope: AdminScope = .installation,
                            projectID: Int64? = nil, from: Date, to: Date, percentiles: Bool = true) throws -> [UsageSeriesPoint] {
        if grouping == .day || grouping == .hour {
            throw StoreError(.invalidArgument, "a usage series is grouped by model, project, user, key or provider")
        }
        let table: RollupTable = bucket == .hour ? .hourly : .daily
        let segment = RollupSegment(table: table,
                                    from: RollupTime.floor(StoreTime.milliseconds(from), table.bucketMilliseconds),
                                    to: RollupTime.ceil(StoreTime.milliseconds(to), table.bucketMilliseconds))
        let slugs = grouping == .project ? try projectSlugs() : [:]
        var points: [SeriesKey: RollupTotals] = [:]
        try readRollups(kind: grouping?.rollupKind ?? .all, segment: segment, scope: scope, projectID: projectID, histograms: percentiles) {
            bucketStart, project, value, totals in
            let group: String
            switch grouping {
            case .none: group = ""
            case .project: group = Self.projectGroup(project, slugs)
            default: group = value
            }
            points[SeriesKey(bucket: bucketStart, group: group), default: RollupTotals()].merge(totals)
        }
        return points.keys.sorted { ($0.bucket, $0.group) < ($1.bucket, $1.group) }.map { key in
            UsageSeriesPoint(bucketStart: StoreTime.date(key.bucket), group: key.group, figures: UsageRow(group: key.group, points[key]!))
        }
    }

    /// Calls `body` for every rollup row of `kind` in the segment and scope.
    private func readRollups(kind: RollupKind, segment: RollupSegment, scope: AdminScope, projectID: Int64?, histograms: Bool = true,
                             _ body: (_ bucket: Int64, _ projectID: Int64, _ value: String, _ totals: RollupTotals) -> Void) throws {
        let selection = RollupSelection(table: segment.table.name, kind: kind.rawValue, from: segment.from, to: segment.to,
                                        scope: scope, projectID: projectID, histograms: histograms)
        try rollupRows(selection) { row in body(row.bucket, row.projectID, row.value, row.totals) }
    }

    private func projectSlugs() throws -> [Int64: String] {
        Dictionary(try projects().map { ($0.id, $0.slug) }, uniquingKeysWith: { first, _ in first })
    }

    private static func projectGroup(_ projectID: Int64, _ slugs: [Int64: String]) -> String {
        projectID == 0 ? RollupBatch.none : slugs[projectID] ?? "#\(projectID)"
    }
}

extension UsageGrouping {
    /// The rollup rows a grouping reads: project and time groupings read the 'all' rows.
    var rollupKind: RollupKind {
        switch self {
        case .model: return .model
        case .key: return .key
        case .provider: return .provider
        case .user: return .user
        case .project, .day, .hour: return .all
        }
    }
}

/// One table over a bucket range [from, to) (nil: unbounded).
struct RollupSegment: Equatable {
    var table: RollupTable
    var from: Int64?
    var to: Int64?

    /// [from, to) (hour-aligned) as daily rows for the whole UTC days inside it and hourly rows
    /// for the hours before the first and after the last whole day.
    static func covering(from: Int64?, to: Int64?) -> [RollupSegment] {
        let firstDay = from.map { RollupTime.ceil($0, RollupTime.day) }
        let endDay = to.map { RollupTime.floor($0, RollupTime.day) }
        if let firstDay, let endDay, firstDay >= endDay { return [RollupSegment(table: .hourly, from: from, to: to)] }
        var segments = [RollupSegment(table: .daily, from: firstDay, to: endDay)]
        if let from, let firstDay, from < firstDay { segments.append(RollupSegment(table: .hourly, from: from, to: firstDay)) }
        if let to, let endDay, endDay < to { segments.append(RollupSegment(table: .hourly, from: endDay, to: to)) }
        return segments
    }
}

private struct SeriesKey: Hashable {
    var bucket: Int64
    var group: String
}

/// Group labels for time groupings (UTC).
enum UsageLabels {
    private static let calendar: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()

    static func day(_ milliseconds: Int64) -> String {
        let parts = calendar.dateComponents([.year, .month, .day], from: StoreTime.date(milliseconds))
        return "\(parts.year ?? 0)-\(two(parts.month ?? 0))-\(two(parts.day ?? 0))"
    }

    static func hour(_ milliseconds: Int64) -> String {
        let hour = (milliseconds - RollupTime.floor(milliseconds, RollupTime.day)) / RollupTime.hour
        return day(milliseconds) + "T\(two(Int(hour))):00Z"
    }

    private static func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
