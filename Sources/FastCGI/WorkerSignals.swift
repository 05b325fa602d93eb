#if canImport(Glibc)
import Glibc
#endif

/// Signal plumbing for a worker: stop signals write to a self-pipe (the only async-signal-safe
/// way out of a handler); SIGUSR1 does nothing but interrupt accept(2).
enum WorkerSignals {
    nonisolated(unsafe) static var pipeFDs: (read: Int32, write: Int32) = (-1, -1)

    static func install() {
        var fds: [Int32] = [0, 0]
        precondition(pipe(&fds) == 0, "pipe failed")
        pipeFDs = (fds[0], fds[1])
        for signalNumber in [SIGTERM, SIGQUIT, SIGINT, SIGHUP] {
            setHandler(signalNumber, stopHandler)
        }
        setHandler(SIGUSR1, wakeHandler)
        signal(SIGPIPE, SIG_IGN)
        // A worker inherits the master's blocked mask only if posix_spawn was told so; make sure.
        var set = sigset_t()
        sigemptyset(&set)
        for signalNumber in [SIGTERM, SIGQUIT, SIGINT, SIGHUP, SIGUSR1] { sigaddset(&set, signalNumber) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    private static func setHandler(_ signalNumber: Int32, _ handler: @convention(c) (Int32) -> Void) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: accept(2) must return EINTR
        sigaction(signalNumber, &action, nil)
    }

    /// Blocks until a stop signal arrives or `requestStop()` is called.
    static func waitForStopRequest() {
        var byte: UInt8 = 0
        while true {
            let count = read(pipeFDs.read, &byte, 1)
            if count == 1 { return }
            if count < 0 && errno == EINTR { continue }
            return
        }
    }

    static func requestStop() {
        var byte: UInt8 = 1
        _ = write(pipeFDs.write, &byte, 1)
    }
}

private func stopHandler(_ signalNumber: Int32) {
    var byte: UInt8 = 1
    _ = write(WorkerSignals.pipeFDs.write, &byte, 1)
}

private func wakeHandler(_ signalNumber: Int32) {}
