/// The client went away: a write to it failed. Responders stop work (and cancel the upstream call).
public struct ClientDisconnected: Error, Sendable {
    public init() {}
}

/// Where a responder writes its answer. The transport decides how bytes reach the client; a
/// writer's calls must be made in order: `writeHead` once, `writeBody` any number of times, `end` once.
public protocol ResponseWriter: Sendable {
    func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected)
    /// `flush: true` pushes the bytes to the client now (one SSE event); otherwise the transport
    /// may buffer until `end`.
    func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected)
    /// Completes the response and releases the transport's resources.
    func end() async
}

/// The one method a gateway handler implements.
public protocol Responder: Sendable {
    func respond(to request: HTTPRequest, writer: any ResponseWriter) async
}

public enum HTTPStatus {
    /// Reason phrases for the CGI `Status:` line.
    public static func reasonPhrase(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 201: return "Created"
        case 204: return "No Content"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 402: return "Payment Required"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 409: return "Conflict"
        case 413: return "Payload Too Large"
        case 422: return "Unprocessable Entity"
        case 429: return "Too Many Requests"
        case 499: return "Client Closed Request"
        case 500: return "Internal Server Error"
        case 502: return "Bad Gateway"
        case 503: return "Service Unavailable"
        case 504: return "Gateway Timeout"
        case 529: return "Overloaded"
        default: return "Status \(status)"
        }
    }
}
