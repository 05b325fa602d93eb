import Foundation

/// One provider's wire format. Add a provider by adding a sibling file with a type that
/// conforms (e.g. `AnthropicSimulation.swift`) and listing it in `SimulatorRouter.providers`.
protocol SimulatedProvider: Sendable {
    /// Path prefixes the provider answers under, e.g. `"/openai"`. `""` matches bare paths.
    /// The longest matching prefix across all providers wins.
    var mountPoints: [String] { get }

    /// Answers a request. `path` is the request path with the mount point removed
    /// (`/v1/chat/completions`). `script` holds the `X-Sim` header's directives; the provider
    /// `scan`s its message texts into it and returns a plain response, which the router then
    /// decorates with the final script. Must not throw or trap on any input: bad input is a 4xx.
    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse
}

extension SimulatedProvider {
    /// The name provider-scoped directives use: the first mount point without its slash.
    var name: String { String(mountPoints[0].dropFirst()) }

    /// Keys that are always refused, so tests can exercise a bad upstream key.
    static var rejectedKeys: Set<String> { ["sk-invalid"] }
}

/// Simulator-wide services a provider may use while answering.
struct SimulationContext: Sendable {
    let stats: SimulatorStats

    /// Unix seconds, for `created` fields.
    var now: Int { Int(Date().timeIntervalSince1970) }
}
