import Foundation
import GatewayCore

/// The two rollup tables, by bucket width.
enum RollupTable: CaseIterable {
    case hourly, daily

    var name: String { self == .hourly ? "usage_hourly" : "usage_daily" }
    var bucketMilliseconds: Int64 { self == .hourly ? 3_600_000 : 86_400_000 }

    func bucketStart(_ milliseconds: Int64) -> Int64 { RollupTime.floor(milliseconds, bucketMilliseconds) }
}

/// The dimensions a rollup row is kept for; `all` has the value "".
enum RollupKind: String, CaseIterable {
    case all, model, key, provider, user
}

/// One rollup row's identity.
struct RollupKey: Hashable {
    var table: RollupTable
    var kind: RollupKind
    var bucket: Int64
    var projectID: Int64
    var value: String
}

/// One rollup row's figures, summed in memory before one upsert per row per batch.
struct RollupTotals {
    var requests: Int64 = 0
    var promptTokens: Int64 = 0
    var completionTokens: Int64 = 0
    var cachedTokens: Int64 = 0
    var costNanos: Int64 = 0
    var unknownCost: Int64 = 0
    var cacheHits: Int64 = 0
    var errors: Int64 = 0
    var latency = LatencyHistogram()
    var ttft = LatencyHistogram()

    /// One audit row. The unknown-cost rule is the one `usage` has always used: a successful
    /// answer with tokens but no price, not served from the cache.
    mutating func add(_ record: AuditRecord) {
        let prompt = Int64(record.promptTokens ?? 0), completion = Int64(record.completionTokens ?? 0)
        requests += 1
        promptTokens &+= prompt
        completionTokens &+= completion
        cachedTokens &+= Int64(record.cachedTokens ?? 0)
        if let cost = record.costUSD { costNanos &+= SpendAmount.nanos(cost) }
        if record.costUSD == nil && record.status < 400 && prompt + completion > 0 && !record.cacheHit { unknownCost += 1 }
        if record.cacheHit { cacheHits += 1 }
        if record.status >= 400 { errors += 1 }
        latency.add(record.latencyMs)
        if let ttft = record.timeToFirstTokenMs { self.ttft.add(ttft) }
    }

    mutating func merge(_ other: RollupTotals) {
        requests &+= other.requests
        promptTokens &+= other.promptTokens
        completionTokens &+= other.completionTokens
        cachedTokens &+= other.cachedTokens
        costNanos &+= other.costNanos
        unknownCost &+= other.unknownCost
        cacheHits &+= other.cacheHits
        errors &+= other.errors
        latency.merge(other.latency)
        ttft.merge(other.ttft)
    }
}

/// A batch's rollup and dimension changes, gathered from the audit rows actually inserted.
struct RollupBatch {
    private(set) var totals: [RollupKey: RollupTotals] = [:]
    /// (project, kind, value) → newest time seen.
    private(set) var dimensions: [DimensionKey: Int64] = [:]

    var isEmpty: Bool { totals.isEmpty }

    mutating func add(_ record: AuditRecord, tables: [RollupTable] = RollupTable.allCases) {
        let time = StoreTime.milliseconds(record.time)
        let projectID = record.projectID ?? 0
        let model = record.modelServed ?? record.modelRequested ?? Self.none
        for table in tables {
            let bucket = table.bucketStart(time)
            add(record, RollupKey(table: table, kind: .all, bucket: bucket, projectID: projectID, value: ""))
            add(record, RollupKey(table: table, kind: .model, bucket: bucket, projectID: projectID, value: model))
            add(record, RollupKey(table: table, kind: .key, bucket: bucket, projectID: projectID, value: record.keyID ?? Self.none))
            add(record, RollupKey(table: table, kind: .provider, bucket: bucket, projectID: projectID, value: record.provider ?? Self.none))
            add(record, RollupKey(table: table, kind: .user, bucket: bucket, projectID: projectID, value: record.user ?? Self.none))
        }
        see(projectID, "model", record.modelRequested, time)
        see(projectID, "model", record.modelServed, time)
        see(projectID, "user", record.user, time)
        see(projectID, "key", record.keyID, time)
        see(projectID, "provider", record.provider, time)
    }

    private mutating func add(_ record: AuditRecord, _ key: RollupKey) {
        totals[key, default: RollupTotals()].add(record)
    }

    private mutating func see(_ projectID: Int64, _ kind: String, _ value: String?, _ time: Int64) {
        guard let value else { return }
        let key = DimensionKey(projectID: projectID, kind: kind, value: value)
        if let seen = dimensions[key], seen >= time { return }
        dimensions[key] = time
    }

    /// What a missing model, key, provider or user is grouped as.
    static let none = "(none)"
}

struct DimensionKey: Hashable {
    var projectID: Int64
    var kind: String
    var value: String
}

/// Bucket arithmetic on integer milliseconds (UTC; floor division also for times before 1970).
enum RollupTime {
    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000

    static func floor(_ milliseconds: Int64, _ width: Int64) -> Int64 {
        let remainder = milliseconds % width
        return remainder < 0 ? milliseconds - remainder - width : milliseconds - remainder
    }

    static func ceil(_ milliseconds: Int64, _ width: Int64) -> Int64 {
        let floored = floor(milliseconds, width)
        return floored == milliseconds ? floored : floored + width
    }
}

/// What a batch of newly inserted audit rows adds to the shared totals: month-to-date spend the
/// limiter did not settle itself, usage rollup rows and dimensions, each summed once per key so a
/// backend writes one upsert per row it touches. The SQLite store applies it inside its insert
/// transaction; the PostgreSQL sink sends it beside the rows, because the database computes it
/// far more slowly than the worker (histograms are byte strings there).
public struct AuditBatchSummary {
    /// Month-to-date spend to add, per limit scope (`LimitScope.storageKey`) and month.
    public struct Spend {
        public let scope: String
        public let month: String
        public let nanos: Int64
    }

    /// One rollup row's increments; histograms in `LatencyHistogram`'s stored (sparse) form.
    /// The table is named by its bucket width (one hour or one day, in milliseconds).
    public struct Rollup {
        public let bucketMilliseconds: Int64
        public let kind: String
        public let bucket: Int64
        public let projectID: Int64
        public let value: String
        public let requests, promptTokens, completionTokens, cachedTokens: Int64
        public let costNanos, unknownCost, cacheHits, errors: Int64
        public let latencyHistogram: [UInt8]?
        public let ttftHistogram: [UInt8]?
    }

    /// A value seen in a filterable column, with the newest time it was seen.
    public struct Dimension {
        public let projectID: Int64
        public let kind: String
        public let value: String
        public let lastSeen: Int64
    }

    private(set) var spend: [SpendKey: Int64] = [:]
    private(set) var rollups = RollupBatch()

    public init(_ records: some Sequence<AuditRecord>) {
        for record in records { add(record) }
    }

    private mutating func add(_ record: AuditRecord) {
        rollups.add(record)
        guard !record.spendSettled, let cost = record.costUSD, cost > 0 else { return }
        let month = SpendAmount.month(of: record.time)
        for scope in LimitScope.all(orgID: record.orgID, projectID: record.projectID, keyID: record.keyID) {
            spend[SpendKey(scope: scope, month: month), default: 0] += SpendAmount.nanos(cost)
        }
    }

    /// Sorted by scope and month, the order every writer upserts in (no deadlock between them).
    public var spendRows: [Spend] {
        spend.map { Spend(scope: $0.key.scope.storageKey, month: $0.key.month, nanos: $0.value) }
            .sorted { ($0.scope, $0.month) < ($1.scope, $1.month) }
    }

    /// Sorted by bucket width (hourly first), kind, bucket, project and value.
    public var rollupRows: [Rollup] {
        rollups.totals.map { key, totals in
            Rollup(bucketMilliseconds: key.table.bucketMilliseconds, kind: key.kind.rawValue, bucket: key.bucket, projectID: key.projectID, value: key.value,
                   requests: totals.requests, promptTokens: totals.promptTokens, completionTokens: totals.completionTokens,
                   cachedTokens: totals.cachedTokens, costNanos: totals.costNanos, unknownCost: totals.unknownCost,
                   cacheHits: totals.cacheHits, errors: totals.errors,
                   latencyHistogram: totals.latency.encoded(), ttftHistogram: totals.ttft.encoded())
        }.sorted { ($0.bucketMilliseconds, $0.kind, $0.bucket, $0.projectID, $0.value) < ($1.bucketMilliseconds, $1.kind, $1.bucket, $1.projectID, $1.value) }
    }

    /// Sorted by project, kind and value.
    public var dimensionRows: [Dimension] {
        rollups.dimensions.map { Dimension(projectID: $0.key.projectID, kind: $0.key.kind, value: $0.key.value, lastSeen: $0.value) }
            .sorted { ($0.projectID, $0.kind, $0.value) < ($1.projectID, $1.kind, $1.value) }
    }
}

/// A month-to-date total's identity, for summing a batch's spend.
struct SpendKey: Hashable {
    let scope: LimitScope
    let month: String
}
