import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Gemini's tricky cases beyond the fixture table (docs/providers/google.md).
@Suite("Google adapter")
struct GoogleAdapterTests: AdapterSuite {
    let adapter = GoogleAdapter()
    let settings = Fixture.settings(.google)

    func decodeError(_ body: String, request: String = #"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#) throws -> GatewayError? {
        let chat = try chat(request)
        let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(Array(body.utf8), for: chat) }
        guard case .failure(let error) = result else { return nil }
        return error
    }

    @Test func keyOnlyInHeaderAndModelResourceNameAccepted() throws {
        let request = try adapter.makeChatRequest(chat(#"{"model":"models/tuned-model_x.1","messages":[{"role":"user","content":"x"}],"stream":true}"#),
                                                  settings: settings)
        #expect(request.url == "http://127.0.0.1:9000/google/v1beta/models/tuned-model_x.1:streamGenerateContent?alt=sse")
        #expect(!request.url.contains("key="))
        #expect(request.headers.first { $0.name == "x-goog-api-key" }?.value == "test-key-google-abcd1234")
        #expect(!request.headers.contains { $0.name.lowercased() == "authorization" })
    }

    @Test func toolResultsFollowedByUserTextMergeIntoOneUserTurnAndNamesResolve() throws {
        let body = try upstreamBody(#"""
        {"model":"gemini-2.5-flash","messages":[
          {"role":"user","content":"a"},
          {"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"[1,2]"},
          {"role":"user","content":"b"}]}
        """#)
        let contents = try #require(body["contents"]?.arrayValue)
        #expect(contents.count == 3)
        #expect(contents[1]["role"] == "model")
        #expect(contents[1]["parts"]?.arrayValue?.count == 1)  // empty text dropped
        #expect(contents[2]["parts"]?[0]?["functionResponse"] == ["name": "f", "response": ["output": [1, 2]]])
        #expect(contents[2]["parts"]?[1]?["text"] == "b")
    }

    @Test func orphanedToolResultIs400NamingIt() throws {
        let error = try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"},{"role":"tool","tool_call_id":"nope","content":"x"}]}"#)
        #expect(error?.status == 400)
        #expect(error?.param == "messages[1].tool_call_id")
    }

    @Test func unsupportedParametersAre400NamingThem() throws {
        #expect(try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"logit_bias":{"50256":-100}}"#)?.param == "logit_bias")
        #expect(try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"logprobs":true}"#)?.param == "logprobs")
        #expect(try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"n":2,"stream":true}"#)?.param == "n")
        #expect(try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"tool_choice":"required"}"#)?.param == "tool_choice")
        #expect(try requestError(#"{"model":"g","messages":[{"role":"system","content":"only"}]}"#)?.param == "messages")
        let image = try requestError(#"{"model":"g","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://x.test/a.png"}}]}]}"#)
        #expect(image?.param == "messages[0].content[1].image_url.url")
        // Dropped silently: user, parallel_tool_calls, logprobs=false, empty logit_bias.
        #expect(try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"user":"u","parallel_tool_calls":true,"logprobs":false,"logit_bias":{}}"#) == nil)
    }

    @Test func namedToolChoiceMustExist() throws {
        let error = try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}"#)
        #expect(error?.param == "tool_choice")
        let none = try upstreamBody(#"{"model":"g","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}"#)
        #expect(none["toolConfig"] == ["functionCallingConfig": ["mode": "NONE"]])
    }

    @Test func invalidToolArgumentsAre400() throws {
        let error = try requestError(#"{"model":"g","messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}"#)
        #expect(error?.param == "messages[1].tool_calls[0].function.arguments")
    }

    @Test func safetyStopWithoutPartsIsContentNullContentFilter() throws {
        let chat = try chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#)
        let result = try adapter.decodeChatResponse(Array(#"{"candidates":[{"finishReason":"RECITATION","index":0}],"responseId":"r"}"#.utf8), for: chat)
        let json = try JSON.parse(result.body)
        #expect(json["choices"]?[0]?["message"]?["content"] == .null)
        #expect(json["choices"]?[0]?["finish_reason"] == "content_filter")
        #expect(json["model"] == "gemini-2.5-flash")
        #expect(result.usage == nil)
    }

    @Test func thoughtPartsAreDroppedAndEmptyResponseIsStop() throws {
        let chat = try chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#)
        let thought = try adapter.decodeChatResponse(Array(#"{"candidates":[{"content":{"parts":[{"text":"hmm","thought":true},{"text":"Yes"}]},"finishReason":"STOP"}]}"#.utf8), for: chat)
        #expect(try JSON.parse(thought.body)["choices"]?[0]?["message"]?["content"] == "Yes")
        let empty = try adapter.decodeChatResponse(Array("{}".utf8), for: chat)
        let json = try JSON.parse(empty.body)
        #expect(json["choices"]?.arrayValue?.count == 1)
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
    }

    @Test(arguments: [
        #"{"candidates":"x"}"#, #"{"candidates":[1]}"#, #"{"candidates":[{"content":{"parts":[{"text":5}]}}]}"#,
        #"{"candidates":[{"content":{"parts":[{"functionCall":{"args":{}}}]}}]}"#,
        #"{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":"x"}}]}}]}"#,
        #"{"candidates":[{"finishReason":3}]}"#, #"{"usageMetadata":{"promptTokenCount":"many"}}"#, "[1]", "", "{\"a\":",
    ])
    func malformedOutputIs502(_ body: String) throws {
        #expect(try decodeError(body)?.status == 502)
    }

    @Test func invalidUTF8IsNotACrash() throws {
        let chat = try chat(#"{"model":"gemini-2.5-flash","messages":[{"role":"user","content":"x"}]}"#)
        var bytes = Array(#"{"candidates":[{"content":{"parts":[{"text":"a"#.utf8)
        bytes += [0xFF, 0xFE]
        bytes += Array(#""}]}}]}"#.utf8)
        let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(bytes, for: chat) }
        if case .failure(let error) = result { #expect(error.status == 502) }
    }

    @Test func errorBodiesWithoutJSONAndQuotaExhaustion() {
        let html = adapter.decodeError(status: 404, headers: [], body: Array("<html>Not Found</html>".utf8), settings: settings)
        #expect(html.status == 404)
        let daily = adapter.decodeError(status: 429, headers: [], body: Array(#"""
        {"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"34.4s"}]}}
        """#.utf8), settings: settings)
        #expect(daily.status == 429)
        #expect(daily.type == "insufficient_quota")
        #expect(daily.retryAfter == 35)
        #expect(daily.failureClass == .rateLimit)
        let context = adapter.decodeError(status: 400, headers: [], body: Array(#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#.utf8), settings: settings)
        #expect(context.code == "context_length_exceeded")
    }

    @Test func streamWithoutFinishReasonFailsAndUnknownJunkIsSkipped() throws {
        let request = try chat(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#)
        var relay = StreamRelay(providerName: "google", translator: adapter.makeStreamTranslator(for: request))
        var output = relay.feed(Array(": comment\r\n\r\ndata: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]},\"index\":0}]}\r\n\r\n".utf8))
        output += relay.finish()
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.contains(#""content":"a""#))
        #expect(text.contains(#"data: {"error""#))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
        #expect(relay.modelServed == "m")
    }

    @Test func blockedPromptWithEmptyCandidatesInAStream() throws {
        let request = try chat(#"{"model":"m","messages":[{"role":"user","content":"x"}],"stream":true}"#)
        var relay = StreamRelay(providerName: "google", translator: adapter.makeStreamTranslator(for: request))
        var output = relay.feed(Array("data: {\"candidates\":[],\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n".utf8))
        output += relay.finish()
        let text = String(decoding: output, as: UTF8.self)
        #expect(text.contains(#""finish_reason":"content_filter""#))
        #expect(!text.contains(#"data: {"error""#))
        #expect(text.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func embeddingsRejectTokenInputAndCountMismatch() throws {
        let tokens = try EmbeddingsRequest.parse(Array(#"{"model":"text-embedding-004","input":[[1,2,3]]}"#.utf8))
        let result = Result { () throws(GatewayError) -> UpstreamRequest in try adapter.makeEmbeddingsRequest(tokens, settings: settings) }
        if case .failure(let error) = result { #expect(error.param == "input") } else { Issue.record("expected a 400") }
        let two = try EmbeddingsRequest.parse(Array(#"{"model":"models/text-embedding-004","input":["a","b"]}"#.utf8))
        let upstream = try adapter.makeEmbeddingsRequest(two, settings: settings)
        #expect(upstream.url == "http://127.0.0.1:9000/google/v1beta/models/text-embedding-004:batchEmbedContents")
        let decoded = Result { () throws(GatewayError) -> EmbeddingsResult in
            try adapter.decodeEmbeddingsResponse(Array(#"{"embeddings":[{"values":[1]}]}"#.utf8), for: two)
        }
        if case .failure(let error) = decoded { #expect(error.status == 502) } else { Issue.record("expected a 502") }
    }
}
