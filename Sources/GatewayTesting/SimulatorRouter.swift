import NIOCore
import NIOHTTP1

/// Routes a request to the `/_sim` control endpoints or to the simulated provider mounted at
/// its path, and counts provider requests.
struct SimulatorRouter: Sendable {
    /// Largest request body accepted; larger ones get a 413.
    static let maxBodyBytes = 16 * 1024 * 1024

    let stats: SimulatorStats
    let providers: [any SimulatedProvider] = [
        OpenAISimulation(), AnthropicSimulation(), GoogleSimulation(), MistralSimulation(), CohereSimulation(),
    ]

    /// Whether `path` belongs to a provider (and so is counted), rather than to `/_sim`.
    static func isProviderPath(_ path: String) -> Bool {
        !(path == "/_sim" || path.hasPrefix("/_sim/"))
    }

    func respond(to request: SimulatorRequest) -> SimulatedResponse {
        guard Self.isProviderPath(request.path) else { return control(request) }
        stats.record(method: request.method, path: request.path, headers: request.headers, body: request.body)
        guard let (provider, subpath) = provider(for: request.path) else {
            return OpenAISimulation.error(status: .notFound, message: "Unknown request URL: \(request.path).", code: nil)
        }
        var script = SimulatorScript(header: request.header("x-sim"), provider: provider.name)
        let response = provider.respond(to: request, path: subpath, script: &script, context: SimulationContext(stats: stats))
        return script.decorate(response)
    }

    /// The answer for a body over `maxBodyBytes` (the body was not kept).
    func payloadTooLarge(_ request: SimulatorRequest) -> SimulatedResponse {
        if Self.isProviderPath(request.path) {
            stats.record(method: request.method, path: request.path, headers: request.headers, body: request.body)
        }
        return OpenAISimulation.error(
            status: .payloadTooLarge,
            message: "Request body exceeds \(Self.maxBodyBytes) bytes.",
            code: "request_too_large"
        )
    }

    private func provider(for path: String) -> (any SimulatedProvider, String)? {
        var best: (provider: any SimulatedProvider, mount: String)?
        for provider in providers {
            for mount in provider.mountPoints where path == mount || path.hasPrefix(mount + "/") || mount.isEmpty {
                if best == nil || mount.count > best!.mount.count { best = (provider, mount) }
            }
        }
        guard let best else { return nil }
        return (best.provider, String(path.dropFirst(best.mount.count)))
    }

    private func control(_ request: SimulatorRequest) -> SimulatedResponse {
        switch (request.method, request.path) {
        case (.GET, "/_sim/stats"):
            return .json(.ok, stats.snapshot())
        case (.GET, "/_sim/last"):
            guard let last = stats.lastRequestObject() else {
                return simError(.notFound, "No provider request has been seen since start or the last reset.")
            }
            return .json(.ok, last)
        case (.POST, "/_sim/reset"):
            stats.reset()
            return .json(.ok, stats.snapshot())
        case (_, "/_sim/stats"), (_, "/_sim/last"), (_, "/_sim/reset"):
            return simError(.methodNotAllowed, "Method \(request.method.rawValue) is not allowed on \(request.path).")
        default:
            return simError(.notFound, "Unknown simulator control path \(request.path); use /_sim/stats, /_sim/last or /_sim/reset.")
        }
    }

    private func simError(_ status: HTTPResponseStatus, _ message: String) -> SimulatedResponse {
        .json(status, ["error": ["message": message, "type": "simulator_error"]])
    }
}
