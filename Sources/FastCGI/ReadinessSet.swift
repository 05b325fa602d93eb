#if canImport(Glibc)
import Glibc
#endif
import CPoolSupport

/// The descriptors a request thread sleeps on, watched with epoll rather than `poll` for one
/// reason: the listening socket is shared by every worker, and with `poll` each new connection
/// woke every idle worker's request thread, all but one of which then found the accept queue
/// empty — a wasted wake-up per request on two cores. Watched with `EPOLLEXCLUSIVE`, a connection
/// wakes one worker that is waiting in `epoll_wait`; a worker busy with other requests is passed
/// over, not woken (the woken one accepts the connection; one left in the queue keeps the socket
/// readable, and a waiting worker is woken for the next arrival).
final class ReadinessSet {
    private let epoll: Int32
    private var events = [epoll_event](repeating: epoll_event(), count: 8)

    init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1 failed: \(errno)")
    }

    deinit { close(epoll) }

    /// Starts watching `fd` for input; `exclusive` for a descriptor other processes also wait on.
    func watch(_ fd: Int32, exclusive: Bool = false) {
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | (exclusive ? EPOLLEXCLUSIVE.rawValue : 0)
        event.data.fd = fd
        let result = epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event)
        precondition(result == 0, "epoll_ctl ADD \(fd) failed: \(errno)")
    }

    /// Stops watching `fd` (it stays open).
    func unwatch(_ fd: Int32) {
        var event = epoll_event()
        _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, &event)
    }

    /// Sleeps until a watched descriptor is readable and calls `ready` with each readable one.
    /// Returns false when the wait failed (EINTR included) and nothing was called.
    func wait(_ ready: (Int32) -> Void) -> Bool {
        let count = events.withUnsafeMutableBufferPointer { buffer in
            epoll_wait(epoll, buffer.baseAddress, Int32(buffer.count), -1)
        }
        guard count > 0 else { return false }
        for index in 0..<Int(count) { ready(events[index].data.fd) }
        return true
    }
}
