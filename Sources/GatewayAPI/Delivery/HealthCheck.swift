import GatewayCore
import GatewayHTTP
import GatewayStore

/// GET /healthz: 200 when the database answers. Not audited.
enum HealthCheck {
    static func respond(store: any RequestStore, writer: any ResponseWriter) async {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "X-Request-Id", value: RequestOutcome.makeRequestID())
        headers.add(name: "Cache-Control", value: "no-store")
        let healthy = (try? store.ping()) != nil
        let body: JSON = healthy ? ["status": "ok"] : ["status": "unavailable", "error": "database unreachable"]
        try? await writer.writeHead(status: healthy ? 200 : 503, headers: headers)
        try? await writer.writeBody(body.serialized(), flush: false)
    }
}
