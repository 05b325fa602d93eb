import GatewayHTTP

/// The CGI-style response head (`Status:` line and header fields) that both FastCGI and plain
/// CGI responses start with.
enum CGIResponseHead {
    static func encode(status: Int, headers: HTTPHeaders) -> [UInt8] {
        // Written byte by byte into one buffer: this runs for every answer.
        var head: [UInt8] = []
        head.reserveCapacity(256)
        head.append(contentsOf: "Status: \(status) ".utf8)
        head.append(contentsOf: HTTPStatus.reasonPhrase(status).utf8)
        head.append(contentsOf: [13, 10])
        for field in headers {
            head.append(contentsOf: field.name.utf8)
            head.append(contentsOf: [UInt8(ascii: ":"), UInt8(ascii: " ")])
            // Header injection guard: values never carry line breaks (CR or LF bytes, alone or paired).
            for byte in field.value.utf8 where byte != 13 && byte != 10 { head.append(byte) }
            head.append(contentsOf: [13, 10])
        }
        head.append(contentsOf: [13, 10])
        return head
    }
}
