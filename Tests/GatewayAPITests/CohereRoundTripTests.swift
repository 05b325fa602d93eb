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

/// OpenAI-shaped requests through the whole pipeline, translated by `CohereAdapter`, answered by
/// the simulated Cohere API on loopback, translated back: what the e2e suite checks through nginx.
@Suite("Cohere round trip", .serialized)
final class CohereRoundTripTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.cohere, "co-sim-provider-key")], defaultHeaders: [("x-ai-provider", "cohere")])
    }

    @Test func plainAnswerWithSystemPromptAndUsage() async throws {
        let writer = await chat(#"{"model":"command-r","user":"alice","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"one two three"},{"role":"developer","content":"Really."}],"top_p":0.5,"stop":["zzz"]}"#)
        #expect(writer.status == 200)
        #expect(writer.headers["X-AI-Provider"] == "cohere")
        let json = try #require(writer.json)
        #expect(json["object"] == "chat.completion")
        #expect(json["model"] == "command-r")
        #expect(json["choices"]?[0]?["message"]?["content"] == "The quick brown fox jumps over the lazy")
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
        // system (2 + 1 words, one merged message) + user (3): (3 + 4) + (3 + 4); billed units, not template tokens.
        #expect(json["usage"]?["prompt_tokens"] == 14)
        #expect(json["usage"]?["completion_tokens"] == 8)
        #expect(json["usage"]?["total_tokens"] == 22)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 14)
        #expect(row.completionTokens == 8)
    }

    @Test func maxTokensTruncatesWithLength() async throws {
        let writer = await chat(#"{"model":"command-r","max_completion_tokens":3,"messages":[{"role":"user","content":"go"}]}"#)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "length")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == "The quick brown")
    }

    @Test func streamWithUsageChunk() async throws {
        let writer = await chat(#"{"model":"command-r","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi [sim words=3 unicode=1]"}]}"#)
        #expect(writer.status == 200)
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        #expect(writer.text.components(separatedBy: "data: [DONE]").count == 2)
        let chunks = streamEvents(writer)
        let ids = Set(chunks.compactMap { $0["id"]?.stringValue })
        #expect(ids.count == 1)
        #expect(chunks.first?["choices"]?[0]?["delta"]?["role"] == "assistant")
        let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "héllo 日本語 🌍")
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"] == "stop" })
        // "hi [sim words=3 unicode=1]": 4 words + 4
        #expect(chunks.last?["usage"]?["prompt_tokens"] == 8)
        #expect(chunks.last?["usage"]?["completion_tokens"] == 3)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 8)
        #expect(row.completionTokens == 3)
    }

    @Test func toolCallRoundTrip() async throws {
        let tools = #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]"#
        let first = await chat(#"{"model":"command-r",\#(tools),"tool_choice":"auto","messages":[{"role":"user","content":"Weather? [sim tool=get_weather]"}]}"#)
        #expect(first.status == 200)
        let message = try #require(first.json?["choices"]?[0]?["message"])
        #expect(first.json?["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(message["content"] == .null)
        let call = try #require(message["tool_calls"]?[0])
        #expect(call["function"]?["name"] == "get_weather")
        #expect(call["function"]?["arguments"] == #"{"city":"Paris"}"#)
        let id = try #require(call["id"]?.stringValue)

        let second = await chat(#"{"model":"command-r",\#(tools),"messages":[{"role":"user","content":"Weather? [sim tool=get_weather]"},{"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"\#(id)","content":"18C sunny"}]}"#)
        #expect(second.status == 200)
        #expect(second.json?["choices"]?[0]?["finish_reason"] == "stop")
        #expect(second.json?["choices"]?[0]?["message"]?["content"]?.stringValue?.isEmpty == false)
    }

    @Test func streamedToolCallArrivesInFragments() async throws {
        let writer = await chat(#"{"model":"command-r","stream":true,"tools":[{"type":"function","function":{"name":"lookup"}}],"tool_choice":{"type":"function","function":{"name":"lookup"}},"messages":[{"role":"user","content":"[sim tool=lookup]"}]}"#)
        let chunks = streamEvents(writer)
        let deltas = chunks.compactMap { $0["choices"]?[0]?["delta"]?["tool_calls"]?[0] }
        #expect(deltas.first?["function"]?["name"] == "lookup")
        #expect(deltas.first?["id"]?.stringValue?.hasPrefix("lookup_") == true)
        #expect(deltas.allSatisfy { $0["index"] == 0 })
        #expect(deltas.compactMap { $0["function"]?["arguments"]?.stringValue }.joined() == #"{"city":"Paris"}"#)
        #expect(chunks.contains { $0["choices"]?[0]?["finish_reason"] == "tool_calls" })
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func errorsAndMidStreamFailure() async throws {
        let limited = await chat(#"{"model":"command-r","messages":[{"role":"user","content":"[sim status=429 retry_after=3]"}]}"#)
        #expect(limited.status == 429)
        #expect(limited.headers["Retry-After"] == "3")
        #expect(limited.json?["error"]?["message"]?.stringValue?.hasPrefix("cohere: You are past") == true)
        let token = await chat(#"{"model":"command-r","messages":[{"role":"user","content":"[sim status=498]"}]}"#)
        #expect(token.status == 401)
        let server = await chat(#"{"model":"command-r","messages":[{"role":"user","content":"[sim status=503]"}]}"#)
        #expect(server.status == 502)
        let tooMany = await chat(#"{"model":"command-r","n":2,"messages":[{"role":"user","content":"x"}]}"#)
        #expect(tooMany.status == 400)
        #expect(tooMany.json?["error"]?["param"] == "n")
        let broken = await chat(#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"[sim words=6 stream_error_after=2]"}]}"#)
        #expect(broken.status == 200)
        #expect(broken.text.contains(#"data: {"error""#))
        #expect(broken.text.hasSuffix("data: [DONE]\n\n"))
        #expect(streamEvents(broken).compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "The quick ")
        let malformed = await chat(#"{"model":"command-r","messages":[{"role":"user","content":"[sim malformed=1]"}]}"#)
        #expect(malformed.status == 502)
    }

    @Test func badProviderKeyIs401() async throws {
        let project = try #require(try store.project(slug: "acme/web"))
        try store.setProvider(projectID: project.id, provider: .cohere, apiKey: Secret("sk-invalid"), baseURL: "http://127.0.0.1:\(simulatorPort)/cohere")
        defer { try? store.setProvider(projectID: project.id, provider: .cohere, apiKey: Secret("co-sim-provider-key"), baseURL: "http://127.0.0.1:\(simulatorPort)/cohere") }
        let writer = await chat(#"{"model":"command-r","messages":[{"role":"user","content":"x"}]}"#)
        #expect(writer.status == 401)
        #expect(writer.json?["error"]?["type"] == "authentication_error")
    }

    @Test func embeddingsThroughTheAdapter() async throws {
        let adapter = CohereAdapter()
        let settings = ProviderSettings(projectID: 1, provider: .cohere, apiKey: Secret("co-sim-provider-key"),
                                        baseURL: "http://127.0.0.1:\(simulatorPort)/cohere", updatedAt: Date())
        let request = try EmbeddingsRequest.parse(Array(#"{"model":"embed-english-v3.0","input":["hello world","three little words"],"dimensions":4}"#.utf8))
        let response = try await upstream.send(adapter.makeEmbeddingsRequest(request, settings: settings))
        #expect(response.status == 200)
        let body = try await response.body.collect(limit: 1 << 20)
        let result = try adapter.decodeEmbeddingsResponse(body, for: request)
        let json = try JSON.parse(result.body)
        #expect(json["object"] == "list")
        #expect(json["data"]?[1]?["embedding"]?.arrayValue?.count == 4)
        #expect(json["usage"]?["prompt_tokens"] == 5)
        #expect(result.usage?.promptTokens == 5)
    }
}
