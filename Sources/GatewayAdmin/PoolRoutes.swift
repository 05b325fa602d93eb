import GatewayCore
import GatewayHTTP
import Logging
import PoolScoreboard

/// The pool's own pages, php-fpm's `pm.status_path` and `ping.path` for this gateway:
/// `GET /metrics` (Prometheus), `GET /status` (`?json`, `?full`) and `GET /ping`. Whichever
/// worker nginx picks answers for the whole pool, from the shared scoreboard.
/// `/metrics` and `/status` take an installation-wide admin token (they show every project's
/// figures together), `/metrics` none with `serve --metrics-public`; `/ping` is open.
public final class PoolRoutes: Sendable {
    let scoreboard: Scoreboard?
    let admin: AdminApplication
    let metricsPublic: Bool
    let poolName: String
    /// The listening socket (fd 0 in a worker), for the listen queue's length.
    let listeningSocket: Int32

    public init(scoreboard: Scoreboard?, admin: AdminApplication, metricsPublic: Bool, poolName: String, listeningSocket: Int32 = 0) {
        self.scoreboard = scoreboard
        self.admin = admin
        self.metricsPublic = metricsPublic
        self.poolName = poolName
        self.listeningSocket = listeningSocket
    }

    public static func handles(path: String) -> Bool {
        path == "/metrics" || path == "/status" || path == "/ping"
    }

    public func respond(to request: HTTPRequest, writer: any ResponseWriter) async {
        let response = AdminResponse(requestID: "pool_" + AdminSecrets.randomToken(bytes: 8), writer: writer)
        do {
            guard request.method == "GET" || request.method == "HEAD" else {
                throw GatewayError.methodNotAllowed("Use GET for \(request.path).")
            }
            if request.path == "/ping" {
                try await send("pong\n", contentType: "text/plain; charset=utf-8", request: request, response: response)
                return
            }
            if request.path == "/status" || !metricsPublic {
                let access = try await admin.authenticate(request)
                guard access.isInstallationWide else {
                    throw GatewayError.forbidden("\(request.path) shows the whole installation: use an admin token without --org or --project.")
                }
            }
            guard let scoreboard else {
                throw GatewayError.notFound("\(request.path) exists only under `deploxa-gateway serve` (it reads the pool's scoreboard).")
            }
            let queue = ListenQueue.sample(fileDescriptor: listeningSocket)?.queued
            if request.path == "/metrics" {
                try await send(PrometheusExposition.render(scoreboard, listenQueue: queue), contentType: PrometheusExposition.contentType,
                               request: request, response: response)
                return
            }
            let parameters = Set(request.query.split(separator: "&").map { String($0.split(separator: "=").first ?? "") })
            let full = parameters.contains("full")
            let snapshot = scoreboard.snapshot(listenQueue: queue)
            if parameters.contains("json") {
                try await send(PoolStatusPage.json(snapshot, poolName: poolName, full: full) + "\n", contentType: "application/json",
                               request: request, response: response)
            } else {
                try await send(PoolStatusPage.text(snapshot, poolName: poolName, full: full), contentType: "text/plain; charset=utf-8",
                               request: request, response: response)
            }
        } catch is ClientDisconnected {
            // Nothing to answer.
        } catch {
            await response.error(error)
        }
    }

    private func send(_ text: String, contentType: String, request: HTTPRequest, response: AdminResponse) async throws {
        try await response.writer.writeHead(status: 200, headers: response.headers(contentType: contentType))
        if request.method != "HEAD" { try await response.writer.writeBody(Array(text.utf8), flush: false) }
    }
}
