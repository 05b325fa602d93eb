import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import GatewayUpstream
import Logging
import Testing

/// The pipeline end to end in one process with the OpenAI simulation (see `TestPipeline`).
@Suite("Gateway pipeline", .serialized)
final class GatewayApplicationTests: TestPipeline {
    private(set) var revokedSecret = ""

    init() async throws {
        try await super.init(providers: [(.openai, "sk-sim-provider-key")], maxBodyBytes: 4096, firstByteTimeout: 1)
        let revoked = try store.createKey(projectID: projectID, name: "r", limits: .none)
        _ = try store.revokeKey(id: revoked.key.id)
        revokedSecret = revoked.secret
    }

    @Test func nonStreamedAnswerIsPassedThroughAndAudited() async throws {
        let writer = await chat(#"{"model":"gpt-4o","user":"alice","messages":[{"role":"user","content":"one two three"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.headers["X-AI-Provider"] == "openai")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == "The quick brown fox jumps over the lazy")
        let row = try auditRow(for: writer)
        #expect(row.status == 200)
        #expect(row.promptTokens == 7)  // 3 words + 4
        #expect(row.completionTokens == 8)
        #expect(row.user == "alice")
        #expect(row.keyID?.hasPrefix("gk_") == true)
        #expect(row.attempts.count == 1)
    }

    @Test func streamRelaysChunksDropsTheUnaskedUsageChunkButAuditsUsage() async throws {
        let writer = await chat(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi [sim words=3]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.headers["Content-Type"] == "text/event-stream")
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        #expect(!writer.text.contains("\"prompt_tokens\""))
        #expect(writer.flushes >= 1)
        let row = try auditRow(for: writer)
        #expect(row.stream)
        #expect(row.promptTokens == 7)  // "hi [sim words=3]": 3 words + 4
        #expect(row.completionTokens == 3)
        #expect(row.timeToFirstTokenMs != nil)
    }

    @Test func streamKeepsTheUsageChunkWhenAsked() async throws {
        let writer = await chat(#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi [sim words=2]"}]}"#)
        #expect(writer.text.contains("\"prompt_tokens\":7"))
    }

    @Test(arguments: [
        (nil as String?, 401, "invalid_api_key"),
        ("dpx_000000000000_nope", 401, "invalid_api_key"),
        ("garbage", 401, "invalid_api_key"),
    ])
    func badKeysAre401(_ key: String?, _ status: Int, _ code: String) async throws {
        let writer = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#, key: key ?? "")
        #expect(writer.status == status)
        #expect(writer.json?["error"]?["code"] == .string(code))
        #expect(try auditRow(for: writer).status == status)
    }

    @Test func revokedKeyIs401() async throws {
        let writer = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#, key: revokedSecret)
        #expect(writer.status == 401)
        #expect(!writer.text.contains(revokedSecret))
    }

    @Test func malformedJSONTooLargeUnknownProviderAndUnconfiguredProvider() async throws {
        #expect(await chat("{nope").status == 400)
        #expect(await chat("x", tooLarge: true).status == 413)
        #expect(await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#, headers: [("x-ai-provider", "acme")]).status == 400)
        let unconfigured = await chat(#"{"model":"claude-sonnet-4","messages":[{"role":"user","content":"x"}]}"#)
        #expect(unconfigured.status == 400)
        #expect(unconfigured.json?["error"]?["code"] == "provider_not_configured")
        #expect(try auditRow(for: unconfigured).provider == "anthropic")
    }

    @Test func unknownRouteIs404AndWrongMethodIs405() async throws {
        let writer = RecordingWriter()
        await application.respond(to: HTTPRequest(method: "GET", path: "/v1/nope", headers: ["authorization": "Bearer \(secret)"]), writer: writer)
        #expect(writer.status == 404)
        let method = RecordingWriter()
        await application.respond(to: HTTPRequest(method: "GET", path: "/v1/chat/completions"), writer: method)
        #expect(method.status == 405)
    }

    @Test func providerErrorsMapToSpecStatuses() async throws {
        let server = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim status=500]"}]}"#)
        #expect(server.status == 502)
        #expect(server.json?["error"]?["type"] == "upstream_error")
        let limited = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim status=429 retry_after=7]"}]}"#)
        #expect(limited.status == 429)
        #expect(limited.headers["Retry-After"] == "7")
        let slow = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim latency_ms=3000]"}]}"#)
        #expect(slow.status == 504)
        #expect(slow.json?["error"]?["code"] == "upstream_timeout")
        let malformed = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim malformed=1]"}]}"#)
        #expect(malformed.status == 502)
        #expect(try auditRow(for: malformed).status == 502)
    }

    @Test func midStreamDisconnectFromTheProviderEndsWithAnErrorEvent() async throws {
        let writer = await chat(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[sim words=20 disconnect_after=2 chunk_delay_ms=20]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.text.contains("data: {\"error\""))
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        #expect(try auditRow(for: writer).errorCode != nil)
    }

    @Test func clientDisconnectIsAudited499() async throws {
        let writer = await chat(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[sim words=50 chunk_delay_ms=20]"}]}"#,
                                writer: RecordingWriter(disconnectAfterWrites: 2))
        let row = try auditRow(for: writer)
        #expect(row.status == 499)
        #expect(row.errorCode == "client_disconnected")
    }

    @Test func connectionRefusedIs502() async throws {
        let project = try #require(try store.project(slug: "acme/web"))
        try store.setProvider(projectID: project.id, provider: .openai, apiKey: Secret("sk-x-123456"), baseURL: "http://127.0.0.1:1")
        defer { try? store.setProvider(projectID: project.id, provider: .openai, apiKey: Secret("sk-sim-provider-key"), baseURL: "http://127.0.0.1:\(simulatorPort)/openai") }
        let writer = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#)
        #expect(writer.status == 502)
        #expect(!writer.text.contains("sk-x-123456"))
    }

    /// The worker keeps the project's provider settings (`ProviderDirectory`); a change must reach
    /// the very next request, and a change back the one after.
    @Test func aProviderSettingChangeReachesTheNextRequest() async throws {
        let body = #"{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}"#
        #expect(await chat(body).status == 200)
        try store.setProvider(projectID: projectID, provider: .openai, apiKey: Secret("sk-x-123456"), baseURL: "http://127.0.0.1:1")
        #expect(await chat(body).status == 502)
        try store.setProvider(projectID: projectID, provider: .openai, apiKey: Secret("sk-sim-provider-key"),
                              baseURL: "http://127.0.0.1:\(simulatorPort)/openai")
        #expect(await chat(body).status == 200)
    }
}
