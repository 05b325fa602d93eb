import ArgumentParser
import Foundation
import GatewayCore
import GatewayStore

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Create or upgrade the database schema.")
    @OptionGroup var global: GlobalOptions

    func run() throws {
        let backend = try global.backend()
        let applied = try backend.openConfiguration(migrate: false).migrate()
        let name = backend.displayName
        if global.json {
            Output.json(["database": .string(name), "applied": .array(applied.map(JSON.string))])
        } else if applied.isEmpty {
            print("Database \(name) is up to date.")
        } else {
            print("Applied \(applied.count) migration(s) to \(name): \(applied.joined(separator: ", "))")
        }
    }
}

struct OrgCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "org", abstract: "Manage organisations.", subcommands: [Create.self, SetLimits.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an organisation.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Organisation name (lowercase letters, digits, - and _).") var name: String
        @OptionGroup var limits: LimitOptions

        func run() throws {
            let store = try global.openConfiguration()
            let org = try store.createOrg(name: name, limits: limits.value)
            if global.json {
                Output.json(["id": .int(org.id), "name": .string(org.name), "limits": Output.limitsJSON(org.limits)])
            } else {
                print("Created org \(org.name).")
            }
        }
    }
}

struct ProjectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "project", abstract: "Manage projects.", subcommands: [Create.self, List.self, SetLimits.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a project in an organisation.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Option(help: "Plan: free, pro or team.") var plan: String = "pro"
        @OptionGroup var limits: LimitOptions

        func run() throws {
            let (org, name) = try splitSlug(slug)
            guard let plan = Plan(rawValue: plan) else { throw ValidationError("--plan must be free, pro or team.") }
            let store = try global.openConfiguration()
            let project = try store.createProject(orgName: org, name: name, plan: plan,
                                                  limits: limits.value)
            if global.json {
                Output.json(["id": .int(project.id), "project": .string(project.slug), "plan": .string(project.plan.rawValue), "limits": Output.limitsJSON(project.limits)])
            } else {
                print("Created project \(project.slug) (plan \(project.plan.rawValue)).")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List projects.")
        @OptionGroup var global: GlobalOptions

        func run() throws {
            Output.list(try global.openConfiguration().projects(), json: global.json, headers: ["PROJECT", "PLAN", "RPM", "TPM", "BUDGET_USD"],
                        object: { ["id": .int($0.id), "project": .string($0.slug), "plan": .string($0.plan.rawValue), "limits": Output.limitsJSON($0.limits)] },
                        cells: { [$0.slug, $0.plan.rawValue] + Output.limitCells($0.limits) })
        }
    }
}

func splitSlug(_ slug: String) throws -> (org: String, project: String) {
    let parts = slug.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw ValidationError("Expected ORG/PROJECT, got '\(slug)'.")
    }
    return (String(parts[0]), String(parts[1]))
}

func requireProject(_ store: any ConfigurationStore, _ slug: String) throws -> Project {
    _ = try splitSlug(slug)
    guard let project = try store.project(slug: slug) else { throw CommandFailure("No project \(slug).") }
    return project
}

struct ProviderCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "provider", abstract: "Configure providers for a project.", subcommands: [Set.self, List.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a provider's API key (from standard input, or --api-key-env) and optional base URL.",
            discussion: "The key is never taken as an argument: it would show in `ps` and shell history.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Argument(help: "openai, anthropic, google, mistral or cohere") var provider: String
        @Option(name: .customLong("api-key-env"), help: "Read the key from this environment variable.") var apiKeyEnv: String?
        @Option(name: .customLong("base-url"), help: "Root URL the provider's API paths are appended to.") var baseURL: String?

        func run() throws {
            guard let provider = Provider(rawValue: provider) else {
                throw ValidationError("Unknown provider '\(provider)'; use one of \(Provider.allCases.map(\.rawValue).joined(separator: ", ")).")
            }
            if let baseURL, !(baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://")) {
                throw ValidationError("--base-url must start with http:// or https://.")
            }
            let key: String
            if let apiKeyEnv {
                guard let value = ProcessInfo.processInfo.environment[apiKeyEnv], !value.isEmpty else {
                    throw CommandFailure("Environment variable \(apiKeyEnv) is not set or empty.")
                }
                key = value
            } else {
                var lines: [String] = []
                while let line = readLine(strippingNewline: true) { lines.append(line) }
                key = lines.joined().trimmingCharacters(in: .whitespacesAndNewlines)
                guard !key.isEmpty else { throw CommandFailure("No API key on standard input (or use --api-key-env VAR).") }
            }
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            try store.setProvider(projectID: project.id, provider: provider, apiKey: Secret(key), baseURL: baseURL)
            if global.json {
                Output.json(["project": .string(project.slug), "provider": .string(provider.rawValue), "base_url": .string(baseURL ?? provider.defaultBaseURL)])
            } else {
                print("Provider \(provider.rawValue) set for \(project.slug) (\(baseURL ?? provider.defaultBaseURL)).")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a project's providers (keys are never shown).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String

        func run() throws {
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            Output.list(try store.providers(projectID: project.id), json: global.json, headers: ["PROVIDER", "BASE_URL", "KEY", "UPDATED"],
                        object: { ["provider": .string($0.provider.rawValue), "base_url": .string($0.effectiveBaseURL), "key_set": true,
                                   "updated_at": .string(Output.timestamp($0.updatedAt))] },
                        cells: { [$0.provider.rawValue, $0.effectiveBaseURL, "set", Output.timestamp($0.updatedAt)] })
        }
    }
}

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "key", abstract: "Manage gateway keys.", subcommands: [Create.self, List.self, Revoke.self, SetLimits.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a gateway key; the secret is printed once, on its own line.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Option(help: "A name to recognise the key by.") var name: String?
        @OptionGroup var limits: LimitOptions

        func run() throws {
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            let (key, secret) = try store.createKey(projectID: project.id, name: name,
                                                    limits: limits.value)
            if global.json {
                Output.json(["id": .string(key.id), "project": .string(project.slug), "name": key.name.map(JSON.string) ?? .null, "secret": .string(secret)])
            } else {
                FileHandle.standardError.write(Data("Created key \(key.id) for \(project.slug). The secret is shown once; store it now:\n".utf8))
                print(secret)
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a project's keys (ids only; secrets are not stored).")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String

        func run() throws {
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            Output.list(try store.keys(projectID: project.id), json: global.json,
                        headers: ["ID", "NAME", "CREATED", "STATUS", "RPM", "TPM", "BUDGET_USD"],
                        object: { ["id": .string($0.id), "name": $0.name.map(JSON.string) ?? .null, "created_at": .string(Output.timestamp($0.createdAt)),
                                   "revoked_at": $0.revokedAt.map { .string(Output.timestamp($0)) } ?? .null, "limits": Output.limitsJSON($0.limits)] },
                        cells: { [$0.id, $0.name ?? "-", Output.timestamp($0.createdAt), $0.isRevoked ? "revoked" : "active"]
                                 + Output.limitCells($0.limits) })
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key; it stops working at once.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "KEY_ID (gk_…)") var keyID: String

        func run() throws {
            let store = try global.openConfiguration()
            guard try store.revokeKey(id: keyID) else { throw CommandFailure("No key \(keyID).") }
            if global.json { Output.json(["id": .string(keyID), "revoked": true]) } else { print("Revoked \(keyID).") }
        }
    }
}
