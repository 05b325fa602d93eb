#if canImport(Glibc)
import Glibc
#endif
import CFastCGI
import CPoolSupport
import Dispatch
import GatewayHTTP
import Logging
import PoolScoreboard
import Synchronization

/// How one worker process serves FastCGI requests.
public struct FastCGIWorkerConfiguration: Sendable {
    /// Request threads (`RequestThread`): each accepts connections and runs its requests' tasks.
    /// A slow upstream never holds one (requests interleave at every `await`). One is the default:
    /// a second one costs wake-ups for nothing on a worker per core (BENCHMARKS.md, part h).
    public var acceptThreads: Int = 1
    /// Recycle the process after this many requests (0: never), like php-fpm's `pm.max_requests`.
    public var maxRequests: Int = 0
    /// Bodies over this size are not read; the responder answers 413.
    public var maxBodyBytes: Int = 10 * 1024 * 1024
    /// On stop, how long in-flight requests may take to finish.
    public var gracefulTimeoutSeconds: Double = 30
    /// Requests slower than this are logged with where their time went (nil: no slow log).
    public var slowlogThresholdSeconds: Double?
    /// This worker's place on the pool's scoreboard (nil: a worker started without a master).
    public var slot: WorkerSlot?
    /// Run on SIGUSR1 (reopen log files, php-fpm's convention for logrotate).
    public var reopenLogs: (@Sendable () -> Void)?
    /// Run about once a second on the main thread (publishing gauges such as the audit queue).
    public var everySecond: (@Sendable () -> Void)?
    /// The master that started this worker: the worker stops when it dies (nil: not started by one).
    public var masterPid: Int32?
    /// Run once per request after its answer ended (exporting its trace spans).
    public var requestFinished: (@Sendable (RequestTrace) -> Void)?
    /// The CPU the request thread binds itself to (`CPUAffinity`; nil: the kernel places it).
    public var cpu: Int?

    public init(acceptThreads: Int = 1, maxRequests: Int = 0, maxBodyBytes: Int = 10 * 1024 * 1024, gracefulTimeoutSeconds: Double = 30,
                slowlogThresholdSeconds: Double? = nil, slot: WorkerSlot? = nil, reopenLogs: (@Sendable () -> Void)? = nil,
                everySecond: (@Sendable () -> Void)? = nil, requestFinished: (@Sendable (RequestTrace) -> Void)? = nil,
                masterPid: Int32? = nil, cpu: Int? = nil) {
        self.acceptThreads = acceptThreads
        self.maxRequests = maxRequests
        self.maxBodyBytes = maxBodyBytes
        self.gracefulTimeoutSeconds = gracefulTimeoutSeconds
        self.slowlogThresholdSeconds = slowlogThresholdSeconds
        self.slot = slot
        self.reopenLogs = reopenLogs
        self.everySecond = everySecond
        self.requestFinished = requestFinished
        self.masterPid = masterPid
        self.cpu = cpu
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
///
/// The accept threads accept connections themselves (epoll, then a non-blocking accept) and give
/// each connection to libfcgi to read, so that a stop never has to interrupt a thread: they wait on
/// a stop pipe beside the socket. A connection once accepted is always read whole and answered.
public final class FastCGIWorker: @unchecked Sendable {
    private let configuration: FastCGIWorkerConfiguration
    private let responder: any Responder
    private let logger: Logger

    private let stopPipe = StopPipe()
    /// `accepting`: request threads still taking connections (a stopping one first drains the backlog).
    private let counters = Mutex((inFlight: 0, accepted: 0, accepting: 0))
    private let exitReason = Mutex(WorkerExitReason.signalled)
    /// Set once the in-flight requests are done (or the graceful timeout passed): the request threads leave.
    private let exiting = Mutex(false)

    public init(configuration: FastCGIWorkerConfiguration, responder: any Responder, logger: Logger) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
    }

    /// Blocks the signals a worker takes on its main thread. Call first thing in the process,
    /// before any other thread starts (the master already starts workers with them blocked).
    public static func prepareProcess() {
        WorkerSignals.block()
    }

    /// Serves until SIGQUIT, SIGTERM, SIGINT or the request budget, then lets in-flight requests
    /// finish (up to the graceful timeout). Blocks the calling thread. `prepareProcess()` must
    /// have run first (the master also starts workers with these signals blocked).
    public func run() -> WorkerExitReason {
        guard FCGX_Init() == 0 else {
            logger.critical("FCGX_Init failed")
            return .signalled
        }
        if FCGX_IsCGI() != 0 {
            serveOneCGIRequest()
            return .cgiRequestServed
        }
        if let masterPid = configuration.masterPid {
            // A master killed outright (SIGKILL, OOM) must not leave its workers serving without
            // a supervisor: the kernel tells them with the signal of a graceful stop.
            if pool_parent_death_signal(SIGQUIT) != masterPid { kill(getpid(), SIGQUIT) }
        }
        // Each request in flight holds two descriptors (nginx's connection and the provider's):
        // the default soft limit of 1024 would cap a worker near 500 requests.
        raiseOpenFileLimit()
        // Accept never blocks: after epoll says a connection waits, another worker may take it.
        let flags = fcntl(0, F_GETFL)
        if flags >= 0 && flags & O_NONBLOCK == 0 { _ = fcntl(0, F_SETFL, flags | O_NONBLOCK) }

        var threads: [pthread_t] = []
        var requestThreads: [RequestThread] = []
        let threadCount = max(1, configuration.acceptThreads)
        counters.withLock { $0.accepting = threadCount }
        for index in 0..<threadCount {
            let executor = RequestThread()
            requestThreads.append(executor)
            threads.append(startThread(name: "fcgi-requests-\(index)") { [self] in serveRequests(on: executor) })
        }
        configuration.slot?.markServing(pid: getpid())

        waiting: while true {
            switch WorkerSignals.wait(timeout: 1) {
            case .stop: break waiting
            case .reopenLogs: configuration.reopenLogs?()
            case .tick: configuration.everySecond?()
            }
        }
        configuration.slot?.markDraining()
        logger.info("worker stopping: no new requests; waiting for in-flight ones", metadata: ["in_flight": "\(counters.withLock { $0.inFlight })"])
        stopPipe.fire()

        // The request threads stop accepting (after the backlog, when they drain it) and go on
        // running the requests in flight; they leave once both are over.
        let deadline = monotonicSeconds() + configuration.gracefulTimeoutSeconds
        while counters.withLock({ $0.inFlight > 0 || $0.accepting > 0 }) && monotonicSeconds() < deadline {
            usleep(10_000)
        }
        let left = counters.withLock { $0.inFlight }
        if left > 0 {
            logger.warning("graceful timeout reached with requests still in flight", metadata: ["in_flight": "\(left)"])
        }
        exiting.withLock { $0 = true }
        for executor in requestThreads { executor.wake() }
        for thread in threads { pthread_join(thread, nil) }
        configuration.everySecond?()
        return exitReason.withLock { $0 }
    }

    /// A request thread's loop: runs the jobs of its requests' tasks, accepts a connection when
    /// the listening socket has one, and sleeps in `epoll_wait` when there is nothing to do. On
    /// stop it accepts no more (after draining the backlog when the whole pool stops) and keeps
    /// running jobs until the main thread says the in-flight requests are done.
    private func serveRequests(on executor: RequestThread) {
        executor.claimCurrentThread()
        if let cpu = configuration.cpu, !CPUAffinity.bindCurrentThread(to: cpu) {
            logger.warning("could not bind the request thread to its CPU; the kernel places it", metadata: ["cpu": "\(cpu)", "errno": "\(errno)"])
        }
        let watched = ReadinessSet()
        watched.watch(executor.wakeReadEnd)
        watched.watch(stopPipe.readEnd)
        watched.watch(0, exclusive: true)
        var stopping = false
        var backlog: BacklogDrain?
        while true {
            executor.runPending()
            if exiting.withLock({ $0 }) { return }
            if var drain = backlog {
                // One waiting connection at a time, running the jobs of those already taken in between.
                backlog = drain.next { acceptOne(executor) } ? drain : nil
                if backlog != nil { continue }
                counters.withLock { $0.accepting -= 1 }
            }
            var woken = false, stopAsked = false, connectionWaits = false
            let waited = watched.wait { fd in
                switch fd {
                case executor.wakeReadEnd: woken = true
                case stopPipe.readEnd: stopAsked = true
                default: connectionWaits = true
                }
            }
            if !waited {
                if errno != EINTR { logger.error("epoll_wait on the listening socket failed", metadata: ["errno": "\(errno)"]); usleep(10_000) }
                continue
            }
            if woken { executor.clearWake() }
            if stopping { continue }
            if stopAsked {
                stopping = true
                // Once stopping, neither the stop pipe (it stays readable) nor the socket is watched.
                watched.unwatch(stopPipe.readEnd)
                watched.unwatch(0)
                if shouldDrainBacklog {
                    backlog = BacklogDrain(deadline: monotonicSeconds() + configuration.gracefulTimeoutSeconds)
                } else {
                    counters.withLock { $0.accepting -= 1 }
                }
                continue
            }
            if connectionWaits { _ = acceptOne(executor) }
        }
    }

    /// Whether a stopping worker serves what waits in the listen queue: yes when the whole pool
    /// stops (or the master is gone), since no other worker will take it; no on a reload or a
    /// recycling (`--max-requests`), where the other workers take it and this one must not go
    /// over its request budget.
    private var shouldDrainBacklog: Bool {
        if let masterPid = configuration.masterPid, getppid() != masterPid { return true }
        return configuration.slot?.poolStopping ?? true
    }

    /// Accepts one connection if one is waiting and hands it to libfcgi. False when none waited.
    private func acceptOne(_ executor: RequestThread) -> Bool {
        let connection = pool_accept_cloexec(0)
        guard connection >= 0 else {
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                return false
            case EMFILE, ENFILE:
                logger.error("out of file descriptors; not accepting for 10 ms")
                usleep(10_000)
                return false
            default:
                logger.error("accept failed", metadata: ["errno": "\(errno)"])
                usleep(10_000)
                return false
            }
        }
        let trace = RequestTrace()
        let request = UnsafeMutablePointer<FCGX_Request>.allocate(capacity: 1)
        // No listening socket for libfcgi (it never accepts by itself); the connection is given as
        // already open, kept open by FCGX_Accept_r's opening FCGX_Finish_r.
        FCGX_InitRequest(request, -1, 0)
        request.pointee.ipcFd = connection
        request.pointee.keepConnection = 1
        guard FCGX_Accept_r(request) == 0 else {
            // nginx closed the connection before its params arrived; libfcgi closed it.
            FCGX_Free(request, 1)
            request.deallocate()
            return true
        }
        dispatch(request, trace: trace, executor: executor)
        return true
    }

    private func dispatch(_ fcgiRequest: UnsafeMutablePointer<FCGX_Request>, trace: RequestTrace, executor: RequestThread) {
        var httpRequest = FastCGIRequestReader.read(fcgiRequest, maxBodyBytes: configuration.maxBodyBytes)
        httpRequest.trace = trace
        trace.method = httpRequest.method
        trace.path = httpRequest.path
        trace.traceParent = httpRequest.headers["traceparent"]
        let route = PoolRoute.classify(path: httpRequest.path)
        let slot = configuration.slot
        let entry = slot?.beginRequest(route: route) ?? -1
        if let slot, entry >= 0 {
            trace.providerObserver = { name in slot.setProvider(entry: entry, PoolProvider(name: name)) }
        }
        let budgetReached: Bool = counters.withLock { counters in
            counters.inFlight += 1
            counters.accepted += 1
            return configuration.maxRequests > 0 && counters.accepted == configuration.maxRequests
        }
        let method = httpRequest.method
        let writer = FastCGIResponseWriter(request: fcgiRequest, trace: trace) { [self] in
            finished(trace, route: route, entry: entry, method: method)
        }
        let responder = self.responder
        let request = httpRequest
        // Runs on this thread (its first steps right after this accept), not on the cooperative pool.
        Task(executorPreference: executor) {
            trace.mark(.started)
            await RequestExecution.$executor.withValue(executor) {
                await responder.respond(to: request, writer: writer)
            }
            await writer.end()
        }
        if budgetReached {
            exitReason.withLock { $0 = .maxRequestsReached }
            kill(getpid(), SIGQUIT)  // taken by the main thread's sigtimedwait, as the master's would be
        }
    }

    /// The answer has ended: the request is counted on the scoreboard and, if slow, logged.
    private func finished(_ trace: RequestTrace, route: PoolRoute, entry: Int, method: String) {
        counters.withLock { $0.inFlight -= 1 }
        trace.finishedAt = RequestTrace.now()
        let total = trace.finishedAt &- trace.acceptedAt
        configuration.requestFinished?(trace)
        let seconds = Double(total) / 1e9
        configuration.slot?.endRequest(entry: entry, route: route, status: trace.status, provider: PoolProvider(name: trace.provider),
                                       cache: CacheResult(header: trace.cacheResult), durationSeconds: seconds)
        guard let threshold = configuration.slowlogThresholdSeconds, seconds >= threshold else { return }
        configuration.slot?.recordSlowRequest()
        var metadata: Logger.Metadata = [
            "request_id": "\(trace.requestID ?? "-")", "route": "\(route.label)", "method": "\(method)",
            "status": "\(trace.status)", "provider": "\(trace.provider ?? "-")", "attempts": "\(trace.attempts)",
            "duration_ms": "\(Self.milliseconds(seconds * 1000))",
        ]
        for (step, milliseconds) in trace.breakdown(totalNanoseconds: total) {
            metadata["\(step)_ms"] = "\(Self.milliseconds(milliseconds))"
        }
        logger.warning("slow request", metadata: metadata)
    }

    static func milliseconds(_ value: Double) -> String {
        String(Double(Int(value * 10)) / 10)
    }

    /// Started by a web server as a plain CGI program: the request is in the environment and on
    /// standard input, the answer goes to standard output.
    private func serveOneCGIRequest() {
        let request = CGIResponseWriter.readRequest(maxBodyBytes: configuration.maxBodyBytes)
        let writer = CGIResponseWriter()
        let done = DispatchSemaphore(value: 0)
        let responder = self.responder
        Task {
            await responder.respond(to: request, writer: writer)
            await writer.end()
            done.signal()
        }
        done.wait()
    }
}

/// A stopping pool's workers serve what already waits in the listen queue: after the master
/// removed the socket's path nothing new can arrive, so the queue only empties. Done when it has
/// stayed empty for 20 ms (a connect nginx started just before may still land) or at the deadline.
struct BacklogDrain {
    let deadline: Double
    private var emptySince: Double?

    init(deadline: Double) { self.deadline = deadline }

    /// Tries `accept`; false once the drain is over.
    mutating func next(_ accept: () -> Bool) -> Bool {
        let now = monotonicSeconds()
        guard now < deadline else { return false }
        if accept() {
            emptySince = nil
            return true
        }
        if let emptySince, now - emptySince >= 0.02 { return false }
        if emptySince == nil { emptySince = now }
        var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, 5)
        return true
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
