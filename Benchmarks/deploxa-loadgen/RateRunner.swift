// Open-loop runner: request i is due at start + i/rate, whatever happened to earlier requests.
// Latency = time the full response was read − scheduled time, so queueing inside the generator
// (waiting for a free connection) and the server's own backlog are both counted.
//
// With --threads N, request i goes to shard i % N; each shard owns one event loop and a pool of
// ceil(connections / N) connections, and the shards' results are merged at the end.

import NIOCore
import NIOPosix

struct RateConfig: Sendable {
    var rate: Double
    var duration: Double
    var warmup: Double
    var connections: Int
    var timeout: Double
    var threads: Int
}

struct RateReport: Sendable {
    var targetRate: Double
    var achievedRate: Double
    var sent = 0
    var completed = 0
    var statusCounts: [UInt: Int] = [:]
    var errorCounts: [FailureKind: Int] = [:]
    var latency: Percentiles
    var dispatchLag: Percentiles
    var connectionsOpened = 0
    var peakConnections = 0

    var errors: Int { errorCounts.values.reduce(0, +) }
    var non2xx: Int { statusCounts.filter { !(200..<300).contains($0.key) }.values.reduce(0, +) }

    func json() -> String {
        let errorKinds = FailureKind.allCases.map { "\"\($0.rawValue)\":\(errorCounts[$0, default: 0])" }
        return "{"
            + "\"target_rate\":\(json3(targetRate)),"
            + "\"achieved_rate\":\(json3(achievedRate)),"
            + "\"sent\":\(sent),"
            + "\"completed\":\(completed),"
            + "\"status_counts\":\(jsonCounts(statusCounts)),"
            + "\"non_2xx\":\(non2xx),"
            + "\"errors\":\(errors),"
            + "\"error_counts\":{\(errorKinds.joined(separator: ","))},"
            + "\"p50_ms\":\(json3(latency.p50)),"
            + "\"p90_ms\":\(json3(latency.p90)),"
            + "\"p99_ms\":\(json3(latency.p99)),"
            + "\"p999_ms\":\(json3(latency.p999)),"
            + "\"max_ms\":\(json3(latency.max)),"
            + "\"dispatch_lag_p99_ms\":\(json3(dispatchLag.p99)),"
            + "\"dispatch_lag_max_ms\":\(json3(dispatchLag.max)),"
            + "\"connections_opened\":\(connectionsOpened),"
            + "\"connections_peak\":\(peakConnections)"
            + "}"
    }

    func text(target: Target, config: RateConfig) -> String {
        let non2xxByStatus = statusCounts.filter { !(200..<300).contains($0.key) }
        let errorKinds = FailureKind.allCases.map { "\($0.rawValue) \(errorCounts[$0, default: 0])" }
        return """
            deploxa-loadgen rate: \(target.head.method.rawValue) \(target.url)
              \(fmt3(config.duration)) s measured after \(fmt3(config.warmup)) s warm-up, \
            up to \(config.connections) connections, \(config.threads) thread(s), timeout \(fmt3(config.timeout)) s
            target rate:    \(fmt3(targetRate)) req/s
            achieved rate:  \(fmt3(achievedRate)) req/s
            sent:           \(sent)
            completed:      \(completed)
            non-2xx:        \(non2xx) (\(textCounts(non2xxByStatus)))
            errors:         \(errors) (\(errorKinds.joined(separator: ", ")))
            latency (ms):   p50 \(fmt3(latency.p50))  p90 \(fmt3(latency.p90))  p99 \(fmt3(latency.p99))  \
            p99.9 \(fmt3(latency.p999))  max \(fmt3(latency.max))
            generator:      dispatch lag p99 \(fmt3(dispatchLag.p99)) ms, max \(fmt3(dispatchLag.max)) ms; \
            connections opened \(connectionsOpened), peak \(peakConnections)
            """
    }
}

/// What one shard hands back.
private struct ShardResult: Sendable {
    var sent = 0
    var completed = 0
    var latencies: [UInt64] = []
    var lags: [UInt64] = []
    var statusCounts: [UInt: Int] = [:]
    var errorCounts: [FailureKind: Int] = [:]
    var lastCompletion: UInt64 = 0
    var connectionsOpened = 0
    var peakConnections = 0
}

struct RateRunner {
    var target: Target
    var config: RateConfig

    func run() throws -> RateReport {
        raiseOpenFileLimit()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.threads)
        defer { try? group.syncShutdownGracefully() }

        let totalRequests = Int((config.rate * (config.warmup + config.duration)).rounded())
        let warmupRequests = Int((config.rate * config.warmup).rounded())
        let perShardConnections = (config.connections + config.threads - 1) / config.threads
        // Common time origin, a little in the future so every shard is set up before it.
        let start = nowNanos() + 50_000_000
        let schedule = Schedule(
            start: start, rate: config.rate, total: totalRequests, warmup: warmupRequests,
            timeout: UInt64(config.timeout * 1e9))

        var futures: [EventLoopFuture<ShardResult>] = []
        for shardIndex in 0..<config.threads {
            let loop = group.next()
            let target = self.target
            let timeout = config.timeout
            let shardCount = config.threads
            futures.append(
                loop.flatSubmit {
                    let pool = HTTPConnectionPool(
                        eventLoop: loop, target: target, maxConnections: perShardConnections,
                        connectTimeout: .nanoseconds(Int64(timeout * 1e9)))
                    let shard = RateShard(
                        pool: pool, schedule: schedule, first: shardIndex, stride: shardCount)
                    return shard.start()
                })
        }
        let results = try EventLoopFuture.whenAllSucceed(futures, on: group.next()).wait()

        var merged = ShardResult()
        for r in results {
            merged.sent += r.sent
            merged.completed += r.completed
            merged.latencies += r.latencies
            merged.lags += r.lags
            mergeCounts(&merged.statusCounts, r.statusCounts)
            mergeCounts(&merged.errorCounts, r.errorCounts)
            merged.lastCompletion = max(merged.lastCompletion, r.lastCompletion)
            merged.connectionsOpened += r.connectionsOpened
            merged.peakConnections += r.peakConnections
        }
        // Throughput over the measured window, stretched if the last response came in later.
        let measureStart = schedule.time(of: warmupRequests)
        let span = merged.lastCompletion > measureStart ? Double(merged.lastCompletion - measureStart) / 1e9 : 0
        let achieved = Double(merged.completed) / max(config.duration, span)

        return RateReport(
            targetRate: config.rate, achievedRate: achieved, sent: merged.sent, completed: merged.completed,
            statusCounts: merged.statusCounts, errorCounts: merged.errorCounts,
            latency: Percentiles(nanos: merged.latencies), dispatchLag: Percentiles(nanos: merged.lags),
            connectionsOpened: merged.connectionsOpened, peakConnections: merged.peakConnections)
    }
}

private struct Schedule: Sendable {
    var start: UInt64
    var rate: Double
    var total: Int
    var warmup: Int
    var timeout: UInt64

    func time(of index: Int) -> UInt64 {
        start + UInt64((Double(index) * 1e9 / rate).rounded())
    }
    var lastTime: UInt64 { time(of: max(total - 1, 0)) }
}

/// One event loop's share of the schedule. Confined to `pool.eventLoop`.
private final class RateShard: @unchecked Sendable {
    private let pool: HTTPConnectionPool
    private let loop: EventLoop
    private let schedule: Schedule
    private let stride: Int
    private var next: Int
    private var outstanding = 0
    private var finished = false
    private var result = ShardResult()
    private let promise: EventLoopPromise<ShardResult>
    private var sweeper: RepeatedTask?
    private var hardStop: Scheduled<Void>?

    init(pool: HTTPConnectionPool, schedule: Schedule, first: Int, stride: Int) {
        self.pool = pool
        self.loop = pool.eventLoop
        self.schedule = schedule
        self.stride = stride
        self.next = first
        self.promise = pool.eventLoop.makePromise()
        let expected = max(0, (schedule.total - schedule.warmup) / stride + 1)
        result.latencies.reserveCapacity(expected)
        result.lags.reserveCapacity(expected)

        pool.onComplete = { [unowned self] job, status, now in
            self.outstanding -= 1
            if job.measured {
                self.result.completed += 1
                self.result.latencies.append(now &- job.scheduled)
                self.result.statusCounts[status, default: 0] += 1
                self.result.lastCompletion = max(self.result.lastCompletion, now)
            }
            self.finishIfDone()
        }
        pool.onFailure = { [unowned self] job, kind in
            self.outstanding -= 1
            if job.measured { self.result.errorCounts[kind, default: 0] += 1 }
            self.finishIfDone()
        }
    }

    func start() -> EventLoopFuture<ShardResult> {
        sweeper = loop.scheduleRepeatedTask(initialDelay: .milliseconds(50), delay: .milliseconds(50)) {
            [self] _ in
            self.pool.expire(now: nowNanos(), timeout: self.schedule.timeout)
        }
        // Bounded in time whatever happens: last due time + timeout (+ a little slack).
        let stopAt = schedule.lastTime + schedule.timeout + 200_000_000
        hardStop = loop.scheduleTask(deadline: .uptimeNanoseconds(stopAt)) { [self] in
            self.finish()
        }
        scheduleNextFire()
        return promise.futureResult
    }

    private func scheduleNextFire() {
        guard next < schedule.total else {
            finishIfDone()
            return
        }
        loop.scheduleTask(deadline: .uptimeNanoseconds(schedule.time(of: next))) { [self] in
            self.fire()
        }
    }

    /// Dispatches every request that is due by now (catching up if the timer fired late).
    private func fire() {
        guard !finished else { return }
        let now = nowNanos()
        while next < schedule.total {
            let due = schedule.time(of: next)
            if due > now { break }
            let measured = next >= schedule.warmup
            if measured {
                result.sent += 1
                result.lags.append(now - due)
            }
            outstanding += 1
            next += stride
            pool.submit(PoolJob(scheduled: due, measured: measured))
        }
        scheduleNextFire()
    }

    private func finishIfDone() {
        if next >= schedule.total && outstanding == 0 { finish() }
    }

    private func finish() {
        guard !finished else { return }
        finished = true
        sweeper?.cancel()
        hardStop?.cancel()
        pool.shutdown(failingOutstandingAs: .timeout)
        // Requests never dispatched (only possible if the hard stop fired early) count as timeouts.
        while next < schedule.total {
            if next >= schedule.warmup {
                result.sent += 1
                result.errorCounts[.timeout, default: 0] += 1
            }
            next += stride
        }
        result.connectionsOpened = pool.connectionsOpened
        result.peakConnections = pool.peakConnections
        pool.onComplete = { _, _, _ in }
        pool.onFailure = { _, _ in }
        promise.succeed(result)
    }
}
