import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayProviders
import GatewayStore
import GatewayTesting
import GatewayUpstream
import Logging
import Testing

/// OpenAI-shaped requests through the whole pipeline to the simulated Gemini API and back:
/// the Google adapter's translation must be understood by the Google simulation, and its
/// answers must come back as OpenAI objects.
@Suite("Google round trip", .serialized)
final class GoogleRoundTripTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.google, "AIza-sim-google-key")])
    }

    @Test func nonStreamedAnswer() async throws {
        let writer = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"one two three"}],"temperature":0.3}"#)
        #expect(writer.status == 200)
        #expect(writer.headers["X-AI-Provider"] == "google")
        let answer = try #require(writer.json)
        #expect(answer["object"] == "chat.completion")
        #expect(answer["id"]?.stringValue?.hasPrefix("chatcmpl-sim-") == true)
        #expect(answer["model"] == "gemini-2.5-flash")
        #expect(answer["choices"]?[0]?["message"]?["content"] == "The quick brown fox jumps over the lazy")
        #expect(answer["choices"]?[0]?["finish_reason"] == "stop")
        // System prompt (2 words + 4) and user turn (3 words + 4).
        #expect(answer["usage"]?["prompt_tokens"] == 13)
        #expect(answer["usage"]?["completion_tokens"] == 8)
        #expect(answer["usage"]?["total_tokens"] == 21)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 13)
        #expect(row.completionTokens == 8)
    }

    @Test func lengthStop() async throws {
        let writer = await chat(#"{"model":"gemini-2.5-flash","max_tokens":3,"messages":[{"role":"user","content":"go"}]}"#)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "length")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == "The quick brown")
    }

    @Test func streamWithUsage() async throws {
        let writer = await chat(#"{"model":"gemini-2.5-flash","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi [sim words=3 unicode=1]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        let chunks = streamEvents(writer)
        #expect(chunks.first?["choices"]?[0]?["delta"]?["role"] == "assistant")
        let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "héllo 日本語 🌍")
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1)
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"] == "stop" })
        let usage = try #require(chunks.last?["usage"])
        #expect(usage["prompt_tokens"] == 8)  // 4 words + 4
        #expect(usage["completion_tokens"] == 3)
        let row = try auditRow(for: writer)
        #expect(row.stream)
        #expect(row.completionTokens == 3)
    }

    @Test func toolCallRoundTrip() async throws {
        let tools = #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}}]"#
        let first = await chat(#"{"model":"gemini-2.5-flash","tools":\#(tools),"messages":[{"role":"user","content":"Weather in Paris? [sim tool=get_weather]"}]}"#)
        #expect(first.status == 200)
        let message = try #require(first.json?["choices"]?[0]?["message"])
        #expect(first.json?["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(message["content"] == .null)
        let call = try #require(message["tool_calls"]?[0])
        #expect(call["function"]?["name"] == "get_weather")
        #expect(call["function"]?["arguments"] == #"{"city":"Paris"}"#)
        let id = try #require(call["id"]?.stringValue)

        let second = await chat(#"""
        {"model":"gemini-2.5-flash","tools":\#(tools),"messages":[
          {"role":"user","content":"Weather in Paris? [sim tool=get_weather words=4]"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
          {"role":"tool","tool_call_id":"\#(id)","content":"18 C"}]}
        """#)
        #expect(second.status == 200)
        #expect(second.json?["choices"]?[0]?["message"]?["content"] == "The quick brown fox")
        #expect(second.json?["choices"]?[0]?["finish_reason"] == "stop")
    }

    @Test func streamedToolCall() async throws {
        let writer = await chat(#"{"model":"gemini-2.5-flash","stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"[sim tool=get_weather]"}]}"#)
        let chunks = streamEvents(writer)
        let calls = chunks.compactMap { $0["choices"]?[0]?["delta"]?["tool_calls"]?[0] }
        let call = try #require(calls.first)
        #expect(call["index"] == 0)
        #expect(call["function"]?["name"] == "get_weather")
        #expect(call["function"]?["arguments"] == #"{"city":"Paris"}"#)
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"] == "tool_calls" })
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func errorsMapToOpenAIStatuses() async throws {
        let limited = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"[sim status=429 retry_after=7]"}]}"#)
        #expect(limited.status == 429)
        #expect(limited.headers["Retry-After"] == "7")
        #expect(limited.json?["error"]?["message"]?.stringValue?.contains("quota") == true)
        let server = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"[sim status=500]"}]}"#)
        #expect(server.status == 502)
        #expect(server.json?["error"]?["type"] == "upstream_error")
        let malformed = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"[sim malformed=1]"}]}"#)
        #expect(malformed.status == 502)
        let image = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#)
        #expect(image.status == 400)
        #expect(image.json?["error"]?["param"] == "messages[0].content[0].image_url.url")
    }

    @Test func midStreamErrorAndTruncationEndWithAnErrorEvent() async throws {
        let failing = await chat(#"{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"[sim words=6 stream_error_after=2]"}]}"#)
        #expect(failing.status == 200)
        #expect(failing.text.contains(#"data: {"error""#))
        #expect(failing.text.contains("An internal error has occurred"))
        #expect(failing.text.hasSuffix("data: [DONE]\n\n"))
        let cut = await chat(#"{"model":"gemini-2.5-flash","stream":true,"messages":[{"role":"user","content":"[sim words=20 disconnect_after=2 chunk_delay_ms=20]"}]}"#)
        #expect(cut.text.contains(#"data: {"error""#))
        #expect(try auditRow(for: cut).errorCode != nil)
    }

    @Test func invalidProviderKeyIs401() async throws {
        try store.setProvider(projectID: projectID, provider: .google, apiKey: Secret("sk-invalid"),
                              baseURL: "http://127.0.0.1:\(simulatorPort)/google")
        let writer = await chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#)
        #expect(writer.status == 401)
        #expect(writer.json?["error"]?["type"] == "authentication_error")
    }

    @Test func embeddingsThroughTheAdapter() async throws {
        let adapter = GoogleAdapter()
        let settings = ProviderSettings(projectID: 1, provider: .google, apiKey: Secret("AIza-sim-google-key"),
                                        baseURL: "http://127.0.0.1:\(simulatorPort)/google", updatedAt: Date())
        let request = try EmbeddingsRequest.parse(Array(#"{"model":"text-embedding-004","input":["hello world","bonjour"],"dimensions":4}"#.utf8))
        let upstreamRequest = try adapter.makeEmbeddingsRequest(request, settings: settings)
        let response = try await upstream.send(upstreamRequest)
        #expect(response.status == 200)
        let body = try await upstream.readBody(response) { try await $0.collect(limit: 1 << 20) }
        let result = try adapter.decodeEmbeddingsResponse(body, for: request)
        let json = try JSON.parse(result.body)
        #expect(json["object"] == "list")
        #expect(json["data"]?.arrayValue?.count == 2)
        #expect(json["data"]?[1]?["embedding"]?.arrayValue?.count == 4)
        #expect(result.usage == nil)
    }
}
