import ArgumentParser
import FastCGI
import Foundation
import GatewayAdmin
import GatewayAPI
import GatewayHTTP
import GatewayLogging
import GatewayStore
import GatewayUpstream
import Logging
import PoolScoreboard
import GatewayTracing

/// `--cpu-affinity auto|none`: parsed, checked and listed in `--help` by ArgumentParser.
extension CPUAffinity.Policy: ExpressibleByArgument {}

/// Options the master passes on to each worker it starts.
struct WorkerOptions: ParsableArguments {
    @Option(name: .customLong("accept-threads"), help: "Threads per worker that accept connections and read requests (each hands them to Swift tasks).") var acceptThreads = 1
    @Option(name: .customLong("cpu-affinity"), help: "auto: each worker (with one accept thread) binds its request thread and its HTTP client's event loop to one CPU, worker i to the i-th CPU the master may use, so the two wake each other without waking an idle CPU; none: the kernel places every thread.") var cpuAffinity = CPUAffinity.Policy.auto
    @Option(name: .customLong("max-requests"), help: "Recycle a worker after this many requests (0: never).") var maxRequests = 0
    @Option(name: .customLong("max-body-size"), help: "Largest request body in bytes (match nginx's client_max_body_size).") var maxBodySize = 10 * 1024 * 1024
    @Option(name: .customLong("graceful-timeout"), help: "Seconds in-flight requests get to finish on stop or reload.") var gracefulTimeout = 30.0
    @Option(name: .customLong("upstream-connect-timeout"), help: "Seconds to connect to a provider.") var upstreamConnectTimeout = 10.0
    @Option(name: .customLong("upstream-timeout"), help: "Seconds until a provider's response head (504 after that).") var upstreamTimeout = 600.0
    @Option(name: .customLong("upstream-idle-timeout"), help: "Longest silence, in seconds, inside a provider's response body.") var upstreamIdleTimeout = 300.0
    @Option(name: .customLong("upstream-total-timeout"), help: "Seconds one provider attempt may take in all, head and body (then the next fallback target, or 504).") var upstreamTotalTimeout = 900.0
    @Option(name: .customLong("breaker-failures"), help: "Consecutive failures after which a provider is skipped for the cool-down (0: no circuit breaker).") var breakerFailures = 5
    @Option(name: .customLong("breaker-cooldown"), help: "Seconds an open circuit breaker skips a provider before one request probes it.") var breakerCooldown = 30.0
    @Option(name: .customLong("cache-max-mb"), help: "Size bound of the response cache, in MiB (oldest entries evicted above it).") var cacheMaxMB = 256
    @Option(name: .customLong("cache-max-entry-kb"), help: "Largest answer the cache stores, in KiB.") var cacheMaxEntryKB = 4096
    @Option(name: .customLong("cache-max-waiters"), help: "Requests of one gateway key that may wait, per worker, for an identical request's answer (more are sent to the provider themselves).") var cacheMaxWaiters = 64
    @Option(name: .customLong("cache-prune-interval"), help: "Seconds between each worker's pruning of expired and excess cache entries.") var cachePruneInterval = 10.0
    @Option(name: .customLong("db-busy-timeout"), help: "Milliseconds a request waits for the database's write lock before failing closed with 503.") var dbBusyTimeout = 2000
    @Flag(name: .customLong("db-durable-counters"), help: "PostgreSQL only: admissions, settlements, cache entries and breaker changes also wait for the disk when they commit, as audit rows always do (about 1 ms more per request; without it a crash of the database server can forget its last ~0.6 s of them, never an audit row).") var dbDurableCounters = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"
    @Option(name: .customLong("audit-journal"), help: "Folder of the workers' audit journals, which keep the rows of a killed worker for the next one (default: the database path + .audit-journal).") var auditJournal: String?
    @Option(name: .customLong("audit-queue-max"), help: "Audit rows a worker queues before answers wait for the writer (back-pressure).") var auditQueueMax = 10_000
    @Option(name: .customLong("audit-retention-days"), help: "Days raw audit rows are kept (0: forever); older ones are deleted in small batches. Usage summaries are kept.") var auditRetentionDays = 90
    @Option(name: .customLong("audit-retention-interval"), help: "Seconds between the janitor's retention passes (deletes, WAL checkpoint, expired dashboard sessions).") var auditRetentionInterval = 60.0
    @Option(name: .customLong("session-hours"), help: "Hours a dashboard login lasts.") var sessionHours = 12.0
    @Option(name: .customLong("slowlog-threshold"), help: "Log every request slower than this many seconds with where its time went (0: off).") var slowlogThreshold = 0.0
    @Option(name: .customLong("log-format"), help: "text (default) or json (one object per line, for log shippers).") var logFormat = "text"
    @Option(name: .customLong("log-file"), help: "Append logs to this file instead of standard error; SIGUSR1 to the master reopens it (logrotate).") var logFile: String?
    @Flag(name: .customLong("metrics-public"), help: "Serve GET /metrics without an admin token (restrict it in nginx instead).") var metricsPublic = false
    @Option(name: .customLong("otel-endpoint"), help: "Send OpenTelemetry traces (OTLP over HTTP, JSON) to this URL, e.g. http://127.0.0.1:4318/v1/traces (default: off).") var otelEndpoint: String?
    @Option(name: .customLong("otel-service-name"), help: "The service.name of the traces.") var otelServiceName = "deploxa-gateway"

    /// The options as a worker's command line (`logFile` made absolute by the master).
    func arguments(logFile: String?) -> [String] {
        ["--accept-threads", "\(acceptThreads)", "--cpu-affinity", cpuAffinity.rawValue, "--max-requests", "\(maxRequests)", "--max-body-size", "\(maxBodySize)",
         "--graceful-timeout", "\(gracefulTimeout)", "--upstream-connect-timeout", "\(upstreamConnectTimeout)",
         "--upstream-timeout", "\(upstreamTimeout)", "--upstream-idle-timeout", "\(upstreamIdleTimeout)",
         "--upstream-total-timeout", "\(upstreamTotalTimeout)", "--breaker-failures", "\(breakerFailures)",
         "--breaker-cooldown", "\(breakerCooldown)", "--cache-max-mb", "\(cacheMaxMB)", "--cache-max-entry-kb", "\(cacheMaxEntryKB)",
         "--cache-prune-interval", "\(cachePruneInterval)", "--cache-max-waiters", "\(cacheMaxWaiters)",
         "--db-busy-timeout", "\(dbBusyTimeout)", "--log-level", logLevel, "--audit-queue-max", "\(auditQueueMax)",
         "--audit-retention-days", "\(auditRetentionDays)", "--audit-retention-interval", "\(auditRetentionInterval)",
         "--session-hours", "\(sessionHours)", "--slowlog-threshold", "\(slowlogThreshold)", "--log-format", logFormat]
            + (auditJournal.map { ["--audit-journal", $0] } ?? [])
            + (logFile.map { ["--log-file", $0] } ?? [])
            + (metricsPublic ? ["--metrics-public"] : [])
            + (dbDurableCounters ? ["--db-durable-counters"] : [])
            + (otelEndpoint.map { ["--otel-endpoint", $0, "--otel-service-name", otelServiceName] } ?? [])
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel).") }
        guard LogFormat(rawValue: logFormat) != nil else { throw ValidationError("--log-format must be text or json.") }
        if let otelEndpoint, !(otelEndpoint.hasPrefix("http://") || otelEndpoint.hasPrefix("https://")) {
            throw ValidationError("--otel-endpoint must be an http:// or https:// URL (OTLP over HTTP), e.g. http://127.0.0.1:4318/v1/traces.")
        }
        guard slowlogThreshold >= 0 else { throw ValidationError("--slowlog-threshold must be 0 (off) or a positive number of seconds.") }
        guard acceptThreads >= 1 else { throw ValidationError("--accept-threads must be at least 1.") }
        guard dbBusyTimeout >= 1 else { throw ValidationError("--db-busy-timeout must be at least 1 ms.") }
        guard maxBodySize >= 1024 else { throw ValidationError("--max-body-size must be at least 1024 bytes.") }
        for (name, value) in [("--upstream-connect-timeout", upstreamConnectTimeout), ("--upstream-timeout", upstreamTimeout),
                              ("--upstream-idle-timeout", upstreamIdleTimeout), ("--upstream-total-timeout", upstreamTotalTimeout),
                              ("--breaker-cooldown", breakerCooldown), ("--cache-prune-interval", cachePruneInterval)] where !(value > 0) {
            throw ValidationError("\(name) must be a positive number of seconds.")
        }
        guard cacheMaxWaiters >= 0 else { throw ValidationError("--cache-max-waiters must be 0 or more.") }
        guard auditQueueMax >= 1 else { throw ValidationError("--audit-queue-max must be at least 1.") }
        guard auditRetentionDays >= 0 else { throw ValidationError("--audit-retention-days must be 0 (keep forever) or more.") }
        guard auditRetentionInterval > 0 else { throw ValidationError("--audit-retention-interval must be a positive number of seconds.") }
        guard sessionHours > 0, sessionHours <= 24 * 90 else { throw ValidationError("--session-hours must be more than 0 and at most 2160.") }
        guard breakerFailures >= 0 else { throw ValidationError("--breaker-failures must be 0 (off) or more.") }
        guard cacheMaxMB >= 0, cacheMaxEntryKB >= 0 else { throw ValidationError("--cache-max-mb and --cache-max-entry-kb must be 0 or more.") }
    }
}

/// The process's logger: every line with its pid, to standard error or `--log-file`, as text or
/// JSON. Returns the output too, so SIGUSR1 can reopen it.
func bootstrapLogging(_ options: WorkerOptions, label: String) throws -> (Logger, LogOutput) {
    let output = try options.logFile.map { try LogOutput.file(absolutePath($0)) } ?? LogOutput.standardError
    let level = Logger.Level(rawValue: options.logLevel) ?? .info
    let format = LogFormat(rawValue: options.logFormat) ?? .text
    LoggingSystem.bootstrap { name in GatewayLogHandler(label: name, level: level, format: format, output: output) }
    var logger = Logger(label: label)
    logger[metadataKey: "pid"] = "\(getpid())"
    return (logger, output)
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the FastCGI server: a master process supervising worker processes.",
        discussion: """
        Signals to the master: SIGQUIT or SIGTERM stop gracefully (in-flight requests finish, up to \
        --graceful-timeout); SIGUSR2 or SIGHUP reload (new workers start, old ones finish their requests); SIGUSR1 reopens log files.
        """)

    @OptionGroup var global: GlobalOptions
    @Option(help: "Unix socket path for nginx's fastcgi_pass.") var socket: String?
    @Option(help: "HOST:PORT to listen on over TCP instead.") var listen: String?
    @Option(name: .customLong("socket-mode"), help: "Permissions of the unix socket (octal). The default lets only the owner and the group in: run serve in nginx's group (Debian: www-data), see deploy/INSTALL.md.") var socketMode = "0660"
    @Option(help: "Worker processes.") var workers = 2
    @Option(name: .customLong("pid-file"), help: "Write the master's pid here.") var pidFile: String?
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        guard (socket == nil) != (listen == nil) else { throw ValidationError("Give exactly one of --socket PATH or --listen HOST:PORT.") }
        guard workers >= 1 && workers <= 256 else { throw ValidationError("--workers must be between 1 and 256.") }
        guard mode_t(socketMode, radix: 8) != nil else { throw ValidationError("--socket-mode must be octal, e.g. 0660.") }
    }

    func run() throws {
        let (logger, logOutput) = try bootstrapLogging(workerOptions, label: "deploxa.master")
        let address: ListenAddress
        if let socket {
            let absolute = socket.hasPrefix("/") ? socket : FileManager.default.currentDirectoryPath + "/" + socket
            address = .unix(path: absolute, mode: mode_t(socketMode, radix: 8)!)
        } else {
            let parts = listen!.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--listen must be HOST:PORT.") }
            address = .tcp(host: String(parts[0]), port: port)
        }
        // Migrations run once here, before any worker starts (on PostgreSQL, once per node; the
        // nodes agree through an advisory lock). The master itself never uses the database.
        let backend = try global.backend()
        var databasePath = global.databasePath
        if case .sqlite(let path) = backend { databasePath = URL(fileURLWithPath: path).path }
        let applied = try backend.openConfiguration(migrate: false).migrate()
        if !applied.isEmpty { logger.info("applied migrations", metadata: ["migrations": "\(applied.joined(separator: ","))"]) }

        let supervisor = Supervisor(
            configuration: SupervisorConfiguration(
                address: address, workers: workers,
                workerArguments: ["worker", "--db", databasePath, "--schema-ready"] + workerOptions.arguments(logFile: workerOptions.logFile.map(absolutePath)),
                gracefulTimeoutSeconds: workerOptions.gracefulTimeout, pidFile: pidFile,
                reopenLogs: { logOutput.reopen() }),
            logger: logger)
        let code = try supervisor.run()
        throw ExitCode(code)
    }
}

/// One worker process, started by `serve` with the listening socket as fd 0. Not for operators.
struct WorkerCommand: ParsableCommand {
    /// A CGI process writes its one row before it exits and may run as a user who cannot write
    /// beside the database: no journal there.
    static func journalDirectory(_ options: WorkerOptions, databasePath: String) -> String? {
        guard ProcessInfo.processInfo.environment["GATEWAY_INTERFACE"] == nil else { return nil }
        if let folder = options.auditJournal { return folder }
        // A shared database has no folder beside it: the journal stays on this node, in the
        // directory serve was started from, one folder per database (a journal replayed into
        // another database would put rows where they do not belong).
        if databasePath.hasPrefix("postgresql://") || databasePath.hasPrefix("postgres://") {
            let name = (try? DatabaseBackend(databasePath).displayName) ?? databasePath
            let folder = String(name.dropFirst("postgresql://".count).map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "_" })
            return FileManager.default.currentDirectoryPath + "/deploxa-gateway.audit-journal/" + folder
        }
        return AuditWriter.defaultJournalDirectory(forDatabase: databasePath)
    }

    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Internal: a FastCGI worker started by serve.", shouldDisplay: false)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var workerOptions: WorkerOptions
    @Flag(name: .customLong("schema-ready"), help: .hidden) var schemaReady = false
    @Option(name: .customLong("scoreboard-fd"), help: .hidden) var scoreboardFD: Int32?
    @Option(name: .customLong("scoreboard-slot"), help: .hidden) var scoreboardSlot: Int?

    func run() throws {
        let (logger, logOutput) = try bootstrapLogging(workerOptions, label: "deploxa.worker")
        // The master's scoreboard (absent when a web server runs us as CGI, or a worker by hand).
        let scoreboard = try scoreboardFD.map { try Scoreboard.attach(fileDescriptor: $0) }
        let slot = scoreboardSlot.flatMap { index in scoreboard.map { $0.workerSlot(index) } }
        let stores = try WorkerStores.open(try global.backend(), options: workerOptions, schemaReady: schemaReady,
                                           journalDirectory: Self.journalDirectory(workerOptions, databasePath: global.databasePath))
        let auditWriter = stores.auditWriter
        let upstream = UpstreamClient(timeouts: UpstreamTimeouts(
            connect: workerOptions.upstreamConnectTimeout, firstByte: workerOptions.upstreamTimeout, idle: workerOptions.upstreamIdleTimeout,
            total: workerOptions.upstreamTotalTimeout))
        let application = GatewayApplication(
            configuration: GatewayConfiguration(
                maxBodyBytes: workerOptions.maxBodySize,
                limitWindowSeconds: stores.limitWindowSeconds,
                breakerFailures: workerOptions.breakerFailures, breakerCooldownSeconds: workerOptions.breakerCooldown,
                cacheMaxEntryBytes: workerOptions.cacheMaxEntryKB << 10,
                cacheLeaseSeconds: min(workerOptions.upstreamTotalTimeout, workerOptions.upstreamTimeout + workerOptions.upstreamIdleTimeout),
                cacheMaxWaitersPerKey: workerOptions.cacheMaxWaiters),
            store: stores.requestStore, upstream: upstream, logger: logger, poolSlot: slot)
        // The admin API and dashboard read on a connection of their own (see AdminDatabase).
        let adminDatabase = AdminDatabase(open: stores.openAdminStore)
        let admin = AdminApplication(database: adminDatabase,
                                     configuration: AdminConfiguration(sessionLifetimeSeconds: Int(workerOptions.sessionHours * 3600)),
                                     logger: logger)
        let tracer: OTLPTraceExporter? = workerOptions.otelEndpoint.map {
            OTLPTraceExporter(endpoint: $0, serviceName: workerOptions.otelServiceName, logger: logger)
        }
        var requestFinished: (@Sendable (RequestTrace) -> Void)?
        if let tracer { requestFinished = { tracer.export($0) } }
        // One CPU for the request thread and the client's loop, which wake each other per request.
        var cpu = CPUAffinity.cpu(forWorkerSlot: scoreboardSlot, policy: workerOptions.cpuAffinity,
                                  requestThreads: workerOptions.acceptThreads, allowed: CPUAffinity.allowedCPUs())
        if let chosen = cpu {
            if upstream.runOnEventLoopThread({ CPUAffinity.bindCurrentThread(to: chosen) }) == true {
                logger.info("worker bound to a CPU", metadata: ["cpu": "\(chosen)", "threads": "request thread, HTTP client loop"])
            } else {
                // Both or neither: a request thread bound alone would still wake the loop elsewhere.
                logger.warning("could not bind the HTTP client's loop to a CPU; the kernel places the worker's threads",
                               metadata: ["cpu": "\(chosen)"])
                cpu = nil
            }
        }
        let worker = FastCGIWorker(
            configuration: FastCGIWorkerConfiguration(
                acceptThreads: workerOptions.acceptThreads, maxRequests: workerOptions.maxRequests,
                maxBodyBytes: workerOptions.maxBodySize, gracefulTimeoutSeconds: workerOptions.gracefulTimeout,
                slowlogThresholdSeconds: workerOptions.slowlogThreshold > 0 ? workerOptions.slowlogThreshold : nil, slot: slot,
                reopenLogs: { logOutput.reopen() },
                everySecond: { slot?.setAuditRowsQueued(auditWriter.backlog) },
                requestFinished: requestFinished, masterPid: scoreboard == nil ? nil : getppid(), cpu: cpu),
            responder: GatewayRoutes(dataPlane: application, admin: admin,
                                     pool: PoolRoutes(scoreboard: scoreboard, admin: admin, metricsPublic: workerOptions.metricsPublic,
                                                      poolName: "deploxa-gateway")),
            logger: logger)
        logger.debug("worker ready")
        let reason = worker.run()
        tracer?.shutdownBlocking()
        auditWriter.close()
        stores.closeJanitors()
        adminDatabase.close()
        upstream.shutdownBlocking()
        logger.info("worker exiting", metadata: ["reason": "\(reason)"])
        Foundation.exit(0)
    }
}

/// The composition root's router: `/api` and `/dashboard` go to the admin side, everything else
/// (`/v1`, `/healthz`, unknown paths) to the data plane, which audits every `/v1` request.
final class GatewayRoutes: Responder {
    let dataPlane: GatewayApplication
    let admin: AdminApplication
    let pool: PoolRoutes

    init(dataPlane: GatewayApplication, admin: AdminApplication, pool: PoolRoutes) {
        self.dataPlane = dataPlane
        self.admin = admin
        self.pool = pool
    }

    func respond(to request: HTTPRequest, writer: any ResponseWriter) async {
        if PoolRoutes.handles(path: request.path) {
            await pool.respond(to: request, writer: writer)
        } else if AdminApplication.handles(path: request.path) {
            await admin.respond(to: request, writer: writer)
        } else {
            await dataPlane.respond(to: request, writer: writer)
        }
    }
}
