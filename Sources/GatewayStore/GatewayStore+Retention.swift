import CSQLite
import Foundation

/// Audit retention and WAL upkeep, for `AuditJanitor`. Rollups are never deleted: usage reports
/// keep their history after the rows behind them are gone.
extension GatewayStore {
    /// Deletes up to `batchSize` audit rows older than `olderThan` (oldest first, found through
    /// `audit_log_time`) in one short transaction, so writers wait at most one small delete; the
    /// caller loops, pausing between calls. Records the cutoff so `rebuildRollups` keeps the
    /// rollup buckets whose rows are gone. Returns how many rows went (0: nothing older remains).
    public func deleteAuditRows(olderThan cutoff: Date, batchSize: Int = 1000) throws -> Int {
        guard batchSize > 0 else { throw StoreError(.invalidArgument, "batch size must be positive") }
        let cutoffMilliseconds = StoreTime.milliseconds(cutoff)
        return try connection.writeTransaction {
            try connection.execute("""
                DELETE FROM audit_log WHERE seq IN (
                    SELECT seq FROM audit_log INDEXED BY audit_log_time WHERE time_ms < ? ORDER BY time_ms LIMIT ?)
                """, [.integer(cutoffMilliseconds), .integer(Int64(batchSize))])
            let deleted = connection.changes
            if deleted > 0 {
                try connection.execute("UPDATE rollup_state SET audit_deleted_before = max(audit_deleted_before, ?) WHERE id = 1",
                                       [.integer(cutoffMilliseconds)])
            }
            return deleted
        }
    }

    /// Copies what it can of the WAL into the database file without waiting for anyone: a
    /// PASSIVE checkpoint never blocks writers or readers (FULL/RESTART/TRUNCATE would wait for
    /// them). When it gets through the whole WAL, the next writer starts the WAL over from its
    /// beginning and, with `journal_size_limit` (64 MiB, set on every connection), truncates the
    /// file back to that size, so a burst does not leave a huge WAL behind. Returns the WAL's
    /// size in frames and how many of them are now in the database file.
    @discardableResult
    public func checkpointWAL() throws -> (walFrames: Int, checkpointedFrames: Int) {
        try connection.queryFirst("PRAGMA wal_checkpoint(PASSIVE)") { (walFrames: $0.int(1), checkpointedFrames: $0.int(2)) }
            ?? (0, 0)
    }
}
