import Foundation

/// Prunes the response cache off the request path: every `interval` (with jitter, so a box's
/// workers do not all prune at once) it deletes expired entries and leases and evicts the oldest
/// entries above `maxBytes`. Runs on its own OS thread with its own store connection; a failed
/// pass is reported to stderr and retried next time (the cache is only ever a miss, never wrong:
/// lookups check expiry themselves).
public final class CacheJanitor: @unchecked Sendable {
    public let store: GatewayStore
    public let maxBytes: Int64
    public let interval: Double

    private let condition = NSCondition()
    private var closing = false
    private var stopped = false

    public init(store: GatewayStore, maxBytes: Int64, interval: Double = 10) {
        self.store = store
        self.maxBytes = max(0, maxBytes)
        self.interval = max(0.05, interval)
        let thread = Thread { [self] in run() }
        thread.name = "deploxa-cache-janitor"
        thread.start()
    }

    /// Stops the thread (waits for a pass in progress). Idempotent.
    public func close() {
        condition.lock()
        closing = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func run() {
        while waitForNextPass() {
            do {
                _ = try store.pruneCache(maxBytes: maxBytes)
            } catch {
                StandardError.write("cache-janitor: pruning failed: \(error)\n")
            }
        }
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Sleeps about one interval; false once closing.
    private func waitForNextPass() -> Bool {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(interval * Double.random(in: 0.75...1.25))
        while !closing && Date() < deadline { _ = condition.wait(until: deadline) }
        return !closing
    }
}
