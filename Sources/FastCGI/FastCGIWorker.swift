#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import GatewayHTTP
import Logging

/// How one worker process serves FastCGI requests.
public struct FastCGIWorkerConfiguration: Sendable {
    /// Threads blocked in `FCGX_Accept_r`. Each only accepts and reads the request (nginx has
    /// buffered the body, so that is quick); the work itself runs as a Swift task, so a slow
    /// upstream never holds a thread. One is the default: a second one waits on the accept
    /// mutex and costs a futex hand-off per request (measured: 382 → 301 µs of worker CPU per
    /// cache hit, added p99 1.11 → 0.80 ms at 1,000 req/s; BENCHMARKS.md, part h).
    public var acceptThreads: Int = 1
    /// Recycle the process after this many requests (0: never), like php-fpm's `pm.max_requests`.
    public var maxRequests: Int = 0
    /// Bodies over this size are not read; the responder answers 413.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// On stop, how long in-flight requests may take to finish.
    public var gracefulTimeoutSeconds: Double = 30

    public init(acceptThreads: Int = 1, maxRequests: Int = 0, maxBodyBytes: Int = 10 * 1024 * 1024, gracefulTimeoutSeconds: Double = 30) {
        self.acceptThreads = acceptThreads
        self.maxRequests = maxRequests
        self.maxBodyBytes = maxBodyBytes
        self.gracefulTimeoutSeconds = gracefulTimeoutSeconds
    }
}

/// Why `FastCGIWorker.run()` returned.
public enum WorkerExitReason: Sendable, Equatable {
    case signalled
    case maxRequestsReached
    case cgiRequestServed
}

/// A FastCGI responder process: accept threads on the listening socket inherited as fd 0 (the
/// FastCGI convention php-fpm and spawn-fcgi use), each request handed to a Swift task.
public final class FastCGIWorker: @unchecked Sendable {
    private let configuration: FastCGIWorkerConfiguration
    private let responder: any Responder
    private let logger: Logger

    private let stopping = Locked(false)
    private let counters = Locked((inFlight: 0, accepted: 0))
    private let acceptMutex = Locked(())
    private let exitReason = Locked(WorkerExitReason.signalled)

    public init(configuration: FastCGIWorkerConfiguration, responder: any Responder, logger: Logger) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
    }

    /// Serves until SIGQUIT, SIGTERM, SIGINT or the request budget, then lets in-flight requests
    /// finish (up to the graceful timeout). Blocks the calling thread.
    public func run() -> WorkerExitReason {
        guard FCGX_Init() == 0 else {
            logger.critical("FCGX_Init failed")
            return .signalled
        }
        if FCGX_IsCGI() != 0 {
            serveOneCGIRequest()
            return .cgiRequestServed
        }
        // Each request in flight holds two descriptors (nginx's connection and the provider's):
        // the default soft limit of 1024 would cap a worker near 500 requests.
        raiseOpenFileLimit()
        // libfcgi installs its own SIGTERM/SIGUSR1 handlers in FCGX_Init; ours replace them
        // (docs/design-notes.md, trap 3).
        WorkerSignals.install()

        var threads: [pthread_t] = []
        let exited = Locked(0)
        for index in 0..<max(1, configuration.acceptThreads) {
            threads.append(startThread(name: "fcgi-accept-\(index)") { [self] in
                acceptLoop()
                exited.withLock { $0 += 1 }
            })
        }

        WorkerSignals.waitForStopRequest()
        stopping.withLock { $0 = true }
        logger.info("worker stopping: no new requests; waiting for in-flight ones", metadata: ["in_flight": "\(counters.withLock { $0.inFlight })"])

        // Wake every accept thread out of accept(2): the signal may land while a thread is not
        // inside accept yet, so repeat until all have left.
        while exited.withLock({ $0 }) < threads.count {
            for thread in threads { pthread_kill(thread, SIGUSR1) }
            usleep(20_000)
        }
        for thread in threads { pthread_join(thread, nil) }

        let deadline = monotonicSeconds() + configuration.gracefulTimeoutSeconds
        while counters.withLock({ $0.inFlight }) > 0 && monotonicSeconds() < deadline {
            usleep(10_000)
        }
        let left = counters.withLock { $0.inFlight }
        if left > 0 {
            logger.warning("graceful timeout reached with requests still in flight", metadata: ["in_flight": "\(left)"])
        }
        return exitReason.withLock { $0 }
    }

    private func acceptLoop() {
        while true {
            let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
            FCGX_InitRequest(request, 0, FCGI_FAIL_ACCEPT_ON_INTR)
            let result: Int32 = acceptMutex.withLock { _ in
                if stopping.withLock({ $0 }) { return Int32(-EINTR) }
                return FCGX_Accept_r(request)
            }
            if result < 0 {
                FCGX_Free(request, 1)
                request.deallocate()
                if stopping.withLock({ $0 }) { return }
                if result != -EINTR {
                    logger.error("FCGX_Accept_r failed", metadata: ["errno": "\(-result)"])
                    usleep(10_000)
                }
                continue
            }
            dispatch(request)
        }
    }

    private func dispatch(_ fcgiRequest: UnsafeMutablePointer<FCGX_Request>) {
        let httpRequest = FastCGIRequestReader.read(fcgiRequest, maxBodyBytes: configuration.maxBodyBytes)
        let budgetReached: Bool = counters.withLock { counters in
            counters.inFlight += 1
            counters.accepted += 1
            return configuration.maxRequests > 0 && counters.accepted >= configuration.maxRequests
        }
        let writer = FastCGIResponseWriter(request: fcgiRequest) { [counters] in
            counters.withLock { $0.inFlight -= 1 }
        }
        let responder = self.responder
        Task {
            await responder.respond(to: httpRequest, writer: writer)
            await writer.end()
        }
        if budgetReached {
            exitReason.withLock { $0 = .maxRequestsReached }
            stopping.withLock { $0 = true }
            WorkerSignals.requestStop()
        }
    }

    /// Started by a web server as a plain CGI program: the request is in the environment and on
    /// standard input, the answer goes to standard output.
    private func serveOneCGIRequest() {
        let request = CGIResponseWriter.readRequest(maxBodyBytes: configuration.maxBodyBytes)
        let writer = CGIResponseWriter()
        let done = Locked(false)
        let responder = self.responder
        Task {
            await responder.respond(to: request, writer: writer)
            await writer.end()
            done.withLock { $0 = true }
        }
        while !done.withLock({ $0 }) { usleep(1_000) }
    }
}

func raiseOpenFileLimit() {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
}

func monotonicSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}
