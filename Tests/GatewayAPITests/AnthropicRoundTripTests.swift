import Foundation
import GatewayAPI
import GatewayCore
import GatewayHTTP
import GatewayStore
import GatewayTesting
import GatewayUpstream
import Logging
import Testing

/// OpenAI-shaped requests through the whole pipeline to the simulated Anthropic API and back:
/// the adapter's translation must be accepted by the simulator (which refuses what the real API
/// refuses) and its answers must read as OpenAI answers.
@Suite("Anthropic round trip", .serialized)
final class AnthropicRoundTripTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.anthropic, "sk-ant-sim-provider-key")])
    }

    @Test func nonStreamedAnswer() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","user":"alice","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"one two three"}]}"#)
        #expect(writer.status == 200, "\(writer.text)")
        #expect(writer.headers["X-AI-Provider"] == "anthropic")
        let json = try #require(writer.json)
        #expect(json["object"] == "chat.completion")
        #expect(json["id"]?.stringValue?.hasPrefix("msg_sim_") == true)
        #expect(json["model"] == "claude-sonnet-4-5")
        #expect(json["choices"]?[0]?["message"]?["content"] == "The quick brown fox jumps over the lazy")
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
        #expect(json["usage"]?["prompt_tokens"] == 13)  // system (2 + 4) + user (3 + 4)
        #expect(json["usage"]?["total_tokens"] == 21)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 13)
        #expect(row.completionTokens == 8)
    }

    @Test func maxTokensTruncatesWithLength() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "length")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == "The quick brown")
    }

    @Test func streamWithUsage() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi [sim words=3 unicode=1]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        let chunks = streamEvents(writer)
        #expect(chunks.first?["choices"]?[0]?["delta"]?["role"] == "assistant")
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1)
        let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "héllo 日本語 🌍")
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"] == "stop" })
        #expect(chunks.last?["usage"]?["prompt_tokens"] == 8)  // 4 words + 4
        #expect(chunks.last?["usage"]?["completion_tokens"] == 3)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 8)
        #expect(row.completionTokens == 3)
    }

    @Test func toolCallRoundTrip() async throws {
        let tools = #"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#
        let first = await chat(#"{"model":"claude-sonnet-4-5","tools":\#(tools),"messages":[{"role":"user","content":"Weather? [sim tool=get_weather]"}]}"#)
        #expect(first.status == 200, "\(first.text)")
        let call = try #require(first.json?["choices"]?[0]?["message"]?["tool_calls"]?[0])
        #expect(first.json?["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(call["function"]?["name"] == "get_weather")
        #expect(try JSON.parse(call["function"]?["arguments"]?.stringValue ?? "") == ["city": "Paris"])
        let id = try #require(call["id"]?.stringValue)

        let second = await chat(#"""
        {"model":"claude-sonnet-4-5","tools":\#(tools),"messages":[
          {"role":"user","content":"Weather? [sim tool=get_weather]"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
          {"role":"tool","tool_call_id":"\#(id)","content":"sunny"}]}
        """#)
        #expect(second.status == 200, "\(second.text)")
        #expect(second.json?["choices"]?[0]?["finish_reason"] == "stop")
        #expect(second.json?["choices"]?[0]?["message"]?["content"]?.stringValue?.isEmpty == false)
    }

    @Test func streamedToolCall() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"Weather? [sim tool=get_weather]"}]}"#)
        let calls = streamEvents(writer).compactMap { $0["choices"]?[0]?["delta"]?["tool_calls"]?[0] }
        #expect(calls.first?["function"]?["name"] == "get_weather")
        #expect(calls.allSatisfy { $0["index"] == 0 })
        let arguments = calls.compactMap { $0["function"]?["arguments"]?.stringValue }.joined()
        #expect(try JSON.parse(arguments) == ["city": "Paris"])
        #expect(streamEvents(writer).contains { $0["choices"]?[0]?["finish_reason"] == "tool_calls" })
    }

    @Test func jsonModeAnswersWithContent() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","response_format":{"type":"json_object"},"messages":[{"role":"user","content":"JSON please"}]}"#)
        #expect(writer.status == 200, "\(writer.text)")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == #"{"city":"Paris"}"#)
        #expect(writer.json?["choices"]?[0]?["message"]?["tool_calls"] == nil)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "stop")
    }

    @Test func providerErrors() async throws {
        let overloaded = await chat(#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"[sim status=529]"}]}"#)
        #expect(overloaded.status == 502)
        #expect(overloaded.json?["error"]?["type"] == "upstream_error")
        #expect(overloaded.json?["error"]?["message"]?.stringValue?.contains("overloaded_error") == true)
        let limited = await chat(#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"[sim status=429 retry_after=5]"}]}"#)
        #expect(limited.status == 429)
        #expect(limited.headers["Retry-After"] == "5")
        #expect(limited.json?["error"]?["code"] == "rate_limit_error")
        let bad = await chat(#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"[sim status=400]"}]}"#)
        #expect(bad.status == 400)
        #expect(bad.json?["error"]?["message"]?.stringValue?.hasPrefix("anthropic: ") == true)
        let malformed = await chat(#"{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"[sim malformed=1]"}]}"#)
        #expect(malformed.status == 502)
    }

    @Test func midStreamErrorEndsWithAnErrorEvent() async throws {
        let writer = await chat(#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"[sim words=6 stream_error_after=2]"}]}"#)
        #expect(writer.status == 200)
        let chunks = streamEvents(writer)
        #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "The quick ")
        #expect(chunks.last?["error"]?["code"] == "overloaded_error")
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func streamCutBeforeMessageStopIsAnError() async throws {
        // The delay lets the first words reach the client before the cut (a cut before any
        // content is an HTTP 502 instead: nothing was sent, so the request could fall back).
        let writer = await chat(#"{"model":"claude-sonnet-4-5","stream":true,"messages":[{"role":"user","content":"[sim words=20 disconnect_after=2 chunk_delay_ms=20]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.text.contains("data: {\"error\""))
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
    }

    // MARK: The simulator itself, spoken to directly

    func direct(_ body: String, headers: [(name: String, value: String)]) async throws -> (Int, JSON?) {
        let response = try await upstream.send(UpstreamRequest(
            url: "http://127.0.0.1:\(simulatorPort)/anthropic/v1/messages", headers: headers, body: Array(body.utf8)))
        let bytes = try await response.body.collect(limit: 1 << 20)
        return (response.status, try? JSON.parse(bytes))
    }

    @Test func simulatorChecksAuthVersionAndTurnShape() async throws {
        let body = #"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#
        let version = (name: "anthropic-version", value: "2023-06-01")
        let (badKey, badKeyBody) = try await direct(body, headers: [(name: "x-api-key", value: "sk-invalid"), version])
        #expect(badKey == 401)
        #expect(badKeyBody?["error"]?["type"] == "authentication_error")
        #expect(badKeyBody?["type"] == "error")
        let (noVersion, _) = try await direct(body, headers: [(name: "x-api-key", value: "k")])
        #expect(noVersion == 400)
        let (bearer, _) = try await direct(body, headers: [(name: "authorization", value: "Bearer k"), version])
        #expect(bearer == 401)
        let (ok, okBody) = try await direct(body, headers: [(name: "x-api-key", value: "k"), version])
        #expect(ok == 200)
        #expect(okBody?["usage"]?["input_tokens"] == 5)
        let twoUsers = #"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#
        let (alternation, alternationBody) = try await direct(twoUsers, headers: [(name: "x-api-key", value: "k"), version])
        #expect(alternation == 400)
        #expect(alternationBody?["error"]?["type"] == "invalid_request_error")
        let noMax = #"{"model":"claude-x","messages":[{"role":"user","content":"a"}]}"#
        #expect(try await direct(noMax, headers: [(name: "x-api-key", value: "k"), version]).0 == 400)
        let overloaded = #"{"model":"claude-x","max_tokens":10,"messages":[{"role":"user","content":"[sim status=529]"}]}"#
        let (status, overloadedBody) = try await direct(overloaded, headers: [(name: "x-api-key", value: "k"), version])
        #expect(status == 529)
        #expect(overloadedBody?["error"]?["type"] == "overloaded_error")
    }
}
