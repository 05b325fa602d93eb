import ArgumentParser
import Foundation
import GatewayCore
import GatewayStore

/// `admin-token create|list|revoke`: the credentials of the admin API and the dashboard.
struct AdminTokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token", abstract: "Manage admin tokens (for /api/v1 and /dashboard).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an admin token; it is printed once, on its own line.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "A name to recognise the token by.") var name: String?
        @Option(help: "Limit the token to this org and its projects.") var org: String?
        @Option(help: "Limit the token to this ORG/PROJECT.") var project: String?
        @Flag(name: .customLong("read-only"), help: "The token can read but never change anything.") var readOnly = false

        func validate() throws {
            if org != nil && project != nil { throw ValidationError("Give at most one of --org and --project.") }
        }

        func run() throws {
            let store = try global.openAdmin()
            let (token, secret) = try store.createAdminToken(name: name, orgName: org, projectSlug: project, readOnly: readOnly)
            if global.json {
                Output.json(AdminTokenCommand.json(token).merging(["secret": .string(secret)]))
            } else {
                FileHandle.standardError.write(Data("Created admin token \(token.id) (\(AdminTokenCommand.scope(token))\(token.readOnly ? ", read-only" : "")). It is shown once; store it now:\n".utf8))
                print(secret)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List admin tokens (ids only; tokens are stored hashed).")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let store = try global.openAdmin()
            Output.list(try store.adminTokens(), json: global.json,
                        headers: ["ID", "NAME", "SCOPE", "ACCESS", "CREATED", "STATUS"],
                        object: AdminTokenCommand.json,
                        cells: { [$0.id, $0.name ?? "-", AdminTokenCommand.scope($0), $0.readOnly ? "read-only" : "read-write",
                                  Output.timestamp($0.createdAt), $0.revokedAt == nil ? "active" : "revoked"] })
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke an admin token; it and its dashboard sessions stop working at once.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "TOKEN_ID (at_…)") var tokenID: String

        func run() throws {
            let store = try global.openAdmin()
            guard try store.revokeAdminToken(id: tokenID) else { throw CommandFailure("No active admin token \(tokenID).") }
            if global.json { Output.json(["id": .string(tokenID), "revoked": true]) } else { print("Revoked \(tokenID).") }
        }
    }

    static func scope(_ token: AdminToken) -> String {
        switch token.scope {
        case .installation: return "installation"
        case .org(_, let name): return "org:\(name)"
        case .project(_, _, let slug): return "project:\(slug)"
        }
    }

    static func json(_ token: AdminToken) -> JSON {
        var scope: JSON = ["kind": "installation"]
        switch token.scope {
        case .installation: break
        case .org(_, let name): scope = ["kind": "org", "org": .string(name)]
        case .project(_, _, let slug): scope = ["kind": "project", "project": .string(slug)]
        }
        return [
            "id": .string(token.id), "name": token.name.map(JSON.string) ?? .null, "scope": scope, "read_only": .bool(token.readOnly),
            "created_at": .string(Output.timestamp(token.createdAt)),
            "revoked_at": token.revokedAt.map { .string(Output.timestamp($0)) } ?? .null,
        ]
    }
}

/// `rollup rebuild`: recomputes the usage summaries from the audit rows still kept.
struct RollupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rollup", abstract: "Maintain the usage summary tables.", subcommands: [Rebuild.self])

    struct Rebuild: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hourly and daily usage summaries from the audit rows.",
            discussion: "Summaries of hours whose raw rows retention has already deleted are lost by a rebuild; run it after a restore or a manual edit of audit_log.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            let store = try global.openStore()
            let started = Date()
            let folded = try store.rebuildRollups()
            let seconds = Date().timeIntervalSince(started)
            if global.json {
                Output.json(["rows_folded": .int(Int64(folded)), "seconds": .double((seconds * 100).rounded() / 100)])
            } else {
                print("Rebuilt usage summaries from \(folded) audit rows in \(String(format: "%.2f", seconds)) s.")
            }
        }
    }
}

extension JSON {
    /// This object with `other`'s fields added (replacing any of the same name).
    func merging(_ other: JSON) -> JSON {
        guard case .object(var object) = self, case .object(let extra) = other else { return self }
        for (key, value) in extra { object[key] = value }
        return .object(object)
    }
}
