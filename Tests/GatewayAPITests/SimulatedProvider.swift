import GatewayCore
import GatewayTesting
import GatewayUpstream

/// The provider simulator on a free loopback port, for tests that drive `UpstreamClient` itself
/// (no pipeline). `root` serves every provider's API under its name (`/google/v1beta/…`);
/// `send` makes one OpenAI chat call, scripted through the `X-Sim` header.
final class SimulatedProvider: Sendable {
    let simulator: ProviderSimulator
    let root: String
    let url: String

    init() async throws {
        simulator = ProviderSimulator(configuration: SimulatorConfiguration(host: "127.0.0.1", port: 0))
        let port = try await simulator.start()
        root = "http://127.0.0.1:\(port)"
        url = root + "/openai/v1/chat/completions"
    }

    deinit {
        let simulator = self.simulator
        Task { try? await simulator.stop() }
    }

    /// Sends one chat request scripted by `sim` (e.g. "words=3 chunk_delay_ms=100") and returns
    /// the response head, its body unread.
    func send(_ client: UpstreamClient, sim: String, stream: Bool) async throws -> UpstreamResponse {
        let body = #"{"model":"gpt-4o","stream":\#(stream),"messages":[{"role":"user","content":"hi"}]}"#
        let headers = [(name: "Content-Type", value: "application/json"), (name: "Authorization", value: "Bearer sk-sim"),
                       (name: "X-Sim", value: sim)]
        return try await client.send(UpstreamRequest(method: "POST", url: url, headers: headers, body: Array(body.utf8)))
    }
}
