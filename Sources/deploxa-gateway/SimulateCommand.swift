import ArgumentParser
import GatewayTesting

struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the provider simulator (for tests, demos and benchmarks): a local HTTP server speaking the providers' wire formats.")

    @Option(help: "HOST:PORT to listen on (loopback).") var listen = "127.0.0.1:9000"

    func run() async throws {
        let parts = listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--listen must be HOST:PORT.") }
        try await ProviderSimulator.run(configuration: SimulatorConfiguration(host: String(parts[0]), port: port))
    }
}
