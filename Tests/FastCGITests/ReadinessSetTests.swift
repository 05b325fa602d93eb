#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import Testing
@testable import FastCGI

/// Two workers' request threads wait on one listening socket: a connection must wake one of them,
/// not both (the one that loses would find the accept queue empty).
@Suite("ReadinessSet")
struct ReadinessSetTests {
    @Test func aConnectionWakesOneOfTwoWaitingWorkers() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("readiness-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("listen.sock").path
        let listener = try ListeningSocket.open(.unix(path: path, mode: 0o600))
        defer { close(listener) }

        let woken = Atomic<Int>(0)
        var threads: [pthread_t] = []
        for index in 0..<2 {
            threads.append(startThread(name: "waiter-\(index)") {
                let watched = ReadinessSet()
                watched.watch(listener, exclusive: true)
                while !watched.wait({ _ in }) {}  // retried on EINTR
                woken.add(1, ordering: .relaxed)
            })
        }
        usleep(200_000)  // both are in epoll_wait
        let first = try connectTo(path)
        usleep(200_000)
        #expect(woken.load(ordering: .relaxed) == 1)
        // The socket stays readable (nobody accepted): the next connection wakes the other one.
        let second = try connectTo(path)
        for thread in threads { pthread_join(thread, nil) }
        #expect(woken.load(ordering: .relaxed) == 2)
        close(first)
        close(second)
    }

    private func connectTo(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            path.utf8CString.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw SocketError(description: "connect: \(errno)") }
        return fd
    }
}

/// A connection whose input was read to the end is closed at once; one with input left unread
/// keeps libfcgi's wait for nginx to close first.
@Suite("FastCGIResponseWriter")
struct FastCGIResponseWriterTests {
    @Test func onlyAConnectionWithNothingUnreadIsClosedAtOnce() {
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        let (ours, nginx) = (pair[0], pair[1])
        defer { close(ours) }
        #expect(FastCGIResponseWriter.nothingUnread(on: ours))
        var byte: UInt8 = 7
        #expect(write(nginx, &byte, 1) == 1)
        #expect(!FastCGIResponseWriter.nothingUnread(on: ours))
        #expect(FastCGIResponseWriter.nothingUnread(on: ours) == false)  // peeking took nothing
        #expect(read(ours, &byte, 1) == 1)
        #expect(FastCGIResponseWriter.nothingUnread(on: ours))
        close(nginx)
        #expect(FastCGIResponseWriter.nothingUnread(on: ours))  // nginx closed: the end was read
        #expect(!FastCGIResponseWriter.nothingUnread(on: -1))
    }
}
