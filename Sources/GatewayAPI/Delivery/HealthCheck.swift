import GatewayCore
import GatewayHTTP
import GatewayStore

/// GET /healthz: 200 when the database answers. Not audited.
enum HealthCheck {
    static func respond(to request: HTTPRequest, store: any RequestStore, writer: any ResponseWriter) async {
        var headers = RequestOutcome(request).headers()
        headers.add(name: "Cache-Control", value: "no-store")
        let healthy = (try? store.ping()) != nil
        let body: JSON = healthy ? ["status": "ok"] : ["status": "unavailable", "error": "database unreachable"]
        try? await writer.writeHead(status: healthy ? 200 : 503, headers: headers)
        try? await writer.writeBody(body.serialized(), flush: false)
    }
}
