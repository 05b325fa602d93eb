import ArgumentParser
import Foundation

/// The one binary: operators' commands, the FastCGI server, and the provider simulator.
@main
struct DeploxaGateway: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploxa-gateway",
        abstract: "A self-hosted AI gateway: one OpenAI-compatible endpoint in front of OpenAI, Anthropic, Gemini, Mistral and Cohere.",
        discussion: "Global option: --db PATH (or DEPLOXA_GATEWAY_DB), accepted before or after the command.",
        subcommands: [
            MigrateCommand.self, OrgCommand.self, ProjectCommand.self, ProviderCommand.self, KeyCommand.self,
            PriceCommand.self, FallbackCommand.self, UsageCommand.self, AuditCommand.self, AdmitLoopCommand.self, ServeCommand.self, WorkerCommand.self, SimulateCommand.self,
        ])

    static func main() async {
        var arguments = GlobalOptions.normalise(Array(CommandLine.arguments.dropFirst()))
        // Started by a web server as a plain CGI program: serve that one request (libfcgi falls
        // back to CGI when standard input is not a FastCGI listener).
        if arguments.isEmpty, ProcessInfo.processInfo.environment["GATEWAY_INTERFACE"] != nil {
            arguments = ["worker", "--accept-threads", "1", "--log-level", "warning"]
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
