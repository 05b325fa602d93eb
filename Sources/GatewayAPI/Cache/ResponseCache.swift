import Foundation
import Synchronization
import GatewayCore
import GatewayStore
import Logging

/// The response cache as the pipeline sees it. It fails open: any store error is logged and
/// treated as a miss (or as "not stored"), never as a failed request.
struct ResponseCache: Sendable {
    let store: any RequestStore
    let logger: Logger
    /// How long a request computing an answer holds the key's lease (identical requests wait on
    /// it): the longest a provider attempt may take.
    let leaseSeconds: Double
    /// Answers larger than this are not stored (a stream being captured stops being captured).
    let maxEntryBytes: Int
    /// How many requests of each gateway key are waiting on another request's lease.
    let waiters: CacheWaiters

    func lookup(_ key: CacheKey, projectID: Int64, requestID: String) -> CachedAnswer? {
        failOpen("lookup", requestID: requestID) { try store.cachedAnswer(key: key.bytes, projectID: projectID) } ?? nil
    }

    /// True when this request should compute the answer; false when an identical request already is.
    func claim(_ key: CacheKey, requestID: String) -> Bool {
        failOpen("lease", requestID: requestID) { try store.claimCacheLease(key: key.bytes, seconds: leaseSeconds) } ?? true
    }

    /// Waits for the request holding the lease: its answer, or nil once the lease is gone without
    /// one (it failed) or has expired. Polls the store with backoff (`nextPollPause`).
    func awaitAnswer(_ key: CacheKey, projectID: Int64, requestID: String) async -> CachedAnswer? {
        let deadline = Date().addingTimeInterval(leaseSeconds)
        var pause = Self.firstPollPause
        while Date() < deadline {
            try? await Task.sleep(nanoseconds: pause)
            if Task.isCancelled { return nil }
            pause = Self.nextPollPause(after: pause)
            if let answer = lookup(key, projectID: projectID, requestID: requestID) { return answer }
            let live = failOpen("lease", requestID: requestID) { try store.cacheLeaseIsLive(key: key.bytes) } ?? false
            if !live { return lookup(key, projectID: projectID, requestID: requestID) }
        }
        return nil
    }

    /// A waiter's first poll comes soon (most answers are quick); later ones back off by half
    /// again each time up to `maxPollPause`, so a long wait costs a few store reads a second,
    /// never a tight loop.
    static let firstPollPause: UInt64 = 5_000_000
    static let maxPollPause: UInt64 = 50_000_000
    static func nextPollPause(after pause: UInt64) -> UInt64 { min(max(pause, firstPollPause) * 3 / 2, maxPollPause) }

    /// True when stored (which also ended the lease on the key).
    func save(_ answer: CachedAnswer, key: CacheKey, projectID: Int64, ttlSeconds: Int, requestID: String) -> Bool {
        guard answer.body.count <= maxEntryBytes else { return false }
        return failOpen("store", requestID: requestID) {
            try store.storeCachedAnswer(answer, key: key.bytes, projectID: projectID, ttlSeconds: ttlSeconds)
        } != nil
    }

    func release(_ key: CacheKey, requestID: String) {
        failOpen("release", requestID: requestID) { try store.releaseCacheLease(key: key.bytes) }
    }

    @discardableResult
    private func failOpen<T>(_ operation: String, requestID: String, _ body: () throws -> T) -> T? {
        do {
            return try body()
        } catch {
            logger.warning("cache \(operation) failed; carrying on without the cache",
                           metadata: ["request_id": "\(requestID)", "error": "\(error)"])
            return nil
        }
    }
}

/// What the cache step found.
enum CacheLookup {
    /// A stored answer (found, or produced meanwhile by the identical request this one waited for).
    case hit(CachedAnswer)
    /// None: this request computes the answer (and, holding the lease, stores it for the others).
    case miss
}

/// One request's use of the cache: looks up, waits for an identical request in flight
/// (coalescing), and stores the answer.
final class CacheSession: @unchecked Sendable {
    let policy: CachePolicy
    let key: CacheKey
    private let cache: ResponseCache
    private let projectID: Int64
    private let requestID: String
    private var holdsLease = false

    init(policy: CachePolicy, key: CacheKey, cache: ResponseCache, projectID: Int64, requestID: String) {
        self.policy = policy
        self.key = key
        self.cache = cache
        self.projectID = projectID
        self.requestID = requestID
    }

    /// The stored answer, if the request may be answered from the cache and one exists or an
    /// identical request in flight produces one. Otherwise a miss, and this request computes it.
    /// `admit` counts the request against its limits (throwing their 429) before it takes the
    /// lease or waits: a waiter is a request like any other, and must not wait for free.
    func findAnswer(keyID: String, admit: () throws -> Void) async throws -> CacheLookup {
        guard policy.lookup else { return .miss }
        if let answer = cache.lookup(key, projectID: projectID, requestID: requestID) { return .hit(answer) }
        guard policy.store else { return .miss }
        try admit()
        if cache.claim(key, requestID: requestID) {
            holdsLease = true
            return .miss
        }
        // Too many of this key's requests are waiting already: this one asks the provider itself.
        guard cache.waiters.enter(keyID) else { return .miss }
        defer { cache.waiters.leave(keyID) }
        if let answer = await cache.awaitAnswer(key, projectID: projectID, requestID: requestID) { return .hit(answer) }
        return .miss
    }

    /// Whether a successful answer should be kept (and so captured while it streams).
    var storesAnswer: Bool { policy.store }

    /// Stores a successful answer (and ends this request's lease in the same transaction).
    func save(_ answer: CachedAnswer) {
        guard policy.store else { return }
        if cache.save(answer, key: key, projectID: projectID, ttlSeconds: policy.ttlSeconds, requestID: requestID) {
            holdsLease = false
        }
    }

    /// Ends the lease if no answer was stored, so waiting requests go on by themselves.
    func finish() {
        if holdsLease {
            cache.release(key, requestID: requestID)
            holdsLease = false
        }
    }

    var maxEntryBytes: Int { cache.maxEntryBytes }
}

/// Requests waiting on another request's cache lease, per gateway key, in this worker. Each
/// waiter holds a task and polls the store; the bound keeps one tenant's burst of identical
/// requests from parking without limit.
final class CacheWaiters: Sendable {
    let maxPerKey: Int
    private let counts = Mutex<[String: Int]>([:])

    init(maxPerKey: Int) { self.maxPerKey = maxPerKey }

    /// Takes a place for `keyID`; false when its places are all taken.
    func enter(_ keyID: String) -> Bool {
        counts.withLock { counts in
            let count = counts[keyID, default: 0]
            guard count < maxPerKey else { return false }
            counts[keyID] = count + 1
            return true
        }
    }

    func leave(_ keyID: String) {
        counts.withLock { counts in
            let count = counts[keyID, default: 1] - 1
            counts[keyID] = count > 0 ? count : nil
        }
    }

    func waiting(_ keyID: String) -> Int { counts.withLock { $0[keyID, default: 0] } }
}
