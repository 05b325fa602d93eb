#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatewayHTTP

/// The CGI fallback: one request from the environment and stdin, the answer on stdout. (libfcgi's
/// FCGX API has no CGI mode of its own; only its stdio layer does.)
final class CGIResponseWriter: ResponseWriter, @unchecked Sendable {
    private let lock = Locked(false)

    static func readRequest(maxBodyBytes: Int) -> HTTPRequest {
        FastCGIRequestReader.makeRequest(params: ProcessInfo.processInfo.environment, maxBodyBytes: maxBodyBytes) { limit in
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

    func writeHead(status: Int, headers: HTTPHeaders) async throws(ClientDisconnected) {
        try write(CGIResponseHead.encode(status: status, headers: headers))
    }

    func writeBody(_ bytes: [UInt8], flush: Bool) async throws(ClientDisconnected) {
        try write(bytes)
    }

    private func write(_ bytes: [UInt8]) throws(ClientDisconnected) {
        let ok = lock.withLock { failed -> Bool in
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
