import CPoolSupport
import Synchronization

/// One worker's place on the scoreboard: its state, the requests it has in flight, and the
/// counters it adds to. Each call is a handful of relaxed atomic adds on the worker's own
/// memory (no lock, no system call); only a model name seen for the first time takes a lock.
public final class WorkerSlot: Sendable {
    let board: Scoreboard
    public let index: Int
    private let models = Mutex<[String: Int]>([:])

    init(board: Scoreboard, index: Int) {
        self.board = board
        self.index = index
    }

    private func word(_ offset: Int) -> Int { board.slotWord(index, offset) }
    private func counter(_ offset: Int) -> Int { board.slotWord(index, ScoreboardLayout.countersStart + offset) }

    // MARK: the worker's life

    public func markServing(pid: Int32) {
        board.set(word(ScoreboardLayout.slotPid), UInt64(pid))
        board.set(word(ScoreboardLayout.slotState), WorkerState.serving.rawValue)
    }

    /// See `Scoreboard.poolStopping`.
    public var poolStopping: Bool { board.poolStopping }

    public func markDraining() { board.set(word(ScoreboardLayout.slotState), WorkerState.draining.rawValue) }

    public func setAuditRowsQueued(_ count: Int) { board.set(word(ScoreboardLayout.slotAuditQueued), UInt64(max(0, count))) }

    // MARK: requests

    /// A request accepted by this worker. Returns its in-flight entry for the status page (-1
    /// when more are in flight than the page lists; the request is still counted).
    public func beginRequest(route: PoolRoute) -> Int {
        board.add(word(ScoreboardLayout.slotAccepted))
        let before = pool_load(board.base + word(ScoreboardLayout.slotInFlight))
        board.add(word(ScoreboardLayout.slotInFlight))
        let busy = busyWorkers()
        board.storeMax(ScoreboardLayout.headerMaxActive, UInt64(busy.busy))
        // php-fpm's "max children reached": a request came while every worker was already busy.
        if before > 0 && busy.busy == busy.serving { board.add(ScoreboardLayout.headerMaxChildrenReached) }

        let now = monotonicNanoseconds()
        for entry in 0..<ScoreboardLayout.inFlightEntries {
            let start = word(ScoreboardLayout.inFlightStart + entry * ScoreboardLayout.inFlightEntryWords)
            if pool_load(board.base + start) == 0, pool_compare_exchange(board.base + start, 0, now) != 0 {
                board.set(start + 1, UInt64(route.rawValue))
                board.set(start + 2, UInt64(PoolProvider.none.rawValue))
                return entry
            }
        }
        return -1
    }

    /// The provider a request in flight is talking to now (shown on the status page).
    public func setProvider(entry: Int, _ provider: PoolProvider) {
        guard entry >= 0 else { return }
        board.set(word(ScoreboardLayout.inFlightStart + entry * ScoreboardLayout.inFlightEntryWords) + 2, UInt64(provider.rawValue))
    }

    /// A request answered (or abandoned): counted by route, status class, provider and cache
    /// result, with its duration.
    public func endRequest(entry: Int, route: PoolRoute, status: Int, provider: PoolProvider, cache: CacheResult,
                           durationSeconds: Double) {
        board.add(counter(ScoreboardLayout.Counters.request(route, statusClass: StatusClass.index(status), provider, cache)))
        observe(ScoreboardLayout.Counters.duration + route.rawValue * LatencyBuckets.words, durationSeconds)
        board.add(word(ScoreboardLayout.slotServed))
        if entry >= 0 {
            board.set(word(ScoreboardLayout.inFlightStart + entry * ScoreboardLayout.inFlightEntryWords), 0)
        }
        pool_sub(board.base + word(ScoreboardLayout.slotInFlight), 1)
    }

    private func busyWorkers() -> (busy: Int, serving: Int) {
        var busy = 0
        var serving = 0
        for slot in 0..<board.slotCount {
            let state = board.get(board.slotWord(slot, ScoreboardLayout.slotState))
            guard state == WorkerState.serving.rawValue || state == WorkerState.draining.rawValue else { continue }
            if state == WorkerState.serving.rawValue { serving += 1 }
            if Int64(bitPattern: board.get(board.slotWord(slot, ScoreboardLayout.slotInFlight))) > 0 { busy += 1 }
        }
        return (busy, serving)
    }

    // MARK: what the pipeline reports

    public func recordUpstreamLatency(_ provider: PoolProvider, seconds: Double) {
        observe(ScoreboardLayout.Counters.upstream + provider.rawValue * LatencyBuckets.words, seconds)
    }

    public func recordTimeToFirstToken(_ provider: PoolProvider, seconds: Double) {
        observe(ScoreboardLayout.Counters.timeToFirstToken + provider.rawValue * LatencyBuckets.words, seconds)
    }

    /// Tokens and cost of one answer (cost in nano-USD, so sums stay exact integers).
    public func recordUsage(_ provider: PoolProvider, model: String, promptTokens: Int, completionTokens: Int, costNanoUSD: Int64?) {
        let modelIndex = self.modelIndex(model)
        let tokens = ScoreboardLayout.Counters.tokens + (provider.rawValue * ScoreboardLayout.Counters.models + modelIndex) * 2
        if promptTokens > 0 { board.add(counter(tokens), UInt64(promptTokens)) }
        if completionTokens > 0 { board.add(counter(tokens + 1), UInt64(completionTokens)) }
        if let costNanoUSD, costNanoUSD > 0 {
            board.add(counter(ScoreboardLayout.Counters.cost + provider.rawValue * ScoreboardLayout.Counters.models + modelIndex),
                      UInt64(costNanoUSD))
        }
    }

    public func recordLimitRefusal(_ kind: LimitRefusalKind) {
        board.add(counter(ScoreboardLayout.Counters.limitRefusals + kind.rawValue))
    }

    /// A provider attempt failed and the request went on to the next target.
    public func recordFallback(from provider: PoolProvider) {
        board.add(counter(ScoreboardLayout.Counters.fallbacks + provider.rawValue))
    }

    public func recordBreakerOpened(_ provider: PoolProvider) {
        board.add(counter(ScoreboardLayout.Counters.breakerOpens + provider.rawValue))
    }

    public func recordSlowRequest() { board.noteSlowRequest() }

    private func observe(_ histogram: Int, _ seconds: Double) {
        let value = seconds.isFinite ? max(0, seconds) : 0
        board.add(counter(histogram + LatencyBuckets.bucket(value)))
        board.add(counter(histogram + LatencyBuckets.bounds.count + 1), UInt64(min(value * 1e6, 1e15)))
        board.add(counter(histogram + LatencyBuckets.bounds.count + 2))
    }

    private func modelIndex(_ name: String) -> Int {
        if let known = models.withLock({ $0[name] }) { return known }
        let found = board.modelIndex(name)
        models.withLock { cache in
            if cache.count < 4 * ScoreboardLayout.modelCount { cache[name] = found }
        }
        return found
    }
}
