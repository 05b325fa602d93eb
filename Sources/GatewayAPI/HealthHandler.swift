import GatewayCore
import GatewayHTTP
import GatewayStore

/// GET /healthz: 200 when the database answers.
struct HealthHandler: Sendable {
    let store: GatewayStore

    func respond(to request: HTTPRequest, context: RequestContext, writer: any ResponseWriter) async {
        var headers = baseHeaders(context)
        headers.add(name: "Cache-Control", value: "no-store")
        let healthy = (try? store.ping()) != nil
        let body: JSON = healthy ? ["status": "ok"] : ["status": "unavailable", "error": "database unreachable"]
        try? await writer.writeHead(status: healthy ? 200 : 503, headers: headers)
        try? await writer.writeBody(body.serialized(), flush: false)
    }
}
