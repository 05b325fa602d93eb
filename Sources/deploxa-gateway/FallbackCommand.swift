import ArgumentParser
import GatewayCore
import GatewayStore

/// `fallback set|list|remove`: a project's fallback chains, used when a request has no
/// `X-AI-Fallback` header.
struct FallbackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fallback", abstract: "Configure a project's fallback chains.", subcommands: [Set.self, List.self, Remove.self])

    struct Set: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set (replace) the chain tried when a request to PROVIDER/MODEL fails with a 5xx, 429, connection failure or timeout.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Argument(help: "The request's PROVIDER/MODEL, e.g. openai/gpt-4o.") var primary: String
        @Option(name: .customLong("to"), help: "PROVIDER/MODEL[,PROVIDER/MODEL...], tried in order.") var targets: String

        func run() throws {
            let primary = try parseTarget(primary)
            let targets: [FallbackTarget]
            switch FallbackTarget.parseList(self.targets) {
            case .success(let parsed): targets = parsed
            case .failure(let error): throw ValidationError("--to: \(error.description).")
            }
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            let configured = Swift.Set(try store.providers(projectID: project.id).map(\.provider))
            for target in [primary] + targets where !configured.contains(target.provider) {
                throw CommandFailure("Provider \(target.provider.rawValue) is not configured for \(project.slug) (provider set \(project.slug) \(target.provider.rawValue)).")
            }
            try store.setFallbackChain(FallbackChain(projectID: project.id, primary: primary, targets: targets))
            if global.json {
                Output.json(chainJSON(FallbackChain(projectID: project.id, primary: primary, targets: targets)))
            } else {
                print("Requests to \(primary) in \(project.slug) fall back to \(targets.map(\.description).joined(separator: ", ")).")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a project's fallback chains.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String

        func run() throws {
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            Output.list(try store.fallbackChains(projectID: project.id), json: global.json, headers: ["REQUEST", "FALLS BACK TO"],
                        object: chainJSON, cells: { [$0.primary.description, $0.targets.map(\.description).joined(separator: ", ")] })
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the chain for PROVIDER/MODEL.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "ORG/PROJECT") var slug: String
        @Argument(help: "PROVIDER/MODEL") var primary: String

        func run() throws {
            let primary = try parseTarget(primary)
            let store = try global.openConfiguration()
            let project = try requireProject(store, slug)
            guard try store.removeFallbackChain(projectID: project.id, primary: primary) else {
                throw CommandFailure("\(project.slug) has no fallback chain for \(primary).")
            }
            if global.json {
                Output.json(["project": .string(project.slug), "removed": .string(primary.description)])
            } else {
                print("Removed the fallback chain for \(primary) in \(project.slug).")
            }
        }
    }
}

private func parseTarget(_ text: String) throws -> FallbackTarget {
    switch FallbackTarget.parse(text) {
    case .success(let target): return target
    case .failure(let error): throw ValidationError("\(error.description).")
    }
}

private func chainJSON(_ chain: FallbackChain) -> JSON {
    ["provider": .string(chain.primary.provider.rawValue), "model": .string(chain.primary.model),
     "targets": .array(chain.targets.map { .string($0.description) })]
}
