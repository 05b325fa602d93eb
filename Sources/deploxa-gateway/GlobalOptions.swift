import ArgumentParser
import GatewayCore
import Foundation
import GatewayStore

/// Options every state-reading command takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "The SQLite database file, or a postgresql://user@host/db URL shared by several nodes (default: $DEPLOXA_GATEWAY_DB, else ./deploxa-gateway.db).")
    var db: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    var databasePath: String {
        db ?? ProcessInfo.processInfo.environment["DEPLOXA_GATEWAY_DB"] ?? "deploxa-gateway.db"
    }

    func backend() throws -> DatabaseBackend { try DatabaseBackend(databasePath) }

    /// The store every backend offers (orgs, projects, keys, providers, limits, fallback,
    /// settings, audit export), schema brought up to date.
    func openConfiguration() throws -> any ConfigurationStore { try backend().openConfiguration() }

    /// The admin side's store (admin tokens and the rest), schema brought up to date.
    func openAdmin() throws -> any AdminStore { try backend().openAdmin() }

    /// Opens the SQLite store and brings the schema up to date, for the commands that so far
    /// exist for SQLite only (they say so plainly when given a PostgreSQL URL).
    func openStore(_ command: String = "this command") throws -> GatewayStore {
        guard case .sqlite = try backend() else {
            throw CommandFailure("\(command) works with an SQLite database only so far; on PostgreSQL use psql and pg_dump (docs/postgres.md).")
        }
        let store = try GatewayStore(path: databasePath)
        _ = try store.migrate()
        return store
    }

    /// docs/api.md: `--db PATH` may stand before the command too. Move it after the command words,
    /// where ArgumentParser looks for it.
    static func normalise(_ arguments: [String]) -> [String] {
        var global: [String] = []
        var rest: [String] = []
        var index = 0
        var seenCommand = false
        while index < arguments.count {
            let argument = arguments[index]
            if !seenCommand && argument == "--db" && index + 1 < arguments.count {
                global += [argument, arguments[index + 1]]
                index += 2
                continue
            }
            if !seenCommand && argument.hasPrefix("--db=") {
                global.append(argument)
                index += 1
                continue
            }
            if !argument.hasPrefix("-") { seenCommand = true }
            rest.append(argument)
            index += 1
        }
        return rest + global
    }
}

/// Limits options shared by org, project and key creation.
struct LimitOptions: ParsableArguments {
    @Option(help: "Requests per minute.") var rpm: Int?
    @Option(help: "Tokens per minute.") var tpm: Int?
    @Option(name: .customLong("monthly-budget"), help: "Monthly spend cap in USD.") var monthlyBudget: Double?

    var value: Limits { Limits(requestsPerMinute: rpm, tokensPerMinute: tpm, monthlyBudgetUSD: monthlyBudget) }

    func validate() throws {
        if let rpm, rpm < 0 { throw ValidationError("--rpm must be zero or more.") }
        if let tpm, tpm < 0 { throw ValidationError("--tpm must be zero or more.") }
        if let monthlyBudget, monthlyBudget < 0 { throw ValidationError("--monthly-budget must be zero or more.") }
    }
}

/// `--from` / `--to` of the commands that read the audit log (UTC; a bare `--to` date is inclusive).
struct DateRangeOptions: ParsableArguments {
    @Option(help: "From this date or time (UTC, inclusive), e.g. 2026-11-01.") var from: String?
    @Option(help: "Up to this date (inclusive) or time (exclusive).") var to: String?

    func range() throws -> (from: Date?, to: Date?) {
        var range: (from: Date?, to: Date?) = (nil, nil)
        if let from {
            guard let date = AuditExport.parseDate(from) else { throw ValidationError("--from: not a date: \(from)") }
            range.from = date
        }
        if let to {
            guard let date = AuditExport.parseDate(to, endOfDay: true) else { throw ValidationError("--to: not a date: \(to)") }
            range.to = date
        }
        return range
    }
}

/// Errors the commands report to the operator (exit code 1, message on stderr).
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
