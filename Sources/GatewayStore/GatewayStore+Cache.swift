import Foundation
import GatewayCore

/// A stored answer: exactly the bytes the client got, and who produced them.
public struct CachedAnswer: Sendable, Equatable {
    public var provider: String
    public var modelServed: String?
    public var stream: Bool
    public var body: [UInt8]

    public init(provider: String, modelServed: String?, stream: Bool, body: [UInt8]) {
        self.provider = provider
        self.modelServed = modelServed
        self.stream = stream
        self.body = body
    }
}

/// What one pruning pass removed.
public struct CachePruneResult: Sendable, Equatable {
    public var expired = 0
    /// Oldest entries dropped to bring the cache under its size bound.
    public var evicted = 0
    public var remainingBytes: Int64 = 0
}

/// The response cache's table and its leases (see migration 3). Keys are 32-byte SHA-256 digests
/// computed by the pipeline; this layer only stores, expires and bounds.
extension GatewayStore {
    /// The live entry for `key`, or nil. `projectID` is checked as well as hashed into the key.
    public func cachedAnswer(key: [UInt8], projectID: Int64, now: Date = Date()) throws -> CachedAnswer? {
        try connection.queryFirst(
            "SELECT provider, model_served, stream, body FROM cache_entries WHERE key = ? AND project_id = ? AND expires_at > ?",
            [.blob(key), .integer(projectID), .integer(StoreTime.milliseconds(now))]) { row in
            CachedAnswer(provider: row.string(0), modelServed: row.optionalString(1), stream: row.bool(2), body: row.blob(3))
        }
    }

    /// Stores (or replaces) the answer for `key` and ends any lease on it, in one transaction, so
    /// a request waiting on the lease finds the entry as soon as the lease is gone.
    public func storeCachedAnswer(_ answer: CachedAnswer, key: [UInt8], projectID: Int64, ttlSeconds: Int, now: Date = Date()) throws {
        let created = StoreTime.milliseconds(now)
        try connection.writeTransaction {
            try connection.execute(
                """
                INSERT OR REPLACE INTO cache_entries (key, project_id, stream, provider, model_served, body, size, created_at, expires_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [.blob(key), .integer(projectID), .bool(answer.stream), .text(answer.provider), .string(answer.modelServed),
                 .blob(answer.body), .integer(Int64(answer.body.count + key.count + 64)), .integer(created),
                 .integer(created + Int64(ttlSeconds) * 1000)])
            try connection.execute("DELETE FROM cache_leases WHERE key = ?", [.blob(key)])
        }
    }

    /// Takes the lease on `key` for `seconds` unless another request holds a live one. True: the
    /// caller computes the answer (and must `releaseCacheLease` or store). False: someone else is.
    public func claimCacheLease(key: [UInt8], seconds: Double, now: Date = Date()) throws -> Bool {
        let nowMs = StoreTime.milliseconds(now)
        return try connection.writeTransaction {
            try connection.execute(
                """
                INSERT INTO cache_leases (key, expires_at) VALUES (?, ?)
                ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE cache_leases.expires_at <= ?
                """,
                [.blob(key), .integer(nowMs + Int64(seconds * 1000)), .integer(nowMs)])
            return connection.changes > 0
        }
    }

    /// Whether a live lease on `key` exists (a request is computing its answer).
    public func cacheLeaseIsLive(key: [UInt8], now: Date = Date()) throws -> Bool {
        try connection.queryFirst("SELECT 1 FROM cache_leases WHERE key = ? AND expires_at > ?",
                                  [.blob(key), .integer(StoreTime.milliseconds(now))]) { _ in true } ?? false
    }

    public func releaseCacheLease(key: [UInt8]) throws {
        try connection.writeTransaction {
            try connection.execute("DELETE FROM cache_leases WHERE key = ?", [.blob(key)])
        }
    }

    /// Deletes expired entries and leases, then, while the cache holds more than `maxBytes`,
    /// evicts fairly between projects: one project writing a lot must not push everyone else's
    /// entries out. Projects are cut down to a common level, largest first (water-filling): with
    /// totals sorted b1 ≥ b2 ≥ …, the level L is where Σ max(0, bᵢ − L) covers the excess, and each
    /// project above L loses its oldest entries until it holds at most L. A project at or under
    /// L keeps everything; the total ends within the bound. Runs off the request path (the
    /// worker's janitor), in short transactions of at most `batch` deletions, reading totals and
    /// victims from `cache_entries_project_created` (no table scan).
    public func pruneCache(maxBytes: Int64, now: Date = Date(), batch: Int = 500) throws -> CachePruneResult {
        let nowMs = StoreTime.milliseconds(now)
        var result = CachePruneResult()
        while true {
            let removed = try connection.writeTransaction { () throws -> Int in
                try connection.execute(
                    "DELETE FROM cache_entries WHERE key IN (SELECT key FROM cache_entries WHERE expires_at <= ? LIMIT ?)",
                    [.integer(nowMs), .integer(Int64(batch))])
                return connection.changes
            }
            result.expired += removed
            if removed < batch { break }
        }
        try connection.writeTransaction {
            try connection.execute("DELETE FROM cache_leases WHERE expires_at <= ?", [.integer(nowMs)])
        }
        let totals = try connection.query(
            "SELECT project_id, SUM(size) FROM cache_entries GROUP BY project_id") { (project: $0.int64(0), bytes: $0.int64(1)) }
        var total = totals.reduce(Int64(0)) { $0 + $1.bytes }
        let bound = max(0, maxBytes)
        if total > bound {
            let level = Self.fairLevel(totals.map { $0.bytes }, excess: total - bound)
            for entry in totals where entry.bytes > level {
                var held = entry.bytes
                while held > level {
                    let oldest = try connection.query(
                        "SELECT key, size FROM cache_entries WHERE project_id = ? ORDER BY created_at LIMIT ?",
                        [.integer(entry.project), .integer(Int64(batch))]) { (key: $0.blob(0), size: $0.int64(1)) }
                    if oldest.isEmpty { break }
                    var victims: [[UInt8]] = []
                    var freed: Int64 = 0
                    for candidate in oldest where held - freed > level {
                        victims.append(candidate.key)
                        freed += candidate.size
                    }
                    try connection.writeTransaction {
                        for key in victims { try connection.execute("DELETE FROM cache_entries WHERE key = ?", [.blob(key)]) }
                    }
                    held -= freed
                    total -= freed
                    result.evicted += victims.count
                }
            }
        }
        result.remainingBytes = max(0, total)
        return result
    }

    /// The level every project is cut down to so that `excess` bytes are freed, taking from the
    /// largest first: the smallest L ≥ 0 with Σ max(0, bᵢ − L) ≥ excess.
    static func fairLevel(_ bytes: [Int64], excess: Int64) -> Int64 {
        guard excess > 0 else { return bytes.max() ?? 0 }
        let sorted = bytes.sorted(by: >)
        var sumAbove: Int64 = 0
        for (count, value) in sorted.enumerated() {
            sumAbove += value
            let above = Int64(count + 1)
            // Level if exactly the first `above` projects are cut: (sumAbove − excess) / above, rounded down.
            let level = (sumAbove - excess) / above
            let next = count + 1 < sorted.count ? sorted[count + 1] : 0
            if level >= next { return max(0, level) }
        }
        return 0
    }
}
