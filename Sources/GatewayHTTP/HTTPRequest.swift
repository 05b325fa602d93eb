/// A request as the gateway sees it, whatever carried it (FastCGI, CGI, a test).
///
/// The transport fills it in; responders never know whether they are behind FastCGI, as in Go's
/// `net/http/fcgi`: params become an ordinary request handed to an ordinary handler.
public struct HTTPRequest: Sendable {
    public var method: String
    /// Path without the query string, as the client sent it (percent-encoding kept).
    public var path: String
    /// The raw query string without "?", empty when absent.
    public var query: String
    /// Header names lowercased.
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Set by the transport when the body was over its limit and was not read.
    public var bodyTooLarge: Bool
    public var remoteAddress: String?
    /// The client reached nginx over HTTPS (FastCGI's `HTTPS` param): cookies get `Secure`.
    public var isSecure: Bool
    /// The port the client connected to (FastCGI's `SERVER_PORT`): Debian's `fastcgi_params`
    /// passes `Host` without it, so absolute URLs shown to users add it back.
    public var serverPort: Int?
    /// The transport's record of this request's stages, provider and cache result (nil when the
    /// transport keeps none, as in unit tests and CGI).
    public var trace: RequestTrace?

    public init(method: String, path: String, query: String = "", headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], bodyTooLarge: Bool = false, remoteAddress: String? = nil, isSecure: Bool = false,
                serverPort: Int? = nil) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.remoteAddress = remoteAddress
        self.isSecure = isSecure
        self.serverPort = serverPort
    }

    /// "https://host[:port]" as the client reached it (the port only when not the scheme's default).
    public var publicBaseURL: String {
        let host = headers["host"] ?? "localhost"
        let scheme = isSecure ? "https" : "http"
        let hasPort = host.hasPrefix("[") ? host.contains("]:") : host.contains(":")
        guard !hasPort, let port = serverPort, port != (isSecure ? 443 : 80) else { return "\(scheme)://\(host)" }
        return "\(scheme)://\(host):\(port)"
    }

    /// Splits a request URI ("/v1/models?x=1") into path and query.
    public static func splitURI(_ uri: String) -> (path: String, query: String) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, "") }
        return (String(uri[..<mark]), String(uri[uri.index(after: mark)...]))
    }

    /// Decoded query parameters (`a=1&b=x%20y`); the last value wins.
    public var queryParameters: [String: String] { Self.formFields(query) }

    /// Decoded `application/x-www-form-urlencoded` fields (a query string or a form body); the last value wins.
    public static func formFields(_ query: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") where !pair.isEmpty {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = HTTPRequest.percentDecode(String(parts[0]))
            let value = parts.count > 1 ? HTTPRequest.percentDecode(String(parts[1])) : ""
            result[name] = value
        }
        return result
    }

    /// `%XX` decoding; `+` is a space in queries and form bodies, itself in a path segment.
    public static func percentDecode(_ text: String, plusAsSpace: Bool = true) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if plusAsSpace && byte == UInt8(ascii: "+") { bytes.append(0x20); continue }
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
               let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
                continue
            }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// An ordered list of header fields with case-insensitive lookup.
public struct HTTPHeaders: Sendable, Sequence, ExpressibleByDictionaryLiteral {
    public private(set) var fields: [(name: String, value: String)] = []

    public init() {}
    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { add(name: name, value: value) }
    }
    public init(_ pairs: [(String, String)]) {
        for (name, value) in pairs { add(name: name, value: value) }
    }

    public mutating func add(name: String, value: String) {
        fields.append((name: name, value: value))
    }

    /// Replaces every field of that name.
    public mutating func replaceOrAdd(name: String, value: String) {
        fields.removeAll { $0.name.caseInsensitiveEquals(name) }
        fields.append((name: name, value: value))
    }

    public subscript(name: String) -> String? {
        fields.first(where: { $0.name.caseInsensitiveEquals(name) })?.value
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        let lhs = self.utf8, rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (a, b) in zip(lhs, rhs) where a != b {
            let lowerA = (a >= 65 && a <= 90) ? a + 32 : a
            let lowerB = (b >= 65 && b <= 90) ? b + 32 : b
            if lowerA != lowerB { return false }
        }
        return true
    }
}
