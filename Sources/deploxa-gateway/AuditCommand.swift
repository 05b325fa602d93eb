import ArgumentParser
import Foundation
import GatewayCore
import GatewayStore

struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Read the audit log.", subcommands: [Export.self])

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export audit rows as NDJSON or CSV (oldest first).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "Only this ORG/PROJECT.") var project: String?
        @OptionGroup var dates: DateRangeOptions
        @Option(help: "ndjson or csv.") var format: String = "ndjson"

        func run() throws {
            guard format == "ndjson" || format == "csv" else { throw ValidationError("--format must be ndjson or csv.") }
            let store = try global.openConfiguration()
            var query = AuditQuery()
            if let project { query.projectID = try requireProject(store, project).id }
            (query.from, query.to) = try dates.range()
            query.limit = 5000
            if format == "csv" { print(AuditExport.csvHeader) }
            while true {
                let rows = try store.auditRows(query)
                for row in rows { print(format == "csv" ? AuditExport.csvLine(row) : AuditExport.ndjsonLine(row)) }
                guard rows.count == query.limit, let last = rows.last else { break }
                query.afterSequence = last.sequence
            }
        }
    }
}
