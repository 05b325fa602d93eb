import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Where the provider simulator listens.
public struct SimulatorConfiguration: Sendable {
    /// Address to bind; keep it on loopback.
    public var host: String = "127.0.0.1"
    /// Port to bind; `0` picks a free ephemeral port (see `ProviderSimulator.start()`).
    public var port: Int = 9000

    public init(host: String = "127.0.0.1", port: Int = 9000) {
        self.host = host
        self.port = port
    }
}

/// An HTTP/1.1 server on loopback that speaks LLM provider wire formats (OpenAI Chat
/// Completions, embeddings and models today), so end-to-end tests and benchmarks can point
/// the gateway at it instead of real providers.
///
/// Behaviour is scripted per request by `[sim k=v ...]` directives inside message text (they
/// pass through the gateway) or an `X-Sim: k=v ...` header: `words`, `status`, `retry_after`,
/// `latency_ms`, `chunk_delay_ms`, `split`, `unicode`, `disconnect_after`, `malformed`,
/// `empty_body`, `tool`, `stream_error_after`, `pause_after` + `pause_ms`; `provider:key=value` applies only to that
/// provider (`[sim openai:status=500]` fails the first target of a fallback chain only). `GET /_sim/stats`, `GET /_sim/last` and `POST /_sim/reset` expose what the
/// simulator saw; credentials appear only as SHA-256 digests.
///
/// All timing runs on event-loop timers of `MultiThreadedEventLoopGroup.singleton`, so one
/// process holds thousands of slow streams.
public final class ProviderSimulator: Sendable {
    private let configuration: SimulatorConfiguration
    private let stats = SimulatorStats()
    private let channels = ChannelRegistry()

    public init(configuration: SimulatorConfiguration) {
        self.configuration = configuration
    }

    /// Binds and returns the bound port (port 0 → an ephemeral port). Calling it again while
    /// running returns the same port.
    public func start() async throws -> Int {
        if let port = channels.server?.localAddress?.port { return port }
        let router = SimulatorRouter(stats: stats)
        let registry = channels
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 4096)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                registry.add(channel)
                channel.closeFuture.whenComplete { _ in registry.remove(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(SimulatorHTTPHandler(router: router))
                }
            }
        let server = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        guard registry.setServer(server) else {
            try await server.close()
            return try await start()
        }
        return server.localAddress?.port ?? configuration.port
    }

    /// Stops listening and closes every open connection, including streams in progress.
    public func stop() async throws {
        let (server, connections) = channels.takeAll()
        if let server { try? await server.close() }
        for connection in connections { try? await connection.close() }
    }

    /// Binds, prints "simulator listening on http://HOST:PORT" to stdout (flushed), and
    /// serves until the process ends.
    public static func run(configuration: SimulatorConfiguration) async throws {
        let simulator = ProviderSimulator(configuration: configuration)
        let port = try await simulator.start()
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        print("simulator listening on http://\(host):\(port)")
        fflush(nil)  // all C streams, stdout included (naming `stdout` is not concurrency-safe)
        try await simulator.channels.server?.closeFuture.get()
    }
}

/// The listening channel and the open connections, so `stop()` can close them all.
private final class ChannelRegistry: Sendable {
    private struct State {
        var serverChannel: (any Channel)?
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    private let state = Mutex(State())

    var server: (any Channel)? { state.withLock { $0.serverChannel } }

    /// Records the server channel; `false` if another `start()` won the race.
    func setServer(_ channel: any Channel) -> Bool {
        state.withLock { state in
            guard state.serverChannel == nil else { return false }
            state.serverChannel = channel
            return true
        }
    }

    func add(_ channel: any Channel) { state.withLock { $0.connections[ObjectIdentifier(channel)] = channel } }
    func remove(_ channel: any Channel) { state.withLock { _ = $0.connections.removeValue(forKey: ObjectIdentifier(channel)) } }

    func takeAll() -> ((any Channel)?, [any Channel]) {
        state.withLock { state in
            let taken = (state.serverChannel, Array(state.connections.values))
            state.serverChannel = nil
            state.connections = [:]
            return taken
        }
    }
}
