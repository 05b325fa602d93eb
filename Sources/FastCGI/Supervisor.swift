#if canImport(Glibc)
import Glibc
#endif
import Logging

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

    public init(address: ListenAddress, workers: Int, workerArguments: [String], gracefulTimeoutSeconds: Double = 30, pidFile: String? = nil) {
        self.address = address
        self.workers = workers
        self.workerArguments = workerArguments
        self.gracefulTimeoutSeconds = gracefulTimeoutSeconds
        self.pidFile = pidFile
    }
}

/// The master process: owns the listening socket, starts N workers, restarts any that exits
/// unasked, reloads on SIGUSR2/SIGHUP (new workers first, then the old ones drain), stops
/// gracefully on SIGQUIT/SIGTERM/SIGINT. Single-threaded: signals are taken with sigtimedwait.
public final class Supervisor {
    private struct Worker {
        var pid: pid_t
        var generation: Int
        var startedAt: Double
        var retiring: Bool
    }

    private let configuration: SupervisorConfiguration
    private let logger: Logger
    private var workers: [pid_t: Worker] = [:]
    private var generation = 0
    private var listenFD: Int32 = -1
    private var quickDeaths = 0
    private var nextSpawnAllowedAt = 0.0
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
        for signalNumber in [SIGCHLD, SIGTERM, SIGQUIT, SIGINT, SIGUSR2, SIGHUP] { sigaddset(&set, signalNumber) }
        return set
    }

    /// Runs until stopped. Returns the process exit code.
    public func run() throws -> Int32 {
        Supervisor.blockSupervisorSignals()
        listenFD = try ListeningSocket.open(configuration.address)
        if let pidFile = configuration.pidFile {
            let text = "\(getpid())\n"
            let fd = open(pidFile, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            if fd >= 0 { _ = text.withCString { write(fd, $0, strlen($0)) }; close(fd) }
        }
        logger.info("master started", metadata: ["listen": "\(configuration.address)", "workers": "\(configuration.workers)", "pid": "\(getpid())"])
        refill()

        var set = Supervisor.supervisorSignalSet()
        var timeout = timespec(tv_sec: 1, tv_nsec: 0)
        while true {
            var info = siginfo_t()
            let signalNumber = sigtimedwait(&set, &info, &timeout)
            switch signalNumber {
            case SIGCHLD, -1:
                reap()
                refill()
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
        while workers.values.filter({ !$0.retiring }).count < configuration.workers {
            if !spawnWorker() {
                nextSpawnAllowedAt = monotonicSeconds() + 1
                return
            }
        }
    }

    @discardableResult
    private func spawnWorker() -> Bool {
        let arguments = [executable] + configuration.workerArguments
        var fileActions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fileActions)
        posix_spawn_file_actions_adddup2(&fileActions, listenFD, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        var defaults = Supervisor.supervisorSignalSet()
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &fileActions, &attributes, &cArguments, environ)
        for pointer in cArguments { free(pointer) }
        posix_spawn_file_actions_destroy(&fileActions)
        posix_spawnattr_destroy(&attributes)
        if result != 0 {
            logger.error("could not start a worker", metadata: ["error": "\(String(cString: strerror(result)))", "executable": "\(executable)"])
            return false
        }
        workers[pid] = Worker(pid: pid, generation: generation, startedAt: monotonicSeconds(), retiring: false)
        logger.info("worker started", metadata: ["pid": "\(pid)", "generation": "\(generation)"])
        return true
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { break }
            guard let worker = workers.removeValue(forKey: pid) else { continue }
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

    private func reload() {
        logger.info("master reloading: starting new workers, old ones finish their requests")
        generation += 1
        let old = workers.values.filter { !$0.retiring }
        for worker in old { workers[worker.pid]?.retiring = true }
        nextSpawnAllowedAt = 0
        refill()
        for worker in old {
            workers[worker.pid]?.retiring = true
            kill(worker.pid, SIGQUIT)
        }
    }

    private func stop() -> Int32 {
        for pid in workers.keys { kill(pid, SIGQUIT) }
        let deadline = monotonicSeconds() + configuration.gracefulTimeoutSeconds + 1
        while !workers.isEmpty && monotonicSeconds() < deadline {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid > 0 { workers.removeValue(forKey: pid); continue }
            usleep(20_000)
        }
        for pid in workers.keys {
            logger.warning("worker did not stop in time; killing it", metadata: ["pid": "\(pid)"])
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        close(listenFD)
        if case .unix(let path, _) = configuration.address { unlink(path) }
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
