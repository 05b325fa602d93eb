import Foundation

/// Keeps the audit log and the WAL in bounds, off the request path: every `interval` (the first
/// pass after a random part of it, so a box's workers do not all start together) it deletes audit
/// rows older than `retentionDays` in transactions of `batchSize` rows with a short pause between
/// them (writers get the lock in between), then runs a PASSIVE WAL checkpoint and deletes expired
/// admin sessions. At most `maxBatchesPerPass` deletes per pass, so a first pass over a large
/// backlog does not hog the queue: the next pass goes on. Runs as a `PeriodicPass` on its own store
/// connection, like `CacheJanitor`; a failed step is reported to stderr and retried next pass.
public final class AuditJanitor: @unchecked Sendable {
    public let store: GatewayStore
    /// 0 keeps audit rows forever.
    public let retentionDays: Int
    public let batchSize: Int
    public let interval: Double
    public let pauseBetweenBatches: Double
    public let maxBatchesPerPass: Int

    private var passes: PeriodicPass?

    public init(store: GatewayStore, retentionDays: Int = 90, batchSize: Int = 1000, interval: Double = 60,
                pauseBetweenBatches: Double = 0.02, maxBatchesPerPass: Int = 500) {
        self.store = store
        self.retentionDays = max(0, retentionDays)
        self.batchSize = max(1, batchSize)
        self.interval = max(0.05, interval)
        self.pauseBetweenBatches = max(0, pauseBetweenBatches)
        self.maxBatchesPerPass = max(1, maxBatchesPerPass)
        passes = PeriodicPass(label: "deploxa-audit-janitor", interval: self.interval) { [weak self] in self?.runPass() }
    }

    /// Stops; waits for a pass in progress. Idempotent.
    public func close() { passes?.close() }

    /// One pass now, on the caller's thread (the tests). Returns the audit rows deleted.
    @discardableResult
    public func runPass(now: Date = Date()) -> Int {
        var deleted = 0
        if retentionDays > 0 {
            let cutoff = now.addingTimeInterval(-Double(retentionDays) * 86_400)
            do {
                for batch in 0..<maxBatchesPerPass {
                    if batch > 0 && pauseBetweenBatches > 0 { Thread.sleep(forTimeInterval: pauseBetweenBatches) }
                    let count = try store.deleteAuditRows(olderThan: cutoff, batchSize: batchSize)
                    deleted += count
                    if count < batchSize { break }
                }
            } catch {
                StandardError.write("audit-janitor: retention failed: \(error)\n")
            }
        }
        do { try store.checkpointWAL() } catch { StandardError.write("audit-janitor: checkpoint failed: \(error)\n") }
        do { try store.pruneAdminSessions(now: now) } catch {
            StandardError.write("audit-janitor: pruning sessions failed: \(error)\n")
        }
        return deleted
    }
}
