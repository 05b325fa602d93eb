#if canImport(Glibc)
import Glibc
#endif
import Logging
import PoolScoreboard

/// How the master runs its workers (php-fpm's static process manager).
public struct SupervisorConfiguration: Sendable {
    public var address: ListenAddress
    public var workers: Int
    /// Arguments for a worker: the same binary is re-executed with these (never a bare fork()
    /// of a process that already runs threads).
    public var workerArguments: [String]
    /// On stop, how long workers get to finish in-flight requests before SIGKILL.
    public var gracefulTimeoutSeconds: Double
    public var pidFile: String?
    /// Run on SIGUSR1 before it is passed on to every worker (reopen log files after logrotate).
    public var reopenLogs: (@Sendable () -> Void)?
    /// How long a reload waits for the new workers to accept before it gives up and keeps the
    /// old ones (a new binary that cannot start must not take the pool down).
    public var reloadTimeoutSeconds: Double = 15

    public init(address: ListenAddress, workers: Int, workerArguments: [String], gracefulTimeoutSeconds: Double = 30, pidFile: String? = nil,
                reopenLogs: (@Sendable () -> Void)? = nil) {
        self.address = address
        self.workers = workers
        self.workerArguments = workerArguments
        self.gracefulTimeoutSeconds = gracefulTimeoutSeconds
        self.pidFile = pidFile
        self.reopenLogs = reopenLogs
    }
}

/// The master process: owns the listening socket and the pool's scoreboard, starts N workers,
/// restarts any that exits unasked, reloads on SIGUSR2/SIGHUP (new workers first; the old ones
/// are told to finish only once every new one accepts), stops gracefully on SIGQUIT/SIGTERM/SIGINT
/// (the socket's path is removed first, so nginx sees a clean "no such file" for new connections
/// while everything already queued is served), passes SIGUSR1 on. Single-threaded: signals are
/// taken with sigtimedwait.
public final class Supervisor {
    private struct Worker {
        var pid: pid_t
        var generation: Int
        var startedAt: Double
        var retiring: Bool
        var slot: Int
    }

    private struct PendingReload {
        var generation: Int
        var previous: [pid_t]
        var deadline: Double
    }

    private let configuration: SupervisorConfiguration
    private let logger: Logger
    private var workers: [pid_t: Worker] = [:]
    private var generation = 0
    private var listenFD: Int32 = -1
    private var quickDeaths = 0
    private var nextSpawnAllowedAt = 0.0
    private var scoreboard: Scoreboard?
    private var pendingReload: PendingReload?
    /// Resolved once: after an upgrade replaced the file, a reload starts the new binary.
    private let executable = Supervisor.executablePath()

    public init(configuration: SupervisorConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Call first thing in `main`, before any thread exists, so that every thread inherits the
    /// mask and signals reach only `sigtimedwait`.
    public static func blockSupervisorSignals() {
        var set = supervisorSignalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    private static func supervisorSignalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signalNumber in [SIGCHLD, SIGTERM, SIGQUIT, SIGINT, SIGUSR1, SIGUSR2, SIGHUP] { sigaddset(&set, signalNumber) }
        return set
    }

    /// Workers start with their own signals blocked: they take them with sigtimedwait (see
    /// WorkerSignals), and a signal arriving before that is set up simply waits.
    private static func workerStartMask() -> sigset_t {
        var set = WorkerSignals.signalSet()
        sigaddset(&set, SIGCHLD)
        return set
    }

    /// Runs until stopped. Returns the process exit code.
    public func run() throws -> Int32 {
        Supervisor.blockSupervisorSignals()
        let backlog: Int32 = 1024
        listenFD = try ListeningSocket.open(configuration.address, backlog: backlog)
        // Room for the live workers and those still finishing after a reload or two.
        scoreboard = try Scoreboard.create(slots: configuration.workers * 4 + 2, workersConfigured: configuration.workers,
                                           listenQueueCapacity: Int(backlog))
        if let pidFile = configuration.pidFile {
            // Written beside and renamed into place: whoever reads the pid file (systemd, a
            // logrotate script, `kill $(cat …)`) never sees it created but still empty.
            let text = "\(getpid())\n"
            let partial = pidFile + ".partial"
            let fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 {
                _ = text.withCString { write(fd, $0, strlen($0)) }
                close(fd)
                if rename(partial, pidFile) != 0 { unlink(partial) }
            }
        }
        logger.info("master started", metadata: ["listen": "\(configuration.address)", "workers": "\(configuration.workers)", "pid": "\(getpid())"])
        refill()

        var set = Supervisor.supervisorSignalSet()
        while true {
            var info = siginfo_t()
            // While a reload waits for its new workers, look every 20 ms.
            var timeout = pendingReload == nil ? timespec(tv_sec: 1, tv_nsec: 0) : timespec(tv_sec: 0, tv_nsec: 20_000_000)
            let signalNumber = sigtimedwait(&set, &info, &timeout)
            switch signalNumber {
            case SIGCHLD, -1:
                reap()
                refill()
                finishReloadIfReady()
                if let queue = ListenQueue.sample(fileDescriptor: listenFD) { scoreboard?.noteListenQueue(queue.queued) }
            case SIGUSR1:
                configuration.reopenLogs?()
                logger.info("log files reopened")
                for pid in workers.keys { kill(pid, SIGUSR1) }
            case SIGUSR2, SIGHUP:
                reload()
            case SIGTERM, SIGQUIT, SIGINT:
                logger.info("master stopping gracefully", metadata: ["signal": "\(signalNumber)"])
                return stop()
            default:
                break
            }
        }
    }

    /// Keeps `workers` live workers of the current generation; a failed start is retried on the
    /// next tick (at most a second later).
    private func refill() {
        guard monotonicSeconds() >= nextSpawnAllowedAt else { return }
        while workers.values.filter({ !$0.retiring && $0.generation == generation }).count < configuration.workers {
            if !spawnWorker() {
                nextSpawnAllowedAt = monotonicSeconds() + 1
                return
            }
        }
    }

    @discardableResult
    private func spawnWorker() -> Bool {
        guard let scoreboard, let slot = scoreboard.freeSlot() else {
            logger.error("no free scoreboard slot for a worker (too many still finishing); trying again in a second")
            return false
        }
        let arguments = [executable] + configuration.workerArguments + ["--scoreboard-fd", "3", "--scoreboard-slot", "\(slot)"]
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        posix_spawn_file_actions_adddup2(&fileActions, listenFD, 0)
        posix_spawn_file_actions_adddup2(&fileActions, scoreboard.fileDescriptor, 3)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var workerMask = Supervisor.workerStartMask()
        posix_spawnattr_setsigmask(&attributes, &workerMask)
        var defaults = Supervisor.supervisorSignalSet()
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        scoreboard.prepare(slot: slot, generation: generation)
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &fileActions, &attributes, &cArguments, environ)
        for pointer in cArguments { free(pointer) }
        posix_spawn_file_actions_destroy(&fileActions)
        posix_spawnattr_destroy(&attributes)
        if result != 0 {
            scoreboard.release(slot: slot)
            logger.error("could not start a worker", metadata: ["error": "\(String(cString: strerror(result)))", "executable": "\(executable)"])
            return false
        }
        scoreboard.started(slot: slot, pid: pid)
        workers[pid] = Worker(pid: pid, generation: generation, startedAt: monotonicSeconds(), retiring: false, slot: slot)
        logger.info("worker started", metadata: ["pid": "\(pid)", "generation": "\(generation)"])
        return true
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
            scoreboard?.release(slot: worker.slot)
            let exitCode = (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
            let signalNumber = status & 0x7f
            if worker.retiring { 
                logger.info("old worker exited", metadata: ["pid": "\(pid)"])
                continue
            }
            let lived = monotonicSeconds() - worker.startedAt
            if exitCode == 0 {
                logger.info("worker recycled", metadata: ["pid": "\(pid)", "lived_s": "\(Int(lived))"])
                quickDeaths = 0
            } else {
                logger.error("worker died; starting another", metadata: ["pid": "\(pid)", "exit_code": "\(exitCode)", "signal": "\(signalNumber)"])
                // A worker that dies at once again and again (bad database path, say) must not
                // become a fork loop: back off up to 5 s.
                if lived < 1 {
                    quickDeaths += 1
                    nextSpawnAllowedAt = monotonicSeconds() + min(5, 0.1 * Double(1 << min(quickDeaths, 6)))
                } else {
                    quickDeaths = 0
                }
            }
        }
    }

    /// Starts a new generation of workers; the previous ones keep accepting until every new one
    /// does (`finishReloadIfReady`), so no moment passes with nobody accepting.
    private func reload() {
        logger.info("master reloading: starting new workers; the old ones finish their requests once the new ones accept")
        scoreboard?.noteReload()
        generation += 1
        let previous = workers.values.filter { !$0.retiring }.map(\.pid)
        pendingReload = PendingReload(generation: generation, previous: previous,
                                      deadline: monotonicSeconds() + configuration.reloadTimeoutSeconds)
        nextSpawnAllowedAt = 0
        quickDeaths = 0
        refill()
        finishReloadIfReady()
    }

    private func finishReloadIfReady() {
        guard let pending = pendingReload, let scoreboard else { return }
        let fresh = workers.values.filter { $0.generation == pending.generation && !$0.retiring }
        if fresh.count >= configuration.workers && fresh.allSatisfy({ scoreboard.state(slot: $0.slot) == .serving }) {
            for pid in pending.previous where workers[pid] != nil {
                workers[pid]?.retiring = true
                kill(pid, SIGQUIT)
            }
            pendingReload = nil
            logger.info("reload complete: new workers accept; old ones finish their requests", metadata: ["generation": "\(generation)"])
        } else if monotonicSeconds() > pending.deadline {
            // The new generation cannot start (a broken binary, say): keep serving with the old one.
            logger.error("reload failed: new workers did not start accepting in time; keeping the old ones",
                         metadata: ["timeout_s": "\(configuration.reloadTimeoutSeconds)"])
            for worker in fresh {
                workers[worker.pid]?.retiring = true
                kill(worker.pid, SIGKILL)
            }
            for pid in pending.previous { workers[pid]?.generation = generation }
            pendingReload = nil
        }
    }

    private func stop() -> Int32 {
        // First make the socket unreachable: nginx then fails to connect at once ("no such file",
        // which it may retry on another server), instead of queueing on a socket nobody will read.
        if case .unix(let path, _) = configuration.address { unlink(path) }
        scoreboard?.notePoolStopping()
        for pid in workers.keys { kill(pid, SIGQUIT) }
        let deadline = monotonicSeconds() + configuration.gracefulTimeoutSeconds + 1
        while !workers.isEmpty && monotonicSeconds() < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 {
                if let worker = workers.removeValue(forKey: pid) { scoreboard?.release(slot: worker.slot) }
                continue
            }
            usleep(20_000)
        }
        for pid in workers.keys {
            logger.warning("worker did not stop in time; killing it", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(listenFD)  // (its path was removed first thing: by now it may be a new master's)
        if let pidFile = configuration.pidFile { unlink(pidFile) }
        logger.info("master stopped")
        return 0
    }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        if count > 0 {
            var path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            // The file was replaced (an upgrade): start the new one at the same path.
            if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
            return path
        }
        return CommandLine.arguments[0]
    }
}
