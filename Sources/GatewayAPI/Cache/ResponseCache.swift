import Foundation
import GatewayCore
import GatewayStore
import Logging

/// The response cache as the pipeline sees it. It fails open: any store error is logged and
/// treated as a miss (or as "not stored"), never as a failed request.
struct ResponseCache: Sendable {
    let store: GatewayStore
    let logger: Logger
    /// How long a request computing an answer holds the key's lease (identical requests wait on
    /// it): the longest a provider attempt may take.
    let leaseSeconds: Double
    /// Answers larger than this are not stored (a stream being captured stops being captured).
    let maxEntryBytes: Int

    func lookup(_ key: CacheKey, projectID: Int64, requestID: String) -> CachedAnswer? {
        failOpen("lookup", requestID: requestID) { try store.cachedAnswer(key: key.bytes, projectID: projectID) } ?? nil
    }

    /// True when this request should compute the answer; false when an identical request already is.
    func claim(_ key: CacheKey, requestID: String) -> Bool {
        failOpen("lease", requestID: requestID) { try store.claimCacheLease(key: key.bytes, seconds: leaseSeconds) } ?? true
    }

    /// Waits for the request holding the lease: its answer, or nil once the lease is gone without
    /// one (it failed) or has expired. Polls the store, 5 ms at first, backing off to 50 ms.
    func awaitAnswer(_ key: CacheKey, projectID: Int64, requestID: String) async -> CachedAnswer? {
        let deadline = Date().addingTimeInterval(leaseSeconds)
        var pause: UInt64 = 5_000_000
        while Date() < deadline {
            try? await Task.sleep(nanoseconds: pause)
            if Task.isCancelled { return nil }
            pause = min(pause * 3 / 2, 50_000_000)
            if let answer = lookup(key, projectID: projectID, requestID: requestID) { return answer }
            let live = failOpen("lease", requestID: requestID) { try store.cacheLeaseIsLive(key: key.bytes) } ?? false
            if !live { return lookup(key, projectID: projectID, requestID: requestID) }
        }
        return nil
    }

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

/// One request's use of the cache: looks up, waits for an identical request in flight
/// (coalescing), and stores the answer. Sets the `X-Cache` header through the context.
final class CacheSession: @unchecked Sendable {
    let policy: CachePolicy
    let key: CacheKey
    private let cache: ResponseCache
    private let projectID: Int64
    private let context: RequestContext
    private var holdsLease = false

    init(policy: CachePolicy, key: CacheKey, cache: ResponseCache, projectID: Int64, context: RequestContext) {
        self.policy = policy
        self.key = key
        self.cache = cache
        self.projectID = projectID
        self.context = context
        context.cacheStatus = "MISS"
    }

    /// The stored answer, if the request may be answered from the cache and one exists or an
    /// identical request in flight produces one. Otherwise nil, and this request computes it.
    func findAnswer() async -> CachedAnswer? {
        guard policy.lookup else { return nil }
        if let answer = cache.lookup(key, projectID: projectID, requestID: context.requestID) { return hit(answer) }
        guard policy.store else { return nil }
        if cache.claim(key, requestID: context.requestID) {
            holdsLease = true
            return nil
        }
        if let answer = await cache.awaitAnswer(key, projectID: projectID, requestID: context.requestID) { return hit(answer) }
        return nil
    }

    /// Whether a successful answer should be kept (and so captured while it streams).
    var storesAnswer: Bool { policy.store }

    /// Stores a successful answer (and ends this request's lease in the same transaction).
    func save(_ answer: CachedAnswer) {
        guard policy.store else { return }
        if cache.save(answer, key: key, projectID: projectID, ttlSeconds: policy.ttlSeconds, requestID: context.requestID) {
            holdsLease = false
        }
    }

    /// Ends the lease if no answer was stored, so waiting requests go on by themselves.
    func finish() {
        if holdsLease {
            cache.release(key, requestID: context.requestID)
            holdsLease = false
        }
    }

    var maxEntryBytes: Int { cache.maxEntryBytes }

    private func hit(_ answer: CachedAnswer) -> CachedAnswer {
        context.cacheStatus = "HIT"
        return answer
    }
}
