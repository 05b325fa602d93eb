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

/// OpenAI-shaped requests through the whole pipeline to the simulated Mistral API (which is
/// as strict as Mistral about ids, roles and unknown fields), and the OpenAI simulation's
/// `tool=` / `stream_error_after=` directives.
@Suite("Mistral round trip", .serialized)
final class MistralRoundTripTests: TestPipeline {
    init() async throws {
        try await super.init(providers: [(.mistral, "sk-sim-mistral-key"), (.openai, "sk-sim-openai-key")])
    }

    @Test func nonStreamedAnswerIsTranslatedAndAudited() async throws {
        let writer = await chat(#"{"model":"mistral-small-latest","user":"alice","seed":3,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"one two [sim words=4]"}]}"#)
        #expect(writer.status == 200, "\(writer.text)")
        #expect(writer.headers["X-AI-Provider"] == "mistral")
        let json = try #require(writer.json)
        #expect(json["object"] == "chat.completion")
        #expect(json["model"] == "mistral-small-latest")
        #expect(json["choices"]?[0]?["message"]?["content"] == "The quick brown fox")
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
        #expect(json["usage"]?["prompt_tokens"] == 14)  // (2 words + 4) + (4 words incl. the directive + 4)
        #expect(json["usage"]?["total_tokens"] == 18)
        let row = try auditRow(for: writer)
        #expect(row.promptTokens == 14)
        #expect(row.completionTokens == 4)
    }

    @Test func maxTokensTruncatesWithLength() async throws {
        let writer = await chat(#"{"model":"mistral-small-latest","max_tokens":3,"messages":[{"role":"user","content":"go [sim words=9]"}]}"#)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "length")
        #expect(writer.json?["usage"]?["completion_tokens"] == 3)
    }

    @Test func streamCarriesUsageOnlyWhenAsked() async throws {
        let plain = await chat(#"{"model":"mistral-small-latest","stream":true,"messages":[{"role":"user","content":"hi [sim words=3]"}]}"#)
        #expect(plain.status == 200)
        #expect(plain.text.hasSuffix("data: [DONE]\n\n"))
        #expect(!plain.text.contains("prompt_tokens"))
        let chunks = streamEvents(plain)
        #expect(chunks.first?["choices"]?[0]?["delta"]?["role"] == "assistant")
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1)
        let text = chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined()
        #expect(text == "The quick brown")
        #expect(chunks.last?["choices"]?[0]?["finish_reason"] == "stop")
        let row = try auditRow(for: plain)
        #expect(row.promptTokens == 7)
        #expect(row.completionTokens == 3)

        let asked = await chat(#"{"model":"mistral-small-latest","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi [sim words=2]"}]}"#)
        let last = try #require(streamEvents(asked).last)
        #expect(last["choices"] == [])
        #expect(last["usage"]?["prompt_tokens"] == 7)
        #expect(last["usage"]?["completion_tokens"] == 2)
    }

    @Test func toolCallRoundTrip() async throws {
        let tools = #""tools":[{"type":"function","function":{"name":"get_weather","parameters":{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}}],"tool_choice":"required""#
        let first = await chat(#"{"model":"mistral-large-latest",\#(tools),"messages":[{"role":"user","content":"Weather in Paris? [sim tool=get_weather]"}]}"#)
        #expect(first.status == 200, "\(first.text)")
        let message = try #require(first.json?["choices"]?[0]?["message"])
        #expect(message["content"] == .null)
        #expect(first.json?["choices"]?[0]?["finish_reason"] == "tool_calls")
        let call = try #require(message["tool_calls"]?[0])
        #expect(call["function"]?["name"] == "get_weather")
        #expect(call["function"]?["arguments"] == #"{"city":"Paris"}"#)
        let id = try #require(call["id"]?.stringValue)

        // The client sends the call back with its result (and an id of its own for an older call).
        let second = await chat(#"""
        {"model":"mistral-large-latest",\#(tools),"messages":[
          {"role":"user","content":"Weather in Paris? [sim tool=get_weather]"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"\#(id)","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
                                                          {"id":"call_from_openai_123","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]},
          {"role":"tool","tool_call_id":"\#(id)","content":"18C sunny"},
          {"role":"tool","tool_call_id":"call_from_openai_123","content":"2C snow"}]}
        """#)
        #expect(second.status == 200, "\(second.text)")
        #expect(second.json?["choices"]?[0]?["finish_reason"] == "stop")
        #expect(second.json?["choices"]?[0]?["message"]?["content"]?.stringValue?.isEmpty == false)
    }

    @Test func streamedToolCall() async throws {
        let writer = await chat(#"{"model":"mistral-large-latest","stream":true,"tools":[{"type":"function","function":{"name":"get_weather"}}],"messages":[{"role":"user","content":"[sim tool=get_weather]"}]}"#)
        let chunks = streamEvents(writer)
        let start = try #require(chunks.first { $0["choices"]?[0]?["delta"]?["tool_calls"] != nil })
        let call = try #require(start["choices"]?[0]?["delta"]?["tool_calls"]?[0])
        #expect(call["index"] == 0)
        #expect(call["function"]?["name"] == "get_weather")
        #expect(call["function"]?["arguments"] == #"{"city":"Paris"}"#)
        #expect(call["id"]?.stringValue?.count == 9)
        #expect(chunks.last?["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func prefillAndUnsupportedParameters() async throws {
        let prefill = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"Count [sim words=2]"},{"role":"assistant","content":"One,"}]}"#)
        #expect(prefill.status == 200, "\(prefill.text)")
        let rejected = await chat(#"{"model":"mistral-small-latest","logit_bias":{"12":5},"messages":[{"role":"user","content":"x"}]}"#)
        #expect(rejected.status == 400)
        #expect(rejected.json?["error"]?["param"] == "logit_bias")
    }

    @Test func providerErrorsAndMidStreamErrors() async throws {
        let limited = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"[sim status=429 retry_after=4]"}]}"#)
        #expect(limited.status == 429)
        #expect(limited.headers["Retry-After"] == "4")
        #expect(limited.json?["error"]?["message"]?.stringValue?.contains("rate limit") == true)
        let server = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"[sim status=500]"}]}"#)
        #expect(server.status == 502)
        let validation = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"[sim status=422]"}]}"#)
        #expect(validation.status == 422)
        let broken = await chat(#"{"model":"mistral-small-latest","stream":true,"messages":[{"role":"user","content":"[sim words=6 stream_error_after=2]"}]}"#)
        #expect(broken.status == 200)
        let chunks = streamEvents(broken)
        #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "The quick ")
        #expect(chunks.last?["error"]?["message"]?.stringValue?.hasPrefix("mistral:") == true)
        #expect(broken.text.hasSuffix("data: [DONE]\n\n"))
        let malformed = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"[sim malformed=1]"}]}"#)
        #expect(malformed.status == 502)
    }

    @Test func invalidProviderKeyIs401WithoutTheKey() async throws {
        try store.setProvider(projectID: projectID, provider: .mistral, apiKey: Secret("sk-invalid"),
                              baseURL: "http://127.0.0.1:\(simulatorPort)/mistral")
        let writer = await chat(#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"x"}]}"#)
        #expect(writer.status == 401)
        #expect(writer.json?["error"]?["message"] == "mistral: Unauthorized")
    }

    @Test func embeddingsThroughTheAdapter() async throws {
        let adapter = MistralAdapter()
        let settings = ProviderSettings(projectID: 1, provider: .mistral, apiKey: Secret("sk-sim-mistral-key"),
                                        baseURL: "http://127.0.0.1:\(simulatorPort)/mistral", updatedAt: Date())
        let request = try EmbeddingsRequest.parse(Array(#"{"model":"mistral-embed","input":["one two","three"],"user":"alice"}"#.utf8))
        let response = try await upstream.send(adapter.makeEmbeddingsRequest(request, settings: settings))
        let body = try await upstream.readBody(response) { try await $0.collect(limit: 1 << 20) }
        #expect(response.status == 200, "\(String(decoding: body, as: UTF8.self))")
        let result = try adapter.decodeEmbeddingsResponse(body, for: request)
        let json = try JSON.parse(result.body)
        #expect(json["data"]?.arrayValue?.count == 2)
        #expect(json["data"]?[1]?["index"] == 1)
        #expect(result.usage?.promptTokens == 3)
    }

    @Test func simulatorIsStrictAboutToolCallIDsAndRoles() async throws {
        func post(_ body: String) async throws -> (Int, JSON?) {
            let request = UpstreamRequest(url: "http://127.0.0.1:\(simulatorPort)/mistral/v1/chat/completions",
                                          headers: [(name: "Authorization", value: "Bearer k"), (name: "Content-Type", value: "application/json")],
                                          body: Array(body.utf8))
            let response = try await upstream.send(request)
            let bytes = try await upstream.readBody(response) { try await $0.collect(limit: 1 << 20) }
            return (response.status, try? JSON.parse(bytes))
        }
        let badID = try await post(#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"r"}]}"#)
        #expect(badID.0 == 400)
        #expect(badID.1?["message"]?.stringValue?.contains("length of 9") == true)
        let extra = try await post(#"{"model":"m","user":"a","messages":[{"role":"user","content":"x"}]}"#)
        #expect(extra.0 == 422)
        #expect(extra.1?["message"]?["detail"]?[0]?["type"] == "extra_forbidden")
        let trailing = try await post(#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}"#)
        #expect(trailing.0 == 400)
    }

    @Test func openAISimulationToolDirective() async throws {
        let writer = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim tool=get_weather]"}]}"#)
        #expect(writer.json?["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(writer.json?["choices"]?[0]?["message"]?["content"] == .null)
        #expect(writer.json?["choices"]?[0]?["message"]?["tool_calls"]?[0]?["function"]?["arguments"] == #"{"city":"Paris"}"#)

        let stream = await chat(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[sim tool=get_weather]"}]}"#)
        let deltas = streamEvents(stream).compactMap { $0["choices"]?[0]?["delta"]?["tool_calls"]?[0] }
        #expect(deltas.first?["id"] != nil)
        #expect(deltas.first?["function"]?["name"] == "get_weather")
        #expect(deltas.compactMap { $0["function"]?["arguments"]?.stringValue }.joined() == #"{"city":"Paris"}"#)
        #expect(deltas.count >= 3)
        #expect(deltas.dropFirst().allSatisfy { $0["id"] == nil })

        let answered = await chat(#"{"model":"gpt-4o","messages":[{"role":"user","content":"[sim tool=get_weather words=2]"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}]}"#)
        #expect(answered.json?["choices"]?[0]?["message"]?["content"] == "The quick")
    }

    @Test func openAISimulationStreamErrorDirective() async throws {
        let writer = await chat(#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"[sim words=5 stream_error_after=3]"}]}"#)
        #expect(writer.status == 200)
        let chunks = streamEvents(writer)
        #expect(chunks.compactMap { $0["choices"]?[0]?["delta"]?["content"]?.stringValue }.joined() == "The quick brown ")
        #expect(chunks.last?["error"] != nil)
        #expect(writer.text.hasSuffix("data: [DONE]\n\n"))
        #expect(try auditRow(for: writer).errorCode != nil)
    }
}
