import GatewayAPI
import GatewayCore
import GatewayHTTP

/// Writes the admin API's answers: JSON with the request id, never cached by a browser or proxy.
struct AdminResponse {
    let requestID: String
    let writer: any ResponseWriter

    func headers(contentType: String) -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        headers.add(name: "X-Request-Id", value: requestID)
        headers.add(name: "Cache-Control", value: "no-store")
        headers.add(name: "X-Content-Type-Options", value: "nosniff")
        return headers
    }

    func json(_ body: JSON, status: Int = 200) async throws {
        try await writer.writeHead(status: status, headers: headers(contentType: "application/json"))
        try await writer.writeBody(body.serialized(), flush: false)
    }

    func noContent() async throws {
        try await writer.writeHead(status: 204, headers: headers(contentType: "application/json"))
    }

    /// The one place admin failures become answers, in the data plane's OpenAI error shape.
    func error(_ error: any Error) async {
        let gatewayError = ErrorResponse.gatewayError(for: error)
        var headers = headers(contentType: "application/json")
        if let retryAfter = gatewayError.retryAfter { headers.add(name: "Retry-After", value: String(retryAfter)) }
        if gatewayError.status == 401 { headers.add(name: "WWW-Authenticate", value: "Bearer realm=\"deploxa-admin\"") }
        do {
            try await writer.writeHead(status: gatewayError.status, headers: headers)
            try await writer.writeBody(gatewayError.body.serialized(), flush: false)
        } catch {
            // The client left.
        }
    }
}
