import ArgumentParser
import Foundation
import GatewayCore
import GatewayStore

/// `backup PATH`: a consistent copy of the database while `serve` runs (docs/operations.md,
/// "Backup and restore").
struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database to PATH, consistently, while the gateway runs.",
        discussion: """
            The copy is one snapshot (VACUUM INTO: a single read transaction; the workers keep \
            writing), written to PATH.tmp, fsynced and renamed to PATH. It is in rollback-journal \
            mode and stands alone (no -wal file). Restore: docs/operations.md.
            """)
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Where to write the copy.") var path: String
    @Flag(help: "Replace PATH (and a leftover PATH.tmp) if it exists.") var force = false
    @Option(help: ArgumentHelp("vacuum-into (default) or backup-api (SQLite's page-by-page online backup).", visibility: .hidden))
    var method: String = "vacuum-into"
    @Option(name: .customLong("pages-per-step"), help: ArgumentHelp("backup-api: pages per step (0: all in one step).", visibility: .hidden))
    var pagesPerStep: Int = 200
    @Option(name: .customLong("pause-ms"), help: ArgumentHelp("backup-api: pause between steps.", visibility: .hidden))
    var pauseMilliseconds: Int = 10
    @Option(help: ArgumentHelp("backup-api: give up after this many seconds.", visibility: .hidden))
    var timeout: Double = 600

    func run() throws {
        let chosen: BackupMethod
        switch method {
        case "vacuum-into": chosen = .vacuumInto
        case "backup-api": chosen = .onlinePages(pagesPerStep: pagesPerStep, pauseMilliseconds: max(0, pauseMilliseconds))
        default: throw ValidationError("--method must be vacuum-into or backup-api.")
        }
        let summary: BackupSummary
        do {
            summary = try GatewayStore.backup(database: global.databasePath, to: path, force: force, method: chosen,
                                              timeoutSeconds: timeout)
        } catch let error as StoreError {
            throw CommandFailure("backup failed: \(error.message)")
        }
        if global.json {
            Output.json([
                "database": .string(global.databasePath), "path": .string(summary.path), "bytes": .int(summary.bytes),
                "pages": .int(summary.pages), "seconds": .double((summary.seconds * 1000).rounded() / 1000),
                "schema_version": summary.schemaVersion.map { .int(Int64($0)) } ?? .null,
                "audit_rows": .int(summary.auditRows), "method": .string(summary.method),
                "steps": .int(Int64(summary.steps)), "restarts": .int(Int64(summary.restarts)),
            ])
        } else {
            let restarts = summary.steps > 0 ? ", \(summary.steps) steps, \(summary.restarts) restarts" : ""
            print("Backed up \(global.databasePath) to \(summary.path): \(summary.bytes) bytes, \(summary.pages) pages, "
                  + String(format: "%.3f s", summary.seconds)
                  + ", schema version \(summary.schemaVersion.map(String.init) ?? "none"), \(summary.auditRows) audit rows"
                  + " (\(summary.method)\(restarts)).")
        }
    }
}

/// `check`: integrity, foreign keys, schema version and counts of a database, read-only.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a database read-only: integrity, foreign keys, schema version, counts.",
        discussion: "Exits 0 when healthy, 1 when not (integrity errors, foreign key violations, or a schema older or newer than this binary's).")
    @OptionGroup var global: GlobalOptions
    @Flag(help: "PRAGMA quick_check instead of the full integrity_check.") var quick = false

    func run() throws {
        let result = GatewayStore.check(database: global.databasePath, quick: quick)
        func number(_ value: Int64?) -> JSON { value.map(JSON.int) ?? .null }
        if global.json {
            Output.json([
                "database": .string(result.path), "healthy": .bool(result.healthy),
                "check": .string(quick ? "quick_check" : "integrity_check"),
                "integrity": .array(result.integrity.map(JSON.string)),
                "foreign_key_violations": .array(result.foreignKeyViolations.map(JSON.string)),
                "schema_version": result.schemaVersion.map { .int(Int64($0)) } ?? .null,
                "expected_schema_version": .int(Int64(result.expectedSchemaVersion)),
                "missing_migrations": .array(result.missingMigrations.map { .int(Int64($0)) }),
                "unknown_migrations": .array(result.unknownMigrations.map { .int(Int64($0)) }),
                "orgs": number(result.orgs), "projects": number(result.projects), "keys": number(result.keys),
                "audit_rows": number(result.auditRows),
                "problems": .array(result.problems.map(JSON.string)),
            ])
        } else if result.integrity.isEmpty && result.schemaVersion == nil {  // could not even open it
            for problem in result.problems { print("PROBLEM: \(problem)") }
        } else {
            print("Database: \(result.path)")
            let integrity = result.integrity.isEmpty ? "not run" : result.integrity.prefix(10).joined(separator: "\n  ")
            print("\(quick ? "quick_check" : "integrity_check"): \(integrity)")
            if result.integrity.count > 10 { print("  … \(result.integrity.count - 10) more") }
            print("foreign_key_check: \(result.foreignKeyViolations.isEmpty ? "ok" : "\(result.foreignKeyViolations.count) violation(s)")")
            for line in result.foreignKeyViolations.prefix(10) { print("  \(line)") }
            print("schema version: \(result.schemaVersion.map(String.init) ?? "none") (this binary: \(result.expectedSchemaVersion))")
            print("orgs: \(Output.optional(result.orgs)), projects: \(Output.optional(result.projects)), "
                  + "keys: \(Output.optional(result.keys)), audit rows: \(Output.optional(result.auditRows))")
            if result.healthy {
                print("Healthy.")
            } else {
                for problem in result.problems { print("PROBLEM: \(problem)") }
            }
        }
        if !result.healthy { throw ExitCode(1) }
    }
}
