import Foundation
import GatewayCore
import GatewayStore
import Testing

/// Fallback through the whole pipeline in one process: each target translated for its own
/// provider, attempts audited, 4xx not retried, the breaker shared through the store.
@Suite("Fallback pipeline", .serialized)
final class FallbackPipelineTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.openai, "sk-sim-openai"), (.anthropic, "sk-ant-sim"), (.google, "sim-google-key")],
                             firstByteTimeout: 1, totalTimeout: 1.5, breakerFailures: 2, breakerCooldownSeconds: 1)
    }

    func body(_ text: String, stream: Bool = false) -> String {
        #"{"model":"gpt-4o","stream":\#(stream),"messages":[{"role":"user","content":"\#(text)"}]}"#
    }

    func attempts(_ row: AuditRecord) -> [String] {
        row.attempts.map { "\($0.provider)/\($0.model) \($0.status) \($0.errorCode ?? "-")" }
    }

    @Test func aFailedPrimaryIsAnsweredByTheNextTargetInItsOwnFormat() async throws {
        let writer = await chat(body("hi [sim openai:status=500]"), headers: [("X-AI-Fallback", "anthropic/claude-sonnet-4")])
        #expect(writer.status == 200, "\(writer.text)")
        #expect(writer.headers["X-AI-Provider"] == "anthropic")
        #expect(writer.json?["model"] == "claude-sonnet-4")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == "The quick brown fox jumps over the lazy")
        let row = try auditRow(for: writer)
        #expect(attempts(row) == ["openai/gpt-4o 500 upstream_error", "anthropic/claude-sonnet-4 200 -"])
        #expect(row.provider == "anthropic")
        #expect(row.modelRequested == "gpt-4o")
        #expect(row.costUSD != nil, "priced as the model that answered")
    }

    @Test func aClientErrorIsNotRetriedElsewhere() async throws {
        let writer = await chat(body("hi [sim openai:status=400]"), headers: [("X-AI-Fallback", "anthropic/claude-sonnet-4")])
        #expect(writer.status == 400)
        #expect(try attempts(auditRow(for: writer)) == ["openai/gpt-4o 400 invalid_request_error"])
    }

    @Test func everyTargetFailingGivesTheLastErrorNamingAll() async throws {
        let writer = await chat(body("hi [sim openai:status=503 anthropic:status=529]"),
                                headers: [("X-AI-Fallback", "anthropic/claude-sonnet-4")])
        #expect(writer.status == 502)
        let message = writer.json?["error"]?["message"]?.stringValue ?? ""
        #expect(message.contains("openai/gpt-4o") && message.contains("anthropic/claude-sonnet-4") && message.contains("529"), "\(message)")
    }

    @Test func theProjectChainAppliesWithoutAHeader() async throws {
        try store.setFallbackChain(FallbackChain(projectID: projectID, primary: FallbackTarget(provider: .openai, model: "gpt-4o"),
                                                 targets: [FallbackTarget(provider: .anthropic, model: "claude-sonnet-4"),
                                                           FallbackTarget(provider: .google, model: "gemini-2.0-flash")]))
        defer { _ = try? store.removeFallbackChain(projectID: projectID, primary: FallbackTarget(provider: .openai, model: "gpt-4o")) }
        let writer = await chat(body("hi [sim openai:status=429 anthropic:status=500]"))
        #expect(writer.status == 200, "\(writer.text)")
        #expect(writer.headers["X-AI-Provider"] == "google")
        #expect(try attempts(auditRow(for: writer)).count == 3)
    }

    @Test func aStreamFallsBackBeforeItsFirstByteOnly() async throws {
        let early = await chat(body("hi [sim openai:disconnect_after=0]", stream: true), headers: [("X-AI-Fallback", "google/gemini-2.0-flash")])
        #expect(early.status == 200)
        #expect(early.headers["X-AI-Provider"] == "google")
        let text = streamEvents(early).compactMap { event -> String? in event["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text.hasPrefix("The quick"), "\(early.text)")
        let late = await chat(body("hi [sim openai:stream_error_after=3]", stream: true), headers: [("X-AI-Fallback", "google/gemini-2.0-flash")])
        #expect(late.headers["X-AI-Provider"] == "openai")
        #expect(streamEvents(late).last?["error"] != nil, "\(late.text)")
        #expect(late.text.hasSuffix("data: [DONE]\n\n"))
        #expect(try attempts(auditRow(for: late)).count == 1)
    }

    @Test func theTotalDeadlineEndsAnAttempt() async throws {
        // No content within the 1.5 s total deadline (the role chunk alone is held back): falls back.
        let slow = await chat(body("hi [sim openai:chunk_delay_ms=2000]", stream: true), headers: [("X-AI-Fallback", "google/gemini-2.0-flash")])
        #expect(slow.headers["X-AI-Provider"] == "google", "\(slow.text)")
        #expect(try attempts(auditRow(for: slow)).first == "openai/gpt-4o 200 upstream_timeout")
        // Content already sent: the stream ends with the timeout as its error event.
        let long = await chat(body("hi [sim words=40 chunk_delay_ms=100]", stream: true))
        #expect(long.status == 200)
        #expect(streamEvents(long).last?["error"]?["code"] == "upstream_timeout", "\(long.text)")
        #expect(long.text.contains("total deadline"))
    }

    @Test func theBreakerSkipsAFailingProviderThenProbesIt() async throws {
        let fallback = [("X-AI-Fallback", "anthropic/claude-sonnet-4")]
        for _ in 0..<2 { _ = await chat(body("hi [sim openai:status=500]"), headers: fallback) }
        let skipped = await chat(body("hi"), headers: fallback)
        #expect(skipped.headers["X-AI-Provider"] == "anthropic")
        #expect(try attempts(auditRow(for: skipped)) == ["openai/gpt-4o 0 circuit_open", "anthropic/claude-sonnet-4 200 -"])
        try await Task.sleep(nanoseconds: 1_200_000_000)
        let probe = await chat(body("hi"), headers: fallback)
        #expect(probe.headers["X-AI-Provider"] == "openai")
        #expect(try store.breakerState(projectID: projectID, provider: .openai) == nil)
    }

    @Test func aTranslationAFallbackTargetRefusesIsPassedOver() async throws {
        // n=2 is refused by the Anthropic adapter; Gemini takes it.
        let writer = await chat(#"{"model":"gpt-4o","n":2,"messages":[{"role":"user","content":"hi [sim openai:status=500]"}]}"#,
                                headers: [("X-AI-Fallback", "anthropic/claude-sonnet-4,google/gemini-2.0-flash")])
        #expect(writer.headers["X-AI-Provider"] == "google", "\(writer.text)")
        #expect(try attempts(auditRow(for: writer)).map { $0.components(separatedBy: " ")[1] } == ["500", "400", "200"])
    }
}

/// The cache through the whole pipeline in one process.
@Suite("Cache pipeline", .serialized)
final class CachePipelineTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.openai, "sk-sim-openai")])
    }

    @Test func aHitIsTheStoredAnswerAtNoCost() async throws {
        let body = #"{"model":"gpt-4o","messages":[{"role":"user","content":"cache me \#(UUID().uuidString)"}]}"#
        let miss = await chat(body, headers: [("X-Cache-TTL", "60")])
        let hit = await chat(body, headers: [("X-Cache-TTL", "60")])
        #expect(miss.headers["X-Cache"] == "MISS")
        #expect(hit.headers["X-Cache"] == "HIT")
        #expect(hit.body == miss.body)
        #expect(hit.headers["X-Gateway-Cost-USD"].flatMap(Double.init) == 0)
        let row = try auditRow(for: hit)
        #expect(row.cacheHit && row.costUSD == 0 && row.attempts.isEmpty && row.provider == "openai")
    }

    @Test func aStoreErrorIsAMissNotAFailure() async throws {
        let body = #"{"model":"gpt-4o","messages":[{"role":"user","content":"no table \#(UUID().uuidString)"}]}"#
        try store.connection.execute("ALTER TABLE cache_entries RENAME TO cache_entries_away")
        defer { try? store.connection.execute("ALTER TABLE cache_entries_away RENAME TO cache_entries") }
        let first = await chat(body, headers: [("X-Cache-TTL", "60")])
        let second = await chat(body, headers: [("X-Cache-TTL", "60")])
        #expect(first.status == 200 && second.status == 200)
        #expect(second.headers["X-Cache"] == "MISS")
    }
}
