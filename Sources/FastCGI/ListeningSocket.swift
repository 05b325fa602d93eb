#if canImport(Glibc)
import Glibc
#endif

/// Where nginx reaches the workers.
public enum ListenAddress: Sendable, Equatable, CustomStringConvertible {
    case unix(path: String, mode: mode_t)
    case tcp(host: String, port: Int)

    public var description: String {
        switch self {
        case .unix(let path, _): return "unix:\(path)"
        case .tcp(let host, let port): return "\(host):\(port)"
        }
    }
}

public struct SocketError: Error, CustomStringConvertible {
    public var description: String
}

/// Opens the listening socket once in the master; every worker inherits it as fd 0.
enum ListeningSocket {
    static func open(_ address: ListenAddress, backlog: Int32 = 1024) throws -> Int32 {
        switch address {
        case .unix(let path, let mode):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw SocketError(description: "socket(): \(String(cString: strerror(errno)))") }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                close(fd)
                throw SocketError(description: "socket path too long: \(path)")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                raw.copyBytes(from: bytes)
                raw[bytes.count] = 0
            }
            // A stale socket file from a previous run would make bind fail.
            var info = stat()
            if lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            try bindAndListen(fd, address: &addr, backlog: backlog, name: path)
            chmod(path, mode)
            return fd
        case .tcp(let host, let port):
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw SocketError(description: "socket(): \(String(cString: strerror(errno)))") }
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else {
                close(fd)
                throw SocketError(description: "not an IPv4 address: \(host)")
            }
            try bindAndListen(fd, address: &addr, backlog: backlog, name: "\(host):\(port)")
            return fd
        }
    }

    private static func bindAndListen<Address>(_ fd: Int32, address: inout Address, backlog: Int32, name: String) throws {
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<Address>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SocketError(description: "cannot listen on \(name): \(message)")
        }
    }
}
