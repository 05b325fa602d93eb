import ArgumentParser
import FastCGI
import GatewayCore
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
            PriceCommand.self, FallbackCommand.self, UsageCommand.self, AuditCommand.self, AdminTokenCommand.self, RollupCommand.self, AdmitLoopCommand.self, ServeCommand.self, WorkerCommand.self, SimulateCommand.self,
            BackupCommand.self, CheckCommand.self,
        ])

    static func main() async {
        var arguments = GlobalOptions.normalise(Array(CommandLine.arguments.dropFirst()))
        // Before any thread exists: the pool's processes take their signals with sigtimedwait.
        switch arguments.first {
        case "serve": Supervisor.blockSupervisorSignals()
        case "worker": FastCGIWorker.prepareProcess()
        default: break
        }
        let environment = ProcessInfo.processInfo.environment
        // Started by a web server as a plain CGI program: serve that one request (libfcgi falls
        // back to CGI when standard input is not a FastCGI listener). The command line is never
        // read then: a web server passes an ISINDEX query (`?key+revoke+…`) as argv, so obeying it
        // would let anyone on the internet run operators' commands.
        if environment["GATEWAY_INTERFACE"] != nil {
            guard let database = environment["DEPLOXA_GATEWAY_DB"], database.hasPrefix("/") else {
                // Never create a database in whatever folder the web server runs us in.
                CGIMisconfiguration.answer("The gateway is not configured for CGI: the web server must set DEPLOXA_GATEWAY_DB to the absolute path of the gateway's database.")
                Foundation.exit(1)
            }
            arguments = ["worker", "--db", database, "--accept-threads", "1", "--log-level", "warning"]
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

/// The one answer a CGI start gives when it cannot serve at all: a 500 in OpenAI's error shape on
/// standard output, where the web server expects the response.
enum CGIMisconfiguration {
    static func answer(_ message: String) {
        let error = GatewayError(status: 500, type: "server_error", code: "cgi_misconfigured", message: message,
                                 failureClass: .gatewayFault)
        let head = "Status: 500 Internal Server Error\r\nContent-Type: application/json\r\n\r\n"
        FileHandle.standardOutput.write(Data(head.utf8) + Data(error.body.serialized()) + Data("\n".utf8))
        FileHandle.standardError.write(Data("deploxa-gateway: \(message)\n".utf8))
    }
}
