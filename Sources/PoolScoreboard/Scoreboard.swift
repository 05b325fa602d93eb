#if canImport(Glibc)
import Glibc
#endif
import CPoolSupport

/// Where each figure lives in the shared mapping. Every field is a 64-bit word, updated with
/// relaxed atomics: a worker only ever adds to its own slot, so there is no contention, and a
/// reader (any worker answering /metrics or /status) sums the slots.
enum ScoreboardLayout {
    static let magic: UInt64 = 0x4458_5343_4F52_4532  // "DXSCORE2"
    static let pageWords = 512

    // The pool's header.
    static let headerMagic = 0, headerSlotCount = 1, headerSlotWords = 2, headerStartUnixMs = 3
    static let headerMaxActive = 4, headerMaxChildrenReached = 5, headerSlowRequests = 6
    static let headerListenQueueMax = 7, headerListenQueueCapacity = 8, headerWorkersConfigured = 9
    static let headerReloads = 10, headerPoolStopping = 11
    /// Model names seen so far (the one label whose values are not a closed enum): 128 entries;
    /// later models are counted under "other".
    static let modelTableStart = 64
    static let modelCount = 128
    static let modelEntryWords = 8
    static let modelNameBytes = (modelEntryWords - 1) * 8 - 1
    static let headerWords = roundUp(modelTableStart + modelCount * modelEntryWords)

    // A worker slot.
    static let slotPid = 0, slotState = 1, slotGeneration = 2, slotStartUnixMs = 3, slotServed = 4
    static let slotInFlight = 5, slotAuditQueued = 6, slotAccepted = 7
    /// Requests in flight, for the status page: start (monotonic ns, 0 = free), route, provider.
    static let inFlightStart = 16
    static let inFlightEntries = 32
    static let inFlightEntryWords = 4
    static let countersStart = inFlightStart + inFlightEntries * inFlightEntryWords
    static let slotWords = roundUp(countersStart + Counters.total)

    static func roundUp(_ words: Int) -> Int { (words + pageWords - 1) / pageWords * pageWords }

    /// The metric counters of one slot (offsets from `countersStart`).
    enum Counters {
        static let routes = PoolRoute.allCases.count
        static let providers = PoolProvider.allCases.count
        static let caches = CacheResult.allCases.count
        static let models = modelCount + 1  // + "other"
        static let histogram = LatencyBuckets.words

        static let requests = 0
        static let duration = requests + routes * StatusClass.count * providers * caches
        static let upstream = duration + routes * histogram
        static let timeToFirstToken = upstream + providers * histogram
        static let tokens = timeToFirstToken + providers * histogram
        static let cost = tokens + providers * models * 2
        static let limitRefusals = cost + providers * models
        static let fallbacks = limitRefusals + LimitRefusalKind.allCases.count
        static let breakerOpens = fallbacks + providers
        static let total = breakerOpens + providers

        static func request(_ route: PoolRoute, statusClass: Int, _ provider: PoolProvider, _ cache: CacheResult) -> Int {
            requests + ((route.rawValue * StatusClass.count + statusClass) * providers + provider.rawValue) * caches + cache.rawValue
        }
    }
}

/// What a worker slot is doing.
public enum WorkerState: UInt64, Sendable {
    case free = 0, starting = 1, serving = 2, draining = 3

    public var label: String { ["free", "starting", "serving", "draining"][Int(rawValue)] }
}

public struct ScoreboardError: Error, CustomStringConvertible {
    public var description: String
}

/// The pool's scoreboard, as php-fpm keeps one: a shared-memory file the master creates (a memfd)
/// and every worker maps, so whichever worker nginx picks for a scrape or a status request reads
/// the whole pool's figures. Counters live in per-worker slots that outlive their worker (a new
/// worker in a slot adds to the same counters), so totals never go back when a worker is recycled.
public final class Scoreboard: @unchecked Sendable {
    public let fileDescriptor: Int32
    public let slotCount: Int
    let base: UnsafeMutablePointer<UInt64>
    private let byteCount: Int

    private init(fileDescriptor: Int32, base: UnsafeMutablePointer<UInt64>, byteCount: Int, slotCount: Int) {
        self.fileDescriptor = fileDescriptor
        self.base = base
        self.byteCount = byteCount
        self.slotCount = slotCount
    }

    /// The master's scoreboard: room for `slots` workers (current ones and those still draining
    /// after a reload).
    public static func create(slots: Int, workersConfigured: Int, listenQueueCapacity: Int) throws -> Scoreboard {
        let fd = pool_memfd_create("deploxa-scoreboard")
        guard fd >= 0 else { throw ScoreboardError(description: "memfd_create: \(String(cString: strerror(errno)))") }
        let words = ScoreboardLayout.headerWords + slots * ScoreboardLayout.slotWords
        guard ftruncate(fd, off_t(words * 8)) == 0 else {
            close(fd)
            throw ScoreboardError(description: "ftruncate: \(String(cString: strerror(errno)))")
        }
        let board = try map(fd: fd, words: words, slotCount: slots)
        board.set(ScoreboardLayout.headerSlotCount, UInt64(slots))
        board.set(ScoreboardLayout.headerSlotWords, UInt64(ScoreboardLayout.slotWords))
        board.set(ScoreboardLayout.headerStartUnixMs, UInt64(max(0, unixMilliseconds())))
        board.set(ScoreboardLayout.headerWorkersConfigured, UInt64(workersConfigured))
        board.set(ScoreboardLayout.headerListenQueueCapacity, UInt64(listenQueueCapacity))
        board.set(ScoreboardLayout.headerMagic, ScoreboardLayout.magic)
        return board
    }

    /// A worker's view of the master's scoreboard, inherited as an open descriptor.
    public static func attach(fileDescriptor fd: Int32) throws -> Scoreboard {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= ScoreboardLayout.headerWords * 8 else {
            throw ScoreboardError(description: "descriptor \(fd) is not a scoreboard")
        }
        let words = Int(info.st_size) / 8
        let probe = try map(fd: fd, words: words, slotCount: 0)
        guard probe.get(ScoreboardLayout.headerMagic) == ScoreboardLayout.magic,
              probe.get(ScoreboardLayout.headerSlotWords) == UInt64(ScoreboardLayout.slotWords) else {
            throw ScoreboardError(description: "the scoreboard was made by a different version of the gateway")
        }
        let slots = Int(probe.get(ScoreboardLayout.headerSlotCount))
        guard ScoreboardLayout.headerWords + slots * ScoreboardLayout.slotWords <= words else {
            throw ScoreboardError(description: "the scoreboard is truncated")
        }
        return Scoreboard(fileDescriptor: fd, base: probe.base, byteCount: probe.byteCount, slotCount: slots)
    }

    private static func map(fd: Int32, words: Int, slotCount: Int) throws -> Scoreboard {
        let bytes = words * 8
        guard let raw = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            throw ScoreboardError(description: "mmap: \(String(cString: strerror(errno)))")
        }
        return Scoreboard(fileDescriptor: fd, base: raw.bindMemory(to: UInt64.self, capacity: words), byteCount: bytes,
                          slotCount: slotCount)
    }

    // MARK: words

    func get(_ index: Int) -> UInt64 { pool_load(base + index) }
    func set(_ index: Int, _ value: UInt64) { pool_store(base + index, value) }
    func add(_ index: Int, _ value: UInt64 = 1) { pool_add(base + index, value) }
    func storeMax(_ index: Int, _ value: UInt64) { pool_store_max(base + index, value) }

    func slotWord(_ slot: Int, _ offset: Int) -> Int { ScoreboardLayout.headerWords + slot * ScoreboardLayout.slotWords + offset }

    // MARK: the master's side

    /// A slot no live worker holds, or nil when all are taken.
    public func freeSlot() -> Int? {
        (0..<slotCount).first { get(slotWord($0, ScoreboardLayout.slotState)) == WorkerState.free.rawValue }
    }

    /// Called by the master just before it starts a worker in `slot`.
    public func prepare(slot: Int, generation: Int) {
        clearInFlight(slot: slot)
        set(slotWord(slot, ScoreboardLayout.slotPid), 0)
        set(slotWord(slot, ScoreboardLayout.slotGeneration), UInt64(generation))
        set(slotWord(slot, ScoreboardLayout.slotServed), 0)
        set(slotWord(slot, ScoreboardLayout.slotStartUnixMs), UInt64(max(0, unixMilliseconds())))
        set(slotWord(slot, ScoreboardLayout.slotState), WorkerState.starting.rawValue)
    }

    public func started(slot: Int, pid: Int32) {
        set(slotWord(slot, ScoreboardLayout.slotPid), UInt64(pid))
    }

    /// The worker in `slot` has exited: what it had in flight is gone; its counters stay.
    public func release(slot: Int) {
        clearInFlight(slot: slot)
        set(slotWord(slot, ScoreboardLayout.slotPid), 0)
        set(slotWord(slot, ScoreboardLayout.slotState), WorkerState.free.rawValue)
    }

    private func clearInFlight(slot: Int) {
        set(slotWord(slot, ScoreboardLayout.slotInFlight), 0)
        set(slotWord(slot, ScoreboardLayout.slotAuditQueued), 0)
        for entry in 0..<ScoreboardLayout.inFlightEntries {
            set(slotWord(slot, ScoreboardLayout.inFlightStart + entry * ScoreboardLayout.inFlightEntryWords), 0)
        }
    }

    public func state(slot: Int) -> WorkerState {
        WorkerState(rawValue: get(slotWord(slot, ScoreboardLayout.slotState))) ?? .free
    }

    public func noteReload() { add(ScoreboardLayout.headerReloads) }

    /// The master is stopping the whole pool (not a reload or a recycling): a stopping worker
    /// then serves what waits in the listen queue, since no other worker will.
    public func notePoolStopping() { set(ScoreboardLayout.headerPoolStopping, 1) }

    public var poolStopping: Bool { self.get(ScoreboardLayout.headerPoolStopping) != 0 }

    /// Records a sample of the listen queue (kept: its maximum).
    public func noteListenQueue(_ queued: Int) {
        storeMax(ScoreboardLayout.headerListenQueueMax, UInt64(max(0, queued)))
    }

    public func noteSlowRequest() { add(ScoreboardLayout.headerSlowRequests) }

    public func workerSlot(_ index: Int) -> WorkerSlot {
        precondition(index >= 0 && index < slotCount, "scoreboard slot out of range")
        return WorkerSlot(board: self, index: index)
    }

    // MARK: models

    /// The index of a model name in the shared table (claimed on first sight), or the "other" index.
    func modelIndex(_ name: String) -> Int {
        var bytes = Array(name.utf8.prefix(ScoreboardLayout.modelNameBytes))
        if bytes.isEmpty { bytes = Array("unknown".utf8) }
        for entry in 0..<ScoreboardLayout.modelCount {
            let stateWord = ScoreboardLayout.modelTableStart + entry * ScoreboardLayout.modelEntryWords
            var state = get(stateWord)
            if state == 0, pool_compare_exchange(base + stateWord, 0, 1) != 0 {
                writeModelName(bytes, at: stateWord)
                set(stateWord, 2)
                return entry
            }
            var spins = 0
            while state != 2 && spins < 10_000 {  // another worker is writing this entry's name
                state = get(stateWord)
                spins += 1
            }
            if state == 2, modelName(at: stateWord) == bytes { return entry }
        }
        return ScoreboardLayout.modelCount
    }

    private func writeModelName(_ bytes: [UInt8], at stateWord: Int) {
        let raw = UnsafeMutableRawPointer(base + stateWord + 1)
        raw.storeBytes(of: UInt8(bytes.count), as: UInt8.self)
        for (offset, byte) in bytes.enumerated() { raw.storeBytes(of: byte, toByteOffset: offset + 1, as: UInt8.self) }
    }

    private func modelName(at stateWord: Int) -> [UInt8] {
        let raw = UnsafeRawPointer(base + stateWord + 1)
        let count = min(Int(raw.load(as: UInt8.self)), ScoreboardLayout.modelNameBytes)
        return (0..<count).map { raw.load(fromByteOffset: $0 + 1, as: UInt8.self) }
    }

    /// Names by table index; duplicates (two workers claiming the same name at once) are merged
    /// by the renderer.
    func modelNames() -> [Int: String] {
        var names: [Int: String] = [ScoreboardLayout.modelCount: "other"]
        for entry in 0..<ScoreboardLayout.modelCount {
            let stateWord = ScoreboardLayout.modelTableStart + entry * ScoreboardLayout.modelEntryWords
            if get(stateWord) == 2 { names[entry] = String(decoding: modelName(at: stateWord), as: UTF8.self) }
        }
        return names
    }

    // MARK: readers

    /// Every slot's counters added up: the pool's totals.
    func counterTotals() -> [UInt64] {
        var totals = [UInt64](repeating: 0, count: ScoreboardLayout.Counters.total)
        for slot in 0..<slotCount {
            let start = slotWord(slot, ScoreboardLayout.countersStart)
            for index in 0..<totals.count {
                totals[index] &+= pool_load(base + start + index)
            }
        }
        return totals
    }

    /// The pool as the status page shows it.
    public func snapshot(listenQueue: Int? = nil) -> PoolSnapshot {
        if let listenQueue { noteListenQueue(listenQueue) }
        let now = monotonicNanoseconds()
        var workers: [WorkerSnapshot] = []
        var accepted: UInt64 = 0
        for slot in 0..<slotCount {
            accepted &+= get(slotWord(slot, ScoreboardLayout.slotAccepted))
            let state = self.state(slot: slot)
            guard state != .free else { continue }
            var requests: [InFlightRequest] = []
            for entry in 0..<ScoreboardLayout.inFlightEntries {
                let word = slotWord(slot, ScoreboardLayout.inFlightStart + entry * ScoreboardLayout.inFlightEntryWords)
                let started = get(word)
                guard started != 0 else { continue }
                let route = PoolRoute(rawValue: Int(get(word + 1))) ?? .other
                let provider = PoolProvider(rawValue: Int(get(word + 2))) ?? .none
                requests.append(InFlightRequest(route: route.label, provider: provider == .none ? nil : provider.label,
                                                ageMilliseconds: now > started ? Double(now - started) / 1e6 : 0))
            }
            workers.append(WorkerSnapshot(
                slot: slot, pid: Int(get(slotWord(slot, ScoreboardLayout.slotPid))), state: state,
                generation: Int(get(slotWord(slot, ScoreboardLayout.slotGeneration))),
                startUnixMilliseconds: Int(get(slotWord(slot, ScoreboardLayout.slotStartUnixMs))),
                requestsServed: Int(get(slotWord(slot, ScoreboardLayout.slotServed))),
                inFlight: Int(Int64(bitPattern: get(slotWord(slot, ScoreboardLayout.slotInFlight)))),
                auditRowsQueued: Int(get(slotWord(slot, ScoreboardLayout.slotAuditQueued))),
                requestsInFlight: requests.sorted { $0.ageMilliseconds > $1.ageMilliseconds }))
        }
        return PoolSnapshot(
            startUnixMilliseconds: Int(get(ScoreboardLayout.headerStartUnixMs)), acceptedRequests: Int(accepted),
            listenQueue: listenQueue, maxListenQueue: Int(get(ScoreboardLayout.headerListenQueueMax)),
            listenQueueCapacity: Int(get(ScoreboardLayout.headerListenQueueCapacity)),
            workersConfigured: Int(get(ScoreboardLayout.headerWorkersConfigured)),
            maxActiveWorkers: Int(get(ScoreboardLayout.headerMaxActive)),
            maxChildrenReached: Int(get(ScoreboardLayout.headerMaxChildrenReached)),
            slowRequests: Int(get(ScoreboardLayout.headerSlowRequests)), reloads: Int(get(ScoreboardLayout.headerReloads)),
            workers: workers)
    }
}

func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

public func unixMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}

/// The length of a listening socket's accept queue (nil when the kernel would not say).
public enum ListenQueue {
    public static func sample(fileDescriptor: Int32) -> (queued: Int, capacity: Int)? {
        var queued: UInt32 = 0
        var capacity: UInt32 = 0
        guard pool_listen_queue(fileDescriptor, &queued, &capacity) == 0 else { return nil }
        return (Int(queued), Int(capacity))
    }
}
