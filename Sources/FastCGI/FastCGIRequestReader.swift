#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import GatewayHTTP

/// Turns libfcgi's params and stdin into an `HTTPRequest`. Runs on the accept thread.
enum FastCGIRequestReader {
    static func read(_ request: UnsafeMutablePointer<FCGX_Request>, maxBodyBytes: Int) -> HTTPRequest {
        var params: [String: String] = [:]
        params.reserveCapacity(24)
        if var cursor = request.pointee.envp {
            while let entry = cursor.pointee {
                if let (name, value) = usedParam(entry) { params[name] = value }
                cursor += 1
            }
        }
        return makeRequest(params: params, maxBodyBytes: maxBodyBytes) { limit in readStdin(request.pointee.in, upTo: limit) }
    }

    /// The params `makeRequest` reads besides the `HTTP_*` headers; nginx sends a dozen more
    /// (SCRIPT_FILENAME, DOCUMENT_ROOT, SERVER_SOFTWARE …), which are not made into strings.
    private static let usedParamNames: [[UInt8]] = [
        "REQUEST_METHOD", "REQUEST_URI", "CONTENT_TYPE", "CONTENT_LENGTH", "QUERY_STRING", "SCRIPT_NAME", "PATH_INFO",
        "REMOTE_ADDR", "HTTPS", "SERVER_PORT",
    ].map { Array($0.utf8) }

    /// One `NAME=value` entry of libfcgi's environment, when `makeRequest` uses it.
    static func usedParam(_ entry: UnsafePointer<CChar>) -> (String, String)? {
        let length = strlen(entry)
        return entry.withMemoryRebound(to: UInt8.self, capacity: length) { start in
            let bytes = UnsafeBufferPointer(start: start, count: length)
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { return nil }
            let name = UnsafeBufferPointer(rebasing: bytes[..<equals])
            let isHeader = name.count > 5 && name.starts(with: "HTTP_".utf8)
            guard isHeader || usedParamNames.contains(where: { $0.elementsEqual(name) }) else { return nil }
            return (String(decoding: name, as: UTF8.self), String(decoding: bytes[(equals + 1)...], as: UTF8.self))
        }
    }

    /// CGI/FastCGI params (REQUEST_METHOD, REQUEST_URI, HTTP_*) to a request; `readBody` reads at most n bytes.
    static func makeRequest(params: [String: String], maxBodyBytes: Int, readBody: (Int) -> [UInt8]) -> HTTPRequest {
        var headers = HTTPHeaders()
        for (name, value) in params where name.hasPrefix("HTTP_") {
            headers.add(name: headerName(fromParam: name.dropFirst(5)), value: value)
        }
        if let type = params["CONTENT_TYPE"], !type.isEmpty { headers.add(name: "content-type", value: type) }
        if let length = params["CONTENT_LENGTH"], !length.isEmpty { headers.add(name: "content-length", value: length) }

        let uri = params["REQUEST_URI"]
            ?? ((params["SCRIPT_NAME"] ?? "") + (params["PATH_INFO"] ?? "")
                + ((params["QUERY_STRING"] ?? "").isEmpty ? "" : "?" + params["QUERY_STRING"]!))
        let (path, query) = HTTPRequest.splitURI(uri.isEmpty ? "/" : uri)

        var body: [UInt8] = []
        var tooLarge = false
        let declared = Int(params["CONTENT_LENGTH"] ?? "") ?? -1
        if declared > maxBodyBytes {
            tooLarge = true
        } else if declared != 0 {
            let wanted = declared > 0 ? declared : maxBodyBytes + 1
            body = readBody(wanted)
            if body.count > maxBodyBytes {
                tooLarge = true
                body = []
            }
        }
        return HTTPRequest(method: params["REQUEST_METHOD"] ?? "GET", path: path, query: query, headers: headers,
                           body: body, bodyTooLarge: tooLarge, remoteAddress: params["REMOTE_ADDR"],
                           isSecure: (params["HTTPS"].map { !$0.isEmpty && $0.lowercased() != "off" } ?? false),
                           serverPort: params["SERVER_PORT"].flatMap { Int($0) })
    }

    private static func readStdin(_ stream: UnsafeMutablePointer<FCGX_Stream>?, upTo limit: Int) -> [UInt8] {
        guard let stream else { return [] }
        var body = [UInt8](repeating: 0, count: limit)
        var filled = 0
        while filled < limit {
            let count = body.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress!.advanced(by: filled).withMemoryRebound(to: CChar.self, capacity: limit - filled) {
                    FCGX_GetStr($0, Int32(min(limit - filled, 1 << 20)), stream)
                }
            }
            if count <= 0 { break }
            filled += Int(count)
        }
        body.removeSubrange(filled...)
        return body
    }

    /// HTTP_X_AI_PROVIDER → x-ai-provider.
    static func headerName(fromParam name: Substring) -> String {
        // Byte by byte: params are ASCII, and this runs for every header of every request.
        String(decoding: name.utf8.map { byte in
            byte == UInt8(ascii: "_") ? UInt8(ascii: "-") : (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
        }, as: UTF8.self)
    }
}
