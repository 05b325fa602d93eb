import Foundation
import GatewayCore
@testable import GatewayProviders
import Testing

/// Mistral's tricky cases beyond the fixture table (docs/providers/mistral.md).
@Suite("Mistral adapter")
struct MistralAdapterTests: AdapterSuite {
    let adapter = MistralAdapter()
    let settings = ProviderSettings(projectID: 1, provider: .mistral, apiKey: Secret("test-key-mistral-abcd1234"),
                                    baseURL: "http://127.0.0.1:9000/mistral", updatedAt: Date(timeIntervalSince1970: 0))

    func decode(_ json: String, request: String = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"x"}]}"#) throws -> Result<ChatResult, GatewayError> {
        let request = try chat(request)
        return Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(Array(json.utf8), for: request) }
    }

    @Test func toolCallIDsAreNineAlphanumericsConsistentAndDistinct() throws {
        let body = try upstreamBody(#"""
        {"model":"mistral-large-latest","messages":[
          {"role":"user","content":"go"},
          {"role":"assistant","tool_calls":[
            {"id":"toolu_01A09q90qw90lq917835lq9","type":"function","function":{"name":"a","arguments":"{}"}},
            {"id":"call_x","type":"function","function":{"name":"b","arguments":"{}"}},
            {"id":"abcDEF123","type":"function","function":{"name":"c","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"call_x","content":"2"},
          {"role":"tool","tool_call_id":"toolu_01A09q90qw90lq917835lq9","content":"1"},
          {"role":"tool","tool_call_id":"abcDEF123","content":"3"}]}
        """#)
        let calls = try #require(body["messages"]?[1]?["tool_calls"]?.arrayValue)
        let ids = calls.compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 3)
        #expect(Set(ids).count == 3)
        #expect(ids.allSatisfy(MistralToolCallIDs.isCompliant))
        #expect(ids[2] == "abcDEF123")
        #expect(body["messages"]?[2]?["tool_call_id"]?.stringValue == ids[1])
        #expect(body["messages"]?[3]?["tool_call_id"]?.stringValue == ids[0])
        #expect(body["messages"]?[4]?["tool_call_id"]?.stringValue == ids[2])
        #expect(body["messages"]?[2]?["name"] == "b")
        // Deterministic: the same history maps to the same ids on the next turn.
        #expect(MistralToolCallIDs.hash("call_x", salt: 0) == ids[1])
    }

    @Test func orphanedCallsAndResultsAreDroppedTogether() throws {
        let body = try upstreamBody(#"""
        {"model":"mistral-small-latest","messages":[
          {"role":"user","content":"go"},
          {"role":"assistant","content":"","tool_calls":[{"id":"call_lost","type":"function","function":{"name":"a","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"call_unknown","content":"orphan"},
          {"role":"user","content":"again"}]}
        """#)
        let messages = try #require(body["messages"]?.arrayValue)
        #expect(messages.map { $0["role"]?.stringValue ?? "" } == ["user", "user"])
    }

    @Test func userAfterToolGetsABridgingAssistantTurn() throws {
        let body = try upstreamBody(#"""
        {"model":"mistral-small-latest","messages":[
          {"role":"user","content":"go"},
          {"role":"assistant","tool_calls":[{"id":"abcDEF123","type":"function","function":{"name":"a","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"abcDEF123","content":"done"},
          {"role":"user","content":"thanks"}]}
        """#)
        let roles = try #require(body["messages"]?.arrayValue).map { $0["role"]?.stringValue ?? "" }
        #expect(roles == ["user", "assistant", "tool", "assistant", "user"])
        #expect(body["messages"]?[1]?["content"] == nil, "a tool-call-only turn sends no empty content")
    }

    @Test func toolChoiceMapping() throws {
        let base = #"{"model":"mistral-small-latest","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"#
        #expect(try upstreamBody(base + #""required"}"#)["tool_choice"] == "any")
        #expect(try upstreamBody(base + #""none"}"#)["tool_choice"] == "none")
        #expect(try upstreamBody(base + #""auto"}"#)["tool_choice"] == "auto")
        #expect(try upstreamBody(base + #"{"type":"function","function":{"name":"f"}}}"#)["tool_choice"]
                == ["type": "function", "function": ["name": "f"]])
        #expect(try upstreamBody(base + #""auto"}"#)["tools"]?[0]?["function"]?["parameters"] == ["type": "object", "properties": [:]])
    }

    @Test func jsonSchemaResponseFormatAndForwardedExtensions() throws {
        let body = try upstreamBody(#"""
        {"model":"mistral-small-latest","messages":[{"role":"user","content":"x"}],"safe_prompt":true,"store":true,"metadata":{"a":"b"},
         "response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object"},"strict":true}}}
        """#)
        #expect(body["response_format"] == ["type": "json_schema", "json_schema": ["name": "answer", "schema": ["type": "object"], "strict": true]])
        #expect(body["safe_prompt"] == true)
        #expect(body["store"] == nil)
        #expect(body["metadata"] == nil)
    }

    @Test(arguments: ["logit_bias", "logprobs", "top_logprobs", "web_search_options"])
    func unsupportedParametersAre400NamingThem(_ name: String) throws {
        let value = name == "logprobs" ? "true" : name == "top_logprobs" ? "2" : #"{"1":2}"#
        let error = try #require(try requestError(#"{"model":"m","messages":[{"role":"user","content":"x"}],"\#(name)":\#(value)}"#))
        #expect(error.status == 400)
        #expect(error.param == name)
    }

    @Test func harmlessValuesOfUnsupportedParametersPass() throws {
        #expect(try requestError(#"{"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":false,"modalities":["text"]}"#) == nil)
    }

    @Test func streamedNGreaterThanOneIs400ButNonStreamedIsForwarded() throws {
        #expect(try requestError(#"{"model":"m","stream":true,"n":2,"messages":[{"role":"user","content":"x"}]}"#)?.param == "n")
        #expect(try upstreamBody(#"{"model":"m","n":2,"messages":[{"role":"user","content":"x"}]}"#)["n"] == 2)
    }

    @Test func onlySystemMessagesIs400() throws {
        #expect(try requestError(#"{"model":"m","messages":[{"role":"system","content":"x"}]}"#)?.param == "messages")
    }

    @Test func thinkingChunksAndObjectArgumentsAreNormalised() throws {
        let result = try decode(#"""
        {"id":"r1","object":"chat.completion","created":5,"model":"magistral-medium-2506",
         "choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"thinking","thinking":[{"type":"text","text":"hmm"}]},{"type":"text","text":"Answer."}],
           "tool_calls":[{"id":"abcDEF123","function":{"name":"f","arguments":{"city":"Paris"}}}]},"finish_reason":"stop"}],
         "usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}
        """#).get()
        let body = try JSON.parse(result.body)
        #expect(body["choices"]?[0]?["message"]?["content"] == "Answer.")
        #expect(body["choices"]?[0]?["message"]?["tool_calls"]?[0]?["function"]?["arguments"] == #"{"city":"Paris"}"#)
        #expect(body["choices"]?[0]?["finish_reason"] == "tool_calls")
        #expect(body["created"] == 5)
        #expect(result.usage?.totalTokens == 7)
    }

    @Test func errorFinishWithoutOutputIs502AndEmptyAnswerIsValid() throws {
        let failed = try decode(#"{"id":"r","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"error"}]}"#)
        guard case .failure(let error) = failed else { Issue.record("expected a 502"); return }
        #expect(error.status == 502)
        let empty = try decode(#"{"id":"r","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":0,"total_tokens":1}}"#).get()
        let body = try JSON.parse(empty.body)
        #expect(body["choices"]?[0]?["message"]?["content"] == .null)
        #expect(body["model"] == "mistral-small-latest")
        #expect(body["id"] == "r")
    }

    @Test(arguments: [
        #"{"id":"r","choices":"nope"}"#, #"{"choices":[{"message":{"content":42}}]}"#,
        #"{"choices":[{"message":{"tool_calls":[{"id":"x"}]}}]}"#, "[1,2]", "", #"{"object":"error","message":"boom"}"#,
    ])
    func malformedAnswersAre502(_ json: String) throws {
        guard case .failure(let error) = try decode(json) else { Issue.record("expected a 502"); return }
        #expect(error.status == 502)
    }

    @Test func errorBodiesInEveryShape() {
        func decode(_ status: Int, _ body: String, headers: [(name: String, value: String)] = []) -> GatewayError {
            adapter.decodeError(status: status, headers: headers, body: Array(body.utf8), settings: settings)
        }
        #expect(decode(401, #"{"detail":"Unauthorized"}"#).message == "mistral: Unauthorized")
        #expect(decode(401, #"{"detail":"Unauthorized"}"#).failureClass == .credentials)
        let validation = decode(422, #"{"detail":[{"type":"missing","loc":["body","model"],"msg":"Field required","input":null}]}"#)
        #expect(validation.message == "mistral: model: Field required")
        #expect(validation.param == "model")
        #expect(validation.status == 422)
        let leaked = decode(400, #"{"object":"error","message":"bad key test-key-mistral-abcd1234","type":"invalid_request_error","param":null,"code":null}"#)
        #expect(!leaked.message.contains("test-key-mistral-abcd1234"))
        let limited = decode(429, #"{"message":"Requests rate limit exceeded"}"#, headers: [(name: "Retry-After", value: "12")])
        #expect(limited.retryAfter == 12)
        #expect(limited.failureClass == .rateLimit)
        #expect(decode(503, "upstream connect error").status == 502)
        let quota = decode(429, #"{"object":"error","message":"You have exceeded your monthly limit","type":"rate_limited","param":null,"code":"1310"}"#)
        #expect(quota.type == "insufficient_quota")
        #expect(quota.code == "1310")
        #expect(decode(400, #"{"object":"error","message":"x","type":"t","param":null,"code":3230}"#).code == "3230")
    }

    @Test func streamWithoutUsageRequestStillMetersAndMapsModelLength() throws {
        var translator = adapter.makeStreamTranslator(for: try chat(#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#))
        var output: [StreamOutput] = []
        for data in [
            #"{"id":"s","object":"chat.completion.chunk","created":9,"model":"mm","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}"#,
            #"{"id":"s","object":"chat.completion.chunk","created":9,"model":"mm","choices":[{"index":0,"delta":{"content":""},"finish_reason":"model_length"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#,
            "[DONE]",
        ] {
            output += try translator.translate(SSEEvent(event: nil, data: data))
        }
        let payloads = output.compactMap { item -> String? in if case .data(let bytes) = item { return String(decoding: bytes, as: UTF8.self) } else { return nil } }
        #expect(payloads.count == 3)  // role, "Hi", finish
        #expect(payloads.last?.contains(#""finish_reason":"length""#) == true)
        #expect(!payloads.joined().contains("prompt_tokens"))
        #expect(output.last == .done)
        #expect(translator.usage?.promptTokens == 5)
        #expect(translator.modelServed == "mm")
    }

    @Test func fragmentedToolCallDeltasArePassedOnAsArgumentFragments() throws {
        var translator = adapter.makeStreamTranslator(for: try chat(#"{"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]}"#))
        var output: [StreamOutput] = []
        for data in [
            #"{"id":"s","created":9,"model":"mm","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"abcDEF123","function":{"name":"f","arguments":"{\"a\""}}]},"finish_reason":null}]}"#,
            #"{"id":"s","created":9,"model":"mm","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ] {
            output += try translator.translate(SSEEvent(event: nil, data: data))
        }
        let text = output.compactMap { item -> String? in if case .data(let bytes) = item { return String(decoding: bytes, as: UTF8.self) } else { return nil } }.joined(separator: "\n")
        #expect(text.contains(#""arguments":":1}""#))
        #expect(text.contains(#""finish_reason":"tool_calls""#))
    }

    @Test func embeddingsRejectTokenInputAndMapDimensions() throws {
        let tokens = try EmbeddingsRequest.parse(Array(#"{"model":"mistral-embed","input":[[1,2,3]]}"#.utf8))
        let result = Result { () throws(GatewayError) -> UpstreamRequest in try adapter.makeEmbeddingsRequest(tokens, settings: settings) }
        guard case .failure(let error) = result else { Issue.record("expected a 400"); return }
        #expect(error.param == "input")
        let sized = try EmbeddingsRequest.parse(Array(#"{"model":"codestral-embed","input":"hi","dimensions":256}"#.utf8))
        let body = try JSON.parse(adapter.makeEmbeddingsRequest(sized, settings: settings).body)
        #expect(body == ["model": "codestral-embed", "input": "hi", "output_dimension": 256])
    }

    @Test func theKeyIsOnlyInTheAuthorizationHeader() throws {
        let request = try adapter.makeChatRequest(chat(#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#), settings: settings)
        #expect(request.url == "http://127.0.0.1:9000/mistral/v1/chat/completions")
        #expect(request.headers.first { $0.name == "Authorization" }?.value == "Bearer test-key-mistral-abcd1234")
    }
}
