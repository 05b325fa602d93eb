// The request to send (built once, reused for every request) and the loopback-only check.

import Foundation
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

struct TargetError: Error {
    var message: String
}

struct Target: Sendable {
    var url: String
    var address: SocketAddress
    var head: HTTPRequestHead
    var body: ByteBuffer?

    static func make(
        url: String, method: String?, bodyFile: String?, body: String?, headers: [String]
    ) throws -> Target {
        guard let comps = URLComponents(string: url), let scheme = comps.scheme?.lowercased() else {
            throw TargetError(message: "cannot parse URL '\(url)'")
        }
        guard scheme == "http" else {
            throw TargetError(message: "only http:// URLs are supported (got '\(scheme)')")
        }
        guard var host = comps.host, !host.isEmpty else { throw TargetError(message: "URL '\(url)' has no host") }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard isLoopbackHost(host) else {
            throw TargetError(
                message: "refusing non-loopback target host '\(host)': only 127.x.x.x, localhost and ::1 are allowed")
        }
        let port = comps.port ?? 80
        guard (1...65535).contains(port) else { throw TargetError(message: "bad port \(port)") }

        // "localhost" is pinned to 127.0.0.1 so that /etc/hosts cannot send traffic elsewhere.
        let connectHost = host.lowercased() == "localhost" ? "127.0.0.1" : host
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: connectHost, port: port)
        } catch {
            throw TargetError(message: "cannot make a socket address for '\(connectHost)': \(error)")
        }
        guard let ip = address.ipAddress, isLoopbackHost(ip) else {
            throw TargetError(message: "resolved address \(address) is not loopback")
        }

        var bodyBuffer: ByteBuffer? = nil
        if let bodyFile {
            guard let data = FileManager.default.contents(atPath: bodyFile) else {
                throw TargetError(message: "cannot read --body-file '\(bodyFile)'")
            }
            bodyBuffer = ByteBuffer(bytes: data)
        } else if let body {
            bodyBuffer = ByteBuffer(string: body)
        }

        let methodName = (method ?? (bodyBuffer == nil ? "GET" : "POST")).uppercased()
        var path = comps.percentEncodedPath
        if path.isEmpty { path = "/" }
        if let q = comps.percentEncodedQuery { path += "?" + q }

        var h = HTTPHeaders()
        for line in headers {
            guard let colon = line.firstIndex(of: ":") else {
                throw TargetError(message: "header '\(line)' is not of the form 'Name: value'")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty else { throw TargetError(message: "header '\(line)' has an empty name") }
            h.add(name: name, value: value)
        }
        if !h.contains(name: "Host") {
            let hostField = host.contains(":") ? "[\(host)]" : host
            h.replaceOrAdd(name: "Host", value: port == 80 ? hostField : "\(hostField):\(port)")
        }
        if let bodyBuffer {
            h.replaceOrAdd(name: "Content-Length", value: String(bodyBuffer.readableBytes))
            if !h.contains(name: "Content-Type") { h.add(name: "Content-Type", value: "application/json") }
        } else if ["POST", "PUT", "PATCH"].contains(methodName) {
            h.replaceOrAdd(name: "Content-Length", value: "0")
        }
        if !h.contains(name: "User-Agent") { h.add(name: "User-Agent", value: "deploxa-loadgen") }

        let head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: methodName), uri: path, headers: h)
        return Target(url: url, address: address, head: head, body: bodyBuffer)
    }
}

/// True for localhost, a dotted-quad 127.x.x.x, or ::1 (any spelling inet_pton accepts).
func isLoopbackHost(_ rawHost: String) -> Bool {
    let host = rawHost.lowercased()
    if host == "localhost" { return true }
    var v4 = in_addr()
    if inet_pton(AF_INET, host, &v4) == 1 {
        return (UInt32(bigEndian: v4.s_addr) >> 24) == 127
    }
    var v6 = in6_addr()
    if inet_pton(AF_INET6, host, &v6) == 1 {
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        return bytes == [UInt8](repeating: 0, count: 15) + [1]
    }
    return false
}

/// Monotonic clock in nanoseconds (the same clock NIO schedules on).
@inline(__always)
func nowNanos() -> UInt64 {
    NIODeadline.now().uptimeNanoseconds
}

/// Raises the soft open-files limit to the hard limit (many connections need many descriptors).
func raiseOpenFileLimit() {
    #if os(Linux)
    var rl = rlimit()
    if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0, rl.rlim_cur < rl.rlim_max {
        rl.rlim_cur = rl.rlim_max
        _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl)
    }
    #endif
}

func stderrLine(_ s: String) {
    FileHandle.standardError.write(Data((s + "\n").utf8))
}
