#if canImport(Glibc)
import Glibc
#endif
import CPoolSupport

/// A worker's signals. They are never delivered to a handler: the master starts each worker with
/// them blocked, every thread inherits that mask, and the main thread takes them one at a time
/// with `sigtimedwait`. So no signal ever interrupts a system call on another thread — in
/// particular not the accept thread's reads of a request's params and body, which libfcgi does
/// not retry on EINTR (a reload used to lose request bodies that way; docs/design-notes.md,
/// trap 3). A stop is passed to the accept threads through a pipe they watch beside the socket.
enum WorkerSignals {
    enum Event: Equatable {
        case stop
        case reopenLogs
        case tick
    }

    static let handled: [Int32] = [SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1, SIGUSR2]

    static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signalNumber in handled { sigaddset(&set, signalNumber) }
        return set
    }

    /// Call first thing in a worker (before any thread starts); the master already starts workers
    /// this way, this covers a worker started by hand.
    static func block() {
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
    }

    /// The next signal, or `.tick` after `timeout` seconds.
    static func wait(timeout seconds: Int) -> Event {
        var set = signalSet()
        var info = siginfo_t()
        var timeout = timespec(tv_sec: seconds, tv_nsec: 0)
        switch sigtimedwait(&set, &info, &timeout) {
        case SIGUSR1: return .reopenLogs
        case SIGTERM, SIGQUIT, SIGINT, SIGHUP: return .stop
        default: return .tick  // timeout, EINTR, SIGUSR2 (meaningless to a worker)
        }
    }
}

/// A pipe that, once written, stays readable: the accept threads watch it beside the listening
/// socket and leave when it fires.
final class StopPipe: @unchecked Sendable {
    let readEnd: Int32
    private let writeEnd: Int32

    init() {
        var fds: [Int32] = [0, 0]
        precondition(pool_pipe_cloexec(&fds) == 0, "pipe2 failed")
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    func fire() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }
}
