/// An HTTP request for a provider, as an adapter builds it: plain values, no I/O. Credentials go
/// in headers only, never in the URL (a URL ends up in logs).
public struct UpstreamRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(method: String = "POST", url: String, headers: [(name: String, value: String)], body: [UInt8]) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// Joins a configured base URL ("http://127.0.0.1:9000/openai/") and an API path ("/v1/...").
    public static func join(base: String, path: String) -> String {
        var base = base
        while base.hasSuffix("/") { base.removeLast() }
        return base + path
    }
}
