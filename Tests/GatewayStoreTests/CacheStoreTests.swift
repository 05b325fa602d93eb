import Foundation
import GatewayCore
import Testing
@testable import GatewayStore

@Suite("Response cache store")
struct CacheStoreTests {
    let now = Date(timeIntervalSince1970: 1_767_225_600)
    let key = [UInt8](repeating: 7, count: 32)
    let answer = CachedAnswer(provider: "openai", modelServed: "gpt-4o-2024-08-06", stream: false, body: Array(#"{"id":"x"}"#.utf8))

    @Test func storedAnswerIsServedUntilItExpires() throws {
        let database = try TestDatabase()
        try database.store.storeCachedAnswer(answer, key: key, projectID: 1, ttlSeconds: 60, now: now)
        #expect(try database.store.cachedAnswer(key: key, projectID: 1, now: now.addingTimeInterval(59.9)) == answer)
        #expect(try database.store.cachedAnswer(key: key, projectID: 1, now: now.addingTimeInterval(60)) == nil)
    }

    @Test func anEntryIsOnlyEverFoundForItsOwnProject() throws {
        let database = try TestDatabase()
        try database.store.storeCachedAnswer(answer, key: key, projectID: 1, ttlSeconds: 60, now: now)
        #expect(try database.store.cachedAnswer(key: key, projectID: 2, now: now) == nil)
    }

    @Test func oneRequestHoldsTheLeaseUntilItStoresOrReleasesOrTheLeaseExpires() throws {
        let database = try TestDatabase()
        let other = try database.openAnother()
        #expect(try database.store.claimCacheLease(key: key, seconds: 30, now: now))
        #expect(try !other.claimCacheLease(key: key, seconds: 30, now: now.addingTimeInterval(1)))
        #expect(try other.cacheLeaseIsLive(key: key, now: now.addingTimeInterval(1)))
        // Storing the answer ends the lease in the same transaction.
        try database.store.storeCachedAnswer(answer, key: key, projectID: 1, ttlSeconds: 60, now: now.addingTimeInterval(2))
        #expect(try !other.cacheLeaseIsLive(key: key, now: now.addingTimeInterval(2)))
        // A released lease can be taken again; an expired one too.
        #expect(try other.claimCacheLease(key: key, seconds: 30, now: now.addingTimeInterval(3)))
        try other.releaseCacheLease(key: key)
        #expect(try database.store.claimCacheLease(key: key, seconds: 5, now: now.addingTimeInterval(4)))
        #expect(try other.claimCacheLease(key: key, seconds: 5, now: now.addingTimeInterval(9)))
    }

    @Test func pruningDropsExpiredEntriesThenTheOldestAboveTheBound() throws {
        let database = try TestDatabase()
        let body = [UInt8](repeating: 65, count: 1000)
        for index in 0..<10 {
            var entryKey = key
            entryKey[0] = UInt8(index)
            let ttl = index < 3 ? 10 : 3600
            try database.store.storeCachedAnswer(CachedAnswer(provider: "openai", modelServed: nil, stream: true, body: body),
                                                 key: entryKey, projectID: 1, ttlSeconds: ttl, now: now.addingTimeInterval(Double(index)))
        }
        // Each entry counts its body plus key and row overhead (1,096 bytes): 7 live ones are 7,672.
        let result = try database.store.pruneCache(maxBytes: 5000, now: now.addingTimeInterval(100), batch: 2)
        #expect(result.expired == 3)
        #expect(result.evicted == 3)
        #expect(result.remainingBytes <= 5000)
        let survivors = (0..<10).filter { index in
            var entryKey = key
            entryKey[0] = UInt8(index)
            return (try? database.store.cachedAnswer(key: entryKey, projectID: 1, now: now.addingTimeInterval(100))) != nil
        }
        #expect(survivors == [6, 7, 8, 9])
    }

    /// Stores `count` entries of `bodyBytes` for `projectID`, a second apart from `start`; returns their keys.
    func fill(_ store: GatewayStore, projectID: Int64, count: Int, bodyBytes: Int, start: Date, tag: UInt8) throws -> [[UInt8]] {
        var keys: [[UInt8]] = []
        for index in 0..<count {
            var entryKey = [UInt8](repeating: tag, count: 32)
            entryKey[1] = UInt8(index & 0xff)
            entryKey[2] = UInt8(index >> 8)
            try store.storeCachedAnswer(CachedAnswer(provider: "openai", modelServed: nil, stream: false,
                                                     body: [UInt8](repeating: 66, count: bodyBytes)),
                                        key: entryKey, projectID: projectID, ttlSeconds: 3600, now: start.addingTimeInterval(Double(index)))
            keys.append(entryKey)
        }
        return keys
    }

    @Test func evictionTakesFromTheProjectHoldingTheMostAndSparesASmallOne() throws {
        let database = try TestDatabase()
        // B's few small entries are the oldest in the cache: oldest-first eviction would drop them first.
        let small = try fill(database.store, projectID: 2, count: 3, bodyBytes: 100, start: now, tag: 2)
        let large = try fill(database.store, projectID: 1, count: 200, bodyBytes: 1000, start: now.addingTimeInterval(10), tag: 1)
        let later = now.addingTimeInterval(300)
        let result = try database.store.pruneCache(maxBytes: 20_000, now: later, batch: 7)
        #expect(result.expired == 0)
        #expect(result.remainingBytes <= 20_000)
        let total = try database.store.connection.queryFirst("SELECT SUM(size) FROM cache_entries") { $0.int64(0) } ?? -1
        #expect(total == result.remainingBytes)
        for entryKey in small {
            #expect(try database.store.cachedAnswer(key: entryKey, projectID: 2, now: later) != nil, "project 2 keeps its entries")
        }
        // Project 1 keeps its newest entries, as many as fit beside project 2's.
        let kept = try large.map { try database.store.cachedAnswer(key: $0, projectID: 1, now: later) != nil }
        let firstKept = try #require(kept.firstIndex(of: true))
        #expect(kept[firstKept...].allSatisfy { $0 })
        #expect(result.evicted == firstKept)
        #expect(total + 1096 > 20_000, "no more was evicted than needed")
    }

    @Test func projectsOverTheFairLevelAreCutToItLargestFirst() throws {
        #expect(GatewayStore.fairLevel([10, 5, 1], excess: 7) == 4)
        #expect(GatewayStore.fairLevel([10, 5, 1], excess: 3) == 7)
        #expect(GatewayStore.fairLevel([8, 8, 1], excess: 4) == 6)
        #expect(GatewayStore.fairLevel([8, 8, 1], excess: 17) == 0)
        #expect(GatewayStore.fairLevel([8, 8, 1], excess: 0) == 8)
        #expect(GatewayStore.fairLevel([], excess: 5) == 0)

        // Two large projects over the bound lose alike; the small one loses nothing.
        let database = try TestDatabase()
        _ = try fill(database.store, projectID: 1, count: 20, bodyBytes: 1000, start: now, tag: 1)
        _ = try fill(database.store, projectID: 2, count: 20, bodyBytes: 1000, start: now, tag: 2)
        _ = try fill(database.store, projectID: 3, count: 2, bodyBytes: 1000, start: now, tag: 3)
        // 20 entries of 1,096 bytes each for projects 1 and 2, 2 for project 3: the level is 10 entries.
        let result = try database.store.pruneCache(maxBytes: 24_112, now: now.addingTimeInterval(60))
        #expect(result.remainingBytes == 24_112)
        let counts = try database.store.connection.query(
            "SELECT project_id, count(*) FROM cache_entries GROUP BY project_id ORDER BY project_id") { [$0.int64(0), $0.int64(1)] }
        #expect(counts == [[1, 10], [2, 10], [3, 2]])
    }

    @Test func evictionReadsOnlyTheIndexNotTheAnswerBodies() throws {
        let database = try TestDatabase()
        // Migration 4 created the index eviction reads.
        func plan(_ sql: String, _ values: [SQLValue] = []) throws -> String {
            try database.store.connection.query("EXPLAIN QUERY PLAN " + sql, values) { $0.string(3) }.joined(separator: "; ")
        }
        let totals = try plan("SELECT project_id, SUM(size) FROM cache_entries GROUP BY project_id")
        #expect(totals.contains("COVERING INDEX cache_entries_project_created"), "\(totals)")
        let victims = try plan("SELECT key, size FROM cache_entries WHERE project_id = ? ORDER BY created_at LIMIT ?",
                               [.integer(1), .integer(10)])
        #expect(victims.contains("COVERING INDEX cache_entries_project_created"), "\(victims)")
        #expect(!victims.contains("TEMP B-TREE"), "\(victims)")
    }
}

@Suite("Cache janitor")
struct CacheJanitorTests {
    @Test func expiredEntriesArePrunedInTheBackground() async throws {
        let database = try TestDatabase()
        let key = [UInt8](repeating: 9, count: 32)
        try database.store.storeCachedAnswer(CachedAnswer(provider: "openai", modelServed: nil, stream: false, body: [1, 2, 3]),
                                             key: key, projectID: 1, ttlSeconds: 0)
        func rows() throws -> Int { try database.store.connection.queryFirst("SELECT count(*) FROM cache_entries") { $0.int(0) } ?? -1 }
        #expect(try rows() == 1)
        let janitor = CacheJanitor(store: try database.openAnother(), maxBytes: 1 << 20, interval: 0.05)
        defer { janitor.close() }
        for _ in 0..<100 where try rows() > 0 { try await Task.sleep(nanoseconds: 20_000_000) }
        #expect(try rows() == 0)
    }
}

@Suite("Fallback chains and circuit breakers")
struct FallbackStoreTests {
    let now = Date(timeIntervalSince1970: 1_767_225_600)

    func target(_ text: String) throws -> FallbackTarget { try FallbackTarget.parse(text).get() }

    @Test func aChainIsSetReplacedListedAndRemoved() throws {
        let database = try TestDatabase()
        _ = try database.store.createOrg(name: "acme", limits: .none)
        let project = try database.store.createProject(orgName: "acme", name: "web", plan: .pro, limits: .none)
        let primary = try target("openai/gpt-4o")
        try database.store.setFallbackChain(FallbackChain(projectID: project.id, primary: primary, targets: [try target("anthropic/claude-sonnet-4")]))
        try database.store.setFallbackChain(FallbackChain(projectID: project.id, primary: primary,
                                                          targets: [try target("google/gemini-2.0-flash"), try target("mistral/mistral-large-latest")]))
        let chain = try #require(try database.store.fallbackChain(projectID: project.id, primary: primary))
        #expect(chain.targets.map(\.description) == ["google/gemini-2.0-flash", "mistral/mistral-large-latest"])
        #expect(try database.store.fallbackChains(projectID: project.id).count == 1)
        #expect(try database.store.fallbackChain(projectID: project.id, primary: try target("openai/gpt-4o-mini")) == nil)
        #expect(throws: StoreError.self) {
            try database.store.setFallbackChain(FallbackChain(projectID: project.id, primary: primary, targets: [primary]))
        }
        #expect(try database.store.removeFallbackChain(projectID: project.id, primary: primary))
        #expect(try !database.store.removeFallbackChain(projectID: project.id, primary: primary))
    }

    @Test func theBreakerOpensAtTheThresholdAndOnlyOneRequestProbes() throws {
        let database = try TestDatabase()
        let store = database.store
        for failure in 1...2 {
            let state = try store.recordProviderFailure(projectID: 1, provider: .openai, threshold: 3, cooldownSeconds: 30,
                                                        retryAfterSeconds: nil, now: now)
            #expect(state == BreakerState(failures: failure, openUntil: 0))
        }
        let opened = try store.recordProviderFailure(projectID: 1, provider: .openai, threshold: 3, cooldownSeconds: 30,
                                                     retryAfterSeconds: nil, now: now)
        #expect(opened.openUntil == Int64(now.timeIntervalSince1970 * 1000) + 30_000)
        // Another project's breaker is its own.
        #expect(try store.breakerState(projectID: 2, provider: .openai) == nil)
        // After the cool-down exactly one claimant gets the probe.
        let other = try database.openAnother()
        let later = now.addingTimeInterval(31)
        #expect(try store.claimBreakerProbe(projectID: 1, provider: .openai, seenOpenUntil: opened.openUntil, until: later.addingTimeInterval(30)))
        #expect(try !other.claimBreakerProbe(projectID: 1, provider: .openai, seenOpenUntil: opened.openUntil, until: later.addingTimeInterval(30)))
        try store.recordProviderSuccess(projectID: 1, provider: .openai)
        #expect(try store.breakerState(projectID: 1, provider: .openai) == nil)
    }

    @Test func aProvidersRetryAfterKeepsItSkippedBelowTheThreshold() throws {
        let database = try TestDatabase()
        let state = try database.store.recordProviderFailure(projectID: 1, provider: .anthropic, threshold: 5, cooldownSeconds: 30,
                                                             retryAfterSeconds: 7, now: now)
        #expect(state.failures == 1)
        #expect(state.openUntil == Int64(now.timeIntervalSince1970 * 1000) + 7_000)
    }
}
