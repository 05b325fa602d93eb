import NIOCore
import NIOHTTP1

/// A fully received HTTP request, as the router and the simulated providers see it.
struct SimulatorRequest {
    var method: HTTPMethod
    /// The path without the query string, e.g. `/openai/v1/chat/completions`.
    var path: String
    var query: String?
    var headers: HTTPHeaders
    var body: ByteBuffer

    init(head: HTTPRequestHead, body: ByteBuffer) {
        method = head.method
        headers = head.headers
        self.body = body
        if let mark = head.uri.firstIndex(of: "?") {
            path = String(head.uri[..<mark])
            query = String(head.uri[head.uri.index(after: mark)...])
        } else {
            path = head.uri
            query = nil
        }
    }

    /// The first value of a header, by case-insensitive name.
    func header(_ name: String) -> String? { headers.first(name: name) }

    /// The key in `Authorization: Bearer <key>`; `nil` when absent or not a bearer token.
    var bearerToken: String? {
        guard let value = header("authorization")?.trimmingWhitespace(), value.lowercased().hasPrefix("bearer")
        else { return nil }
        return String(value.dropFirst("bearer".count)).trimmingWhitespace()
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
