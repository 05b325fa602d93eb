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
