import Foundation
import GatewayStore
import PostgresNIO

/// The cluster's housekeeping, done by one worker of one node at a time: every worker runs a
/// pass every `interval`, but only the holder of the `janitor` lease row (taken or renewed in
/// one statement, for three intervals) does the work. If that node dies, its lease runs out and
/// another worker takes over. A pass deletes expired cache entries and leases, creates next
/// months' audit partitions, deletes expired dashboard sessions, and drops audit partitions past
/// the retention period.
public final class PostgresJanitor: Sendable {
    public let session: PostgresSession
    public let interval: Double
    public let retentionDays: Int
    private let holder: String
    private let passes: PeriodicPass

    public init(session: PostgresSession, interval: Double = 10, retentionDays: Int = 0) {
        self.session = session
        self.interval = max(0.05, interval)
        self.retentionDays = max(0, retentionDays)
        let holder = "\(ProcessInfo.processInfo.hostName):\(getpid())"
        self.holder = holder
        let seconds = Int32(max(1, (self.interval * 3).rounded(.up)))
        let retention = self.retentionDays
        passes = PeriodicPass(label: "deploxa-postgres-janitor", interval: self.interval) {
            Self.pass(session, holder: holder, leaseSeconds: seconds, retentionDays: retention)
        }
    }

    /// Stops the passes; waits for one in progress. Idempotent.
    public func close() { passes.close() }

    /// One pass; true when this process held the lease and did the work.
    @discardableResult
    static func pass(_ session: PostgresSession, holder: String, leaseSeconds: Int32, retentionDays: Int) -> Bool {
        do {
            guard try session.query("SELECT deploxa_claim_lease('janitor', \(holder), \(leaseSeconds))").first?.bool(0) == true else {
                return false
            }
            try session.execute("DELETE FROM cache_entries WHERE expires_at <= (SELECT deploxa_now_ms())")
            try session.execute("DELETE FROM cache_leases WHERE expires_at <= (SELECT deploxa_now_ms())")
            try session.query("SELECT deploxa_ensure_audit_partitions(deploxa_now_ms(), 2)")
            try session.execute("DELETE FROM admin_sessions WHERE expires_at <= (SELECT deploxa_now_ms())")
            if retentionDays > 0 {
                try session.query("SELECT deploxa_drop_audit_partitions_before(deploxa_now_ms() - \(Int64(retentionDays) * 86_400_000))")
            }
            return true
        } catch {
            FileHandle.standardError.write(Data("postgres-janitor: pass failed: \(error)\n".utf8))
            return false
        }
    }
}
