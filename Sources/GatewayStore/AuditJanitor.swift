import Foundation

/// Keeps the audit log and the WAL in bounds, off the request path: every `interval` (the first
/// pass after a random part of it, so a box's workers do not all start together) it deletes audit
/// rows older than `retentionDays` in transactions of `batchSize` rows with a short pause between
/// them (writers get the lock in between), then runs a PASSIVE WAL checkpoint and deletes expired
/// admin sessions. At most `maxBatchesPerPass` deletes per pass, so a first pass over a large
/// backlog does not hog the queue: the next pass goes on. Own serial Dispatch queue and its own
/// store connection, like `CacheJanitor`; a failed step is reported to stderr and retried next pass.
public final class AuditJanitor: @unchecked Sendable {
    public let store: GatewayStore
    /// 0 keeps audit rows forever.
    public let retentionDays: Int
    public let batchSize: Int
    public let interval: Double
    public let pauseBetweenBatches: Double
    public let maxBatchesPerPass: Int

    private let queue = DispatchQueue(label: "deploxa-audit-janitor")
    /// Touched only on `queue`.
    private var timer: DispatchSourceTimer?

    public init(store: GatewayStore, retentionDays: Int = 90, batchSize: Int = 1000, interval: Double = 60,
                pauseBetweenBatches: Double = 0.02, maxBatchesPerPass: Int = 500) {
        self.store = store
        self.retentionDays = max(0, retentionDays)
        self.batchSize = max(1, batchSize)
        self.interval = max(0.05, interval)
        self.pauseBetweenBatches = max(0, pauseBetweenBatches)
        self.maxBatchesPerPass = max(1, maxBatchesPerPass)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + self.interval * Double.random(in: 0.25...1), repeating: self.interval,
                       leeway: .milliseconds(Int(self.interval * 100)))
        timer.setEventHandler { [weak self] in self?.pass() }
        queue.sync { self.timer = timer }
        timer.resume()
    }

    /// Stops; waits for a pass in progress. Idempotent.
    public func close() {
        queue.sync {
            timer?.cancel()
            timer = nil
        }
    }

    /// One pass now, on the caller's thread (tests, the `audit prune` command). Returns the
    /// audit rows deleted.
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

    private func pass() {
        guard timer != nil else { return }
        runPass()
    }
}
