import Foundation
import GatewayStore
import PostgresNIO

/// Brings a shared database's schema up to date (`PostgresMigrations`). Every node may call this
/// at start at the same moment: the whole run holds one transaction-scoped advisory lock, so one
/// node applies each step and the others find it done. Postgres DDL is transactional, so a step
/// that fails leaves nothing half-applied.
public enum PostgresSchema {
    /// The advisory lock key every node's migration run takes ("DPX" in ASCII, arbitrary but fixed).
    static let migrationLock: Int64 = 0x44_50_58

    /// Applies every pending step; returns the names this call applied.
    @discardableResult
    public static func migrate(_ session: PostgresSession) throws -> [String] {
        try session.transaction { transaction in
            try transaction.query("SELECT pg_advisory_xact_lock(\(migrationLock))")
            try transaction.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """)
            let done = Set(try transaction.query("SELECT version FROM schema_migrations").map { try $0.int64(0) })
            var applied: [String] = []
            for step in PostgresMigrations.all where !done.contains(Int64(step.version)) {
                for statement in PostgresScript.statements(step.sql) {
                    try transaction.execute(PostgresQuery(unsafeSQL: statement))
                }
                try transaction.execute("INSERT INTO schema_migrations (version, name) VALUES (\(Int32(step.version)), \(step.name))")
                applied.append(step.name)
            }
            return applied
        }
    }

    /// How many known steps the database has not had yet.
    public static func pendingCount(_ session: PostgresSession) throws -> Int {
        let exists = try session.query("SELECT to_regclass('schema_migrations') IS NOT NULL").first?.bool(0) ?? false
        guard exists else { return PostgresMigrations.all.count }
        let done = Set(try session.query("SELECT version FROM schema_migrations").map { try $0.int64(0) })
        return PostgresMigrations.all.filter { !done.contains(Int64($0.version)) }.count
    }
}

/// Splits an SQL script into statements for the extended protocol, which takes one at a time:
/// on `;` outside quotes, comments and dollar-quoted bodies (`$$ … $$`, `$tag$ … $tag$`), so a
/// PL/pgSQL function arrives whole.
enum PostgresScript {
    static func statements(_ script: String) -> [String] {
        let text = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var index = 0

        func flush() {
            let statement = String(current).trimmingCharacters(in: .whitespacesAndNewlines)
            if !statement.isEmpty && !isOnlyComments(statement) { statements.append(statement) }
            current = String.UnicodeScalarView()
        }

        while index < text.count {
            let character = text[index]
            let next: Unicode.Scalar? = index + 1 < text.count ? text[index + 1] : nil
            switch character {
            case "'", "\"":
                // A quoted literal or identifier; a doubled quote is an escaped one.
                var end = index + 1
                while end < text.count {
                    if text[end] == character {
                        if end + 1 < text.count && text[end + 1] == character { end += 2; continue }
                        break
                    }
                    end += 1
                }
                current.append(contentsOf: text[index...min(end, text.count - 1)])
                index = end + 1
            case "-" where next == "-":
                var end = index
                while end < text.count && text[end] != "\n" { end += 1 }
                current.append(contentsOf: text[index..<end])
                index = end
            case "/" where next == "*":
                var depth = 0
                var end = index
                repeat {
                    if end + 1 < text.count && text[end] == "/" && text[end + 1] == "*" { depth += 1; end += 2; continue }
                    if end + 1 < text.count && text[end] == "*" && text[end + 1] == "/" { depth -= 1; end += 2; continue }
                    end += 1
                } while depth > 0 && end < text.count
                current.append(contentsOf: text[index..<min(end, text.count)])
                index = end
            case "$":
                // A dollar-quote opener is $tag$ with tag made of letters, digits and _ (not a $1 parameter).
                var end = index + 1
                while end < text.count, text[end].properties.isAlphabetic || text[end] == "_" || (end > index + 1 && ("0"..."9").contains(text[end])) {
                    end += 1
                }
                if end < text.count && text[end] == "$" {
                    let tag = Array(text[index...end])
                    var close = end + 1
                    var found = false
                    while close + tag.count <= text.count {
                        if Array(text[close..<close + tag.count]) == tag { found = true; break }
                        close += 1
                    }
                    let stop = found ? close + tag.count : text.count
                    current.append(contentsOf: text[index..<stop])
                    index = stop
                } else {
                    current.append(character)
                    index += 1
                }
            case ";":
                flush()
                index += 1
            default:
                current.append(character)
                index += 1
            }
        }
        flush()
        return statements
    }

    private static func isOnlyComments(_ statement: String) -> Bool {
        statement.split(separator: "\n").allSatisfy { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
    }
}
