import GatewayHTTP

/// The CGI-style response head (`Status:` line and header fields) that both FastCGI and plain
/// CGI responses start with.
enum CGIResponseHead {
    static func encode(status: Int, headers: HTTPHeaders) -> [UInt8] {
        var head = "Status: \(status) \(HTTPStatus.reasonPhrase(status))\r\n"
        for field in headers {
            // Header injection guard: values never carry line breaks.
            head += "\(field.name): \(field.value.filter { $0 != "\r" && $0 != "\n" })\r\n"
        }
        head += "\r\n"
        return Array(head.utf8)
    }
}
