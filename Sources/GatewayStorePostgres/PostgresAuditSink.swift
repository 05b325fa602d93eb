import Foundation
import GatewayCore
import GatewayStore
import PostgresNIO

/// Commits an `AuditWriter`'s batches to the shared database: one call of
/// `deploxa_append_audit`, which inserts the rows it has not seen (keyed by request id and
/// time) and adds spend and usage rollups from those rows only. A batch sent again after a lost
/// acknowledgement, or replayed from a dead worker's journal, therefore adds nothing twice.
public struct PostgresAuditSink: AuditSink {
    public let session: PostgresSession

    public init(session: PostgresSession) {
        self.session = session
    }

    public func insertAudit(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        let rows = JSON.array(records.map(Self.row)).serializedString()
        try session.query("SELECT deploxa_append_audit(\(rows)::jsonb)")
    }

    /// One record as the function reads it: `audit_log`'s column names, the attempts as the
    /// JSON text stored in `attempts_json`, and whether the limiter already counted its spend.
    static func row(_ record: AuditRecord) -> JSON {
        guard case .object(let columns) = AuditRecordCoding.json(record.boundedForStorage()) else { return .null }
        var entries: [(String, JSON)] = []
        for (name, value) in columns where name != "attempts" {
            entries.append((name, value))
        }
        entries.append(("attempts_json", record.attempts.isEmpty ? .null : .string(AuditRecordCoding.attemptsJSON(record.attempts).serializedString())))
        return .object(JSONObject(entries))
    }
}
