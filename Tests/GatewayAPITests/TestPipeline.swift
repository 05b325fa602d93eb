import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import GatewayUpstream
import Logging
import Testing

/// The pipeline end to end in one process, for the suites that subclass it: a fresh SQLite file
/// with org `acme`, project `web` and one key; the provider simulator on loopback with the given
/// providers configured for the project; the real upstream client. Only nginx and libfcgi are
/// left out (the e2e suite has them).
class TestPipeline {
    let directory: URL
    let store: GatewayStore
    let auditWriter: AuditWriter
    let upstream: UpstreamClient
    let simulator: ProviderSimulator
    let application: GatewayApplication
    let secret: String
    let simulatorPort: Int
    let projectID: Int64
    /// Headers every `chat` call sends besides the key (e.g. `X-AI-Provider`).
    let defaultHeaders: [(String, String)]

    /// `providers`: each provider with the API key the project stores for it.
    /// `breakerFailures` 0 leaves the circuit breaker off (suites that script failures on purpose).
    init(providers: [(Provider, String)], defaultHeaders: [(String, String)] = [], maxBodyBytes: Int = 65536,
         firstByteTimeout: Double = 2, totalTimeout: Double = 900, breakerFailures: Int = 0,
         breakerCooldownSeconds: Double = 30) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("deploxa-pipeline-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("gw.db").path
        store = try GatewayStore(path: path)
        try store.migrate()
        simulator = ProviderSimulator(configuration: SimulatorConfiguration(host: "127.0.0.1", port: 0))
        simulatorPort = try await simulator.start()
        _ = try store.createOrg(name: "acme", limits: .none)
        let project = try store.createProject(orgName: "acme", name: "web", plan: .pro, limits: .none)
        projectID = project.id
        for (provider, key) in providers {
            try store.setProvider(projectID: project.id, provider: provider, apiKey: Secret(key),
                                  baseURL: "http://127.0.0.1:\(simulatorPort)/\(provider.rawValue)")
        }
        secret = try store.createKey(projectID: project.id, name: "t", limits: .none).secret
        self.defaultHeaders = defaultHeaders
        auditWriter = AuditWriter(store: try GatewayStore(path: path))
        upstream = UpstreamClient(timeouts: UpstreamTimeouts(connect: 2, firstByte: firstByteTimeout, idle: 2, total: totalTimeout))
        application = GatewayApplication(configuration: GatewayConfiguration(maxBodyBytes: maxBodyBytes, breakerFailures: breakerFailures,
                                                                             breakerCooldownSeconds: breakerCooldownSeconds), store: store,
                                          auditWriter: auditWriter, upstream: upstream, logger: Logger(label: "test"))
    }

    deinit {
        auditWriter.close()
        upstream.shutdownBlocking()
        try? FileManager.default.removeItem(at: directory)
    }

    /// POST /v1/chat/completions (or `method` `path`) with the suite's key unless `key` is given,
    /// to the suite's application unless `through` names another.
    func chat(_ body: String, key: String? = nil, headers extra: [(String, String)] = [], path: String = "/v1/chat/completions",
              method: String = "POST", through: GatewayApplication? = nil, writer: RecordingWriter = RecordingWriter(),
              tooLarge: Bool = false) async -> RecordingWriter {
        var headers = HTTPHeaders()
        headers.add(name: "authorization", value: "Bearer \(key ?? secret)")
        for (name, value) in defaultHeaders + extra { headers.add(name: name, value: value) }
        let request = HTTPRequest(method: method, path: path, headers: headers, body: Array(body.utf8), bodyTooLarge: tooLarge)
        await (through ?? application).respond(to: request, writer: writer)
        return writer
    }

    /// The audit row of the request `writer` answered (after the writer's batch is committed).
    func auditRow(for writer: RecordingWriter) throws -> AuditRecord {
        auditWriter.flush()
        let id = try #require(writer.headers["X-Request-Id"])
        let rows = try store.auditRows(AuditQuery()).filter { $0.record.requestID == id }
        #expect(rows.count == 1, "exactly one audit row per request")
        return try #require(rows.first).record
    }

    /// The JSON `data:` payloads of an OpenAI stream, `[DONE]` excluded.
    func streamEvents(_ writer: RecordingWriter) -> [JSON] {
        writer.text.components(separatedBy: "\n\n").compactMap { block in
            guard block.hasPrefix("data: "), block != "data: [DONE]" else { return nil }
            return try? JSON.parse(Array(block.dropFirst(6).utf8))
        }
    }
}

extension RecordingWriter {
    var json: JSON? { try? JSON.parse(body) }
}
