import GatewayCore
import GatewayHTTP
import Testing
@testable import GatewayAPI

@Suite("Cache keys and policy")
struct CacheKeyTests {
    func key(_ body: String, project: Int64 = 1, provider: Provider = .openai, route: String = "/v1/chat/completions") throws -> CacheKey {
        guard case .object(let object) = try JSON.parse(Array(body.utf8)) else { throw GatewayError.internalError("not an object") }
        return CacheKey(projectID: project, provider: provider, route: route, body: object)
    }

    @Test func theSameRequestWrittenDifferentlyHasOneKey() throws {
        let compact = try key(#"{"model":"gpt-4o","temperature":1,"messages":[{"role":"user","content":"hi"}]}"#)
        let spaced = try key("""
            {
              "messages" : [ { "content" : "hi", "role" : "user" } ],
              "temperature": 1.0,
              "model": "gpt-4o"
            }
            """)
        #expect(compact == spaced)
        #expect(compact.bytes.count == 32)
    }

    @Test func projectProviderRouteAndBodyEachChangeTheKey() throws {
        let body = #"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#
        let base = try key(body)
        #expect(try key(body, project: 2) != base)
        #expect(try key(body, provider: .mistral) != base)
        #expect(try key(body, route: "/v1/embeddings") != base)
        #expect(try key(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#) != base)
        #expect(try key(#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi!"}]}"#) != base)
    }

    func policy(_ headers: [(String, String)]) throws -> CachePolicy? {
        var fields = HTTPHeaders()
        for (name, value) in headers { fields.add(name: name, value: value) }
        return try CachePolicy.from(HTTPRequest(method: "POST", path: "/v1/chat/completions", headers: fields, body: [], bodyTooLarge: false))
    }

    @Test func policyReadsTheTTLAndCacheControl() throws {
        #expect(try policy([]) == nil)
        #expect(try policy([("x-cache-ttl", "60")]) == CachePolicy(ttlSeconds: 60, lookup: true, store: true))
        #expect(try policy([("x-cache-ttl", "0")]) == CachePolicy(ttlSeconds: 0, lookup: false, store: false))
        #expect(try policy([("x-cache-ttl", "60"), ("cache-control", "no-cache")]) == CachePolicy(ttlSeconds: 60, lookup: false, store: true))
        #expect(try policy([("x-cache-ttl", "60"), ("cache-control", "max-age=0, no-store")]) == CachePolicy(ttlSeconds: 60, lookup: false, store: false))
        for bad in ["-1", "1.5", "soon", "2592001"] {
            #expect(throws: GatewayError.self) { try policy([("x-cache-ttl", bad)]) }
        }
    }
}

@Suite("Cache waiting")
struct CacheWaitingTests {
    /// A waiter polls soon, then backs off to a ceiling: over a minute of waiting that is a
    /// bounded number of store reads, never a tight loop.
    @Test func pollingBacksOffToAFewReadsASecond() {
        var pause = ResponseCache.firstPollPause
        var waited: UInt64 = 0
        var polls = 0
        var pauses: [UInt64] = []
        while waited < 60_000_000_000 {
            waited += pause
            polls += 1
            pauses.append(pause)
            pause = ResponseCache.nextPollPause(after: pause)
        }
        #expect(pauses.first == 5_000_000)
        #expect(zip(pauses, pauses.dropFirst()).allSatisfy { $0 <= $1 })
        #expect(pauses.max() == ResponseCache.maxPollPause)
        #expect(polls < 60 * 21)  // at most ~20 reads a second once backed off
        #expect(ResponseCache.nextPollPause(after: 0) >= ResponseCache.firstPollPause)
    }

    @Test func waitersArePerKeyAndBounded() {
        let waiters = CacheWaiters(maxPerKey: 2)
        #expect(waiters.enter("gk_a"))
        #expect(waiters.enter("gk_a"))
        #expect(!waiters.enter("gk_a"))
        #expect(waiters.enter("gk_b"))
        waiters.leave("gk_a")
        #expect(waiters.waiting("gk_a") == 1)
        #expect(waiters.enter("gk_a"))
        waiters.leave("gk_a")
        waiters.leave("gk_a")
        waiters.leave("gk_b")
        #expect(waiters.waiting("gk_a") == 0 && waiters.waiting("gk_b") == 0)
        #expect(!CacheWaiters(maxPerKey: 0).enter("gk_a"))
    }
}
