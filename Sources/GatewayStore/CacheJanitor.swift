import Dispatch

/// Prunes the response cache off the request path: every `interval` (the first pass after a
/// random part of it, so a box's workers do not all prune at once) it deletes expired entries
/// and leases and, above `maxBytes`, evicts the oldest entries of the projects holding the most
/// (`GatewayStore.pruneCache`: fair between projects). Eviction reads only the index
/// `cache_entries_project_created` (migration 4). Runs on its own serial Dispatch
/// queue with its own store connection; a failed pass is reported to stderr and retried next
/// time (the cache is only ever a miss, never wrong: lookups check expiry themselves).
public final class CacheJanitor: @unchecked Sendable {
    public let store: GatewayStore
    public let maxBytes: Int64
    public let interval: Double

    private var passes: PeriodicPass?

    public init(store: GatewayStore, maxBytes: Int64, interval: Double = 10) {
        self.store = store
        self.maxBytes = max(0, maxBytes)
        self.interval = max(0.05, interval)
        let store = store, limit = self.maxBytes
        passes = PeriodicPass(label: "deploxa-cache-janitor", interval: self.interval) { Self.prune(store, maxBytes: limit) }
    }

    /// Stops pruning; waits for a pass in progress. Idempotent.
    public func close() { passes?.close() }

    private static func prune(_ store: GatewayStore, maxBytes: Int64) {
        do {
            _ = try store.pruneCache(maxBytes: maxBytes)
        } catch {
            StandardError.write("cache-janitor: pruning failed: \(error)\n")
        }
    }
}
