#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatewayHTTP
import Synchronization

/// The CGI fallback: one request from the environment and stdin, the answer on stdout. (libfcgi's
/// FCGX API has no CGI mode of its own; only its stdio layer does.)
final class CGIResponseWriter: ResponseWriter, @unchecked Sendable {
    /// Whether a write failed (the client left); held while writing, so answers never interleave.
    private let failed = Mutex(false)

    static func readRequest(maxBodyBytes: Int) -> HTTPRequest {
        FastCGIRequestReader.makeRequest(params: cgiParams(ProcessInfo.processInfo.environment), maxBodyBytes: maxBodyBytes) { limit in
            var body: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while body.count < limit {
                let count = read(0, &buffer, min(buffer.count, limit - body.count))
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                body.append(contentsOf: buffer[0..<count])
            }
            return body
        }
    }

    /// A CGI environment as the request reader's params. Two things differ from FastCGI behind nginx
    /// (docs/shared-hosting.md):
    /// - The route is PATH_INFO (+ QUERY_STRING): a web server that runs the binary as a CGI script
    ///   sets REQUEST_URI to the URL the client asked for, script path included
    ///   (`/cgi-bin/gateway/v1/chat/completions`), or to the URL before a rewrite (`/v1/...`); the
    ///   part below the script is PATH_INFO. Only an environment without SCRIPT_NAME (set by hand,
    ///   not by a web server) is routed on REQUEST_URI.
    /// - Apache hides Authorization from CGI programs unless `CGIPassAuth On`; the classic fallback is
    ///   a RewriteRule that copies it into HTTP_AUTHORIZATION, which after a rewrite onto the script
    ///   arrives as REDIRECT_HTTP_AUTHORIZATION (one REDIRECT_ per internal redirect). An empty value
    ///   (the rule ran on a request without the header) is no header.
    static func cgiParams(_ environment: [String: String]) -> [String: String] {
        var params = environment
        if environment["SCRIPT_NAME"] != nil {
            var pathInfo = environment["PATH_INFO"] ?? ""
            if pathInfo.isEmpty || !pathInfo.hasPrefix("/") { pathInfo = "/" + pathInfo }
            let query = environment["QUERY_STRING"] ?? ""
            params["REQUEST_URI"] = query.isEmpty ? pathInfo : pathInfo + "?" + query
        }
        if (params["HTTP_AUTHORIZATION"] ?? "").isEmpty {
            params["HTTP_AUTHORIZATION"] = nil
            var name = "REDIRECT_HTTP_AUTHORIZATION"
            for _ in 0..<10 {
                if let value = environment[name], !value.isEmpty {
                    params["HTTP_AUTHORIZATION"] = value
                    break
                }
                name = "REDIRECT_" + name
            }
        }
        return params
    }

    func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected) {
        try write(CGIResponseHead.encode(status: status, headers: headers))
    }

    func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        try write(bytes)
    }

    private func write(_ bytes: [UInt8]) throws(ClientDisconnected) {
        let ok = failed.withLock { failed -> Bool in
            if failed { return false }
            var offset = 0
            while offset < bytes.count {
                let count = bytes[offset...].withUnsafeBytes { Glibc.write(1, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { failed = true; return false }
                offset += count
            }
            return true
        }
        if !ok { throw ClientDisconnected() }
    }

    func end() async {}
}
