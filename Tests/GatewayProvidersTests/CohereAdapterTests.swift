import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Cohere's tricky cases beyond the fixture table (docs/providers/cohere.md).
@Suite("Cohere adapter")
struct CohereAdapterTests: AdapterSuite {
    let adapter = CohereAdapter()
    let settings = ProviderSettings(projectID: 1, provider: .cohere, apiKey: Secret("test-key-cohere-abcd1234"),
                                    baseURL: "http://127.0.0.1:9000/cohere/", updatedAt: Date(timeIntervalSince1970: 0))

    /// The error a throwing call produced, nil if it succeeded.
    func failure<T>(_ work: () throws(GatewayError) -> T) -> GatewayError? {
        switch Result(catching: work) {
        case .success: return nil
        case .failure(let error): return error
        }
    }

    // MARK: Requests

    @Test func keyOnlyInTheAuthorizationHeader() throws {
        let request = try adapter.makeChatRequest(chat(#"{"model":"command-r","messages":[{"role":"user","content":"hi"}]}"#), settings: settings)
        #expect(request.url == "http://127.0.0.1:9000/cohere/v2/chat")
        #expect(request.headers.first { $0.name == "Authorization" }?.value == "Bearer test-key-cohere-abcd1234")
        #expect(!request.url.contains("test-key"))
    }

    @Test(arguments: [
        (#""n":2"#, "n"), (#""logprobs":true"#, "logprobs"), (#""top_logprobs":2"#, "top_logprobs"),
        (#""stop":["a","b","c","d","e","f"]"#, "stop"), (#""tool_choice":"required""#, "tool_choice"),
        (#""tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":{"type":"function","function":{"name":"b"}}"#, "tool_choice"),
    ])
    func unsupportedOrInvalidParametersAre400NamingThem(_ extra: String, _ param: String) throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"hi"}],\#(extra)}"#)
        let error = failure { () throws(GatewayError) in try adapter.makeChatRequest(request, settings: settings) }
        #expect(error?.status == 400)
        #expect(error?.param == param)
    }

    @Test func harmlessParametersAreDropped() throws {
        let body = try upstreamBody(#"{"model":"command-r","messages":[{"role":"user","content":"hi"}],"n":1,"logprobs":false,"user":"u","logit_bias":{"1":2},"parallel_tool_calls":false,"stop":["1","2","3","4","5"],"response_format":{"type":"text"}}"#)
        #expect(body == ["model": "command-r", "messages": [["role": "user", "content": "hi"]], "stop_sequences": ["1", "2", "3", "4", "5"]])
    }

    @Test func trailingAssistantPrefillIs400() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure,"}]}"#)
        let error = failure { () throws(GatewayError) in try adapter.makeChatRequest(request, settings: settings) }
        #expect(error?.status == 400)
        #expect(error?.param == "messages[1]")
    }

    @Test func onlySystemMessagesIs400() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"system","content":"Be nice."}]}"#)
        #expect(failure { () throws(GatewayError) in try adapter.makeChatRequest(request, settings: settings) }?.param == "messages")
    }

    @Test func nonImageDataURLIs400() throws {
        let request = try chat(#"{"model":"command-a-vision","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:application/pdf;base64,JVBERi0="}}]}]}"#)
        let error = failure { () throws(GatewayError) in try adapter.makeChatRequest(request, settings: settings) }
        #expect(error?.status == 400)
        #expect(error?.param == "messages[0].content")
    }

    @Test func systemMessagesAreMergedFirstAndBlankOnesSkipped() throws {
        let body = try upstreamBody(#"{"model":"command-r","messages":[{"role":"user","content":"a"},{"role":"system","content":"One."},{"role":"system","content":"  "},{"role":"assistant","content":"b"},{"role":"developer","content":"Two."},{"role":"user","content":"c"}]}"#)
        #expect(body["messages"] == [
            ["role": "system", "content": "One.\n\nTwo."], ["role": "user", "content": "a"],
            ["role": "assistant", "content": "b"], ["role": "user", "content": "c"],
        ])
    }

    @Test func emptyToolArgumentsBecomeAnEmptyObject() throws {
        let body = try upstreamBody(#"{"model":"command-r","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"","tool_calls":[{"id":"c1","type":"function","function":{"name":"now","arguments":""}}]},{"role":"tool","tool_call_id":"c1","content":"noon"}]}"#)
        #expect(body["messages"]?[1] == ["role": "assistant", "tool_calls": [["id": "c1", "type": "function", "function": ["name": "now", "arguments": "{}"]]]])
        #expect(body["messages"]?[2] == ["role": "tool", "tool_call_id": "c1", "content": "noon"])
    }

    @Test func toolChoiceNoneWithoutToolsIsOmitted() throws {
        let body = try upstreamBody(#"{"model":"command-r","messages":[{"role":"user","content":"a"}],"tool_choice":"none"}"#)
        #expect(body["tool_choice"] == nil)
        #expect(body["tools"] == nil)
    }

    // MARK: Responses

    @Test func timeoutWithTextIsAStopAndErrorWithToolCallsIsToolCalls() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"a"}]}"#)
        let timeout = try adapter.decodeChatResponse(Array(#"{"id":"r1","finish_reason":"TIMEOUT","message":{"content":[{"type":"text","text":"partial"}]}}"#.utf8), for: request)
        let json = try JSON.parse(timeout.body)
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
        #expect(json["choices"]?[0]?["message"]?["content"] == "partial")
        #expect(json["usage"] == .null)
        #expect(timeout.usage == nil)
        #expect(timeout.modelServed == "command-r")
        let error = try adapter.decodeChatResponse(Array(#"{"id":"r2","finish_reason":"ERROR","message":{"tool_calls":[{"id":"t","type":"function","function":{"name":"f","arguments":"{}"}}]}}"#.utf8), for: request)
        #expect(try JSON.parse(error.body)["choices"]?[0]?["finish_reason"] == "tool_calls")
    }

    @Test func emptyAnswerIsAValidCompletionWithNullContent() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"a"}]}"#)
        let result = try adapter.decodeChatResponse(Array(#"{"finish_reason":"COMPLETE","message":{"role":"assistant","content":[]}}"#.utf8), for: request)
        let json = try JSON.parse(result.body)
        #expect(json["id"] == "chatcmpl-test")
        #expect(json["created"] == 1_767_225_600)
        #expect(json["choices"]?[0]?["message"]?["content"] == .null)
        #expect(json["choices"]?[0]?["finish_reason"] == "stop")
    }

    @Test(arguments: [
        "", "[]", "{\"id\":", "{\"id\":\"x\"}", #"{"message":"oops"}"#, #"{"message":{"content":7}}"#,
        #"{"message":{"content":[3]}}"#, #"{"message":{"tool_calls":{}}}"#, #"{"message":{"tool_calls":[{"function":{}}]}}"#,
        #"{"message":{"tool_calls":[{"function":{"name":"f","arguments":[1]}}]}}"#, #"{"message":{},"finish_reason":3}"#,
    ])
    func malformedOutputIs502(_ raw: String) throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"a"}]}"#)
        let error = failure { () throws(GatewayError) in try adapter.decodeChatResponse(Array(raw.utf8), for: request) }
        #expect(error?.status == 502)
    }

    @Test func invalidUTF8Is502() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"a"}]}"#)
        let bytes: [UInt8] = Array(#"{"message":{"content":[{"type":"text","text":""#.utf8) + [0xFF, 0xFE] + Array(#""}]}}"#.utf8)
        let error = failure { () throws(GatewayError) in try adapter.decodeChatResponse(bytes, for: request) }
        #expect(error?.status == 502)
    }

    @Test func usagePrefersBilledUnitsThenTokens() throws {
        let request = try chat(#"{"model":"command-r","messages":[{"role":"user","content":"a"}]}"#)
        func usage(_ json: String) throws -> TokenUsage? {
            try adapter.decodeChatResponse(Array(#"{"message":{"content":"x"},"usage":\#(json)}"#.utf8), for: request).usage
        }
        #expect(try usage(#"{"billed_units":{"input_tokens":5,"output_tokens":2},"tokens":{"input_tokens":70,"output_tokens":2},"cached_tokens":60}"#)
            == TokenUsage(promptTokens: 5, completionTokens: 2))
        #expect(try usage(#"{"tokens":{"input_tokens":70,"output_tokens":2},"cached_tokens":60}"#)
            == TokenUsage(promptTokens: 70, completionTokens: 2, cachedPromptTokens: 60))
        #expect(try usage(#"{"billed_units":{"input_tokens":5}}"#) == TokenUsage(promptTokens: 5, completionTokens: 0))
        #expect(try usage(#"{}"#) == nil)
    }

    // MARK: Errors

    @Test func errorStatusesMapToOpenAIShapes() {
        func decode(_ status: Int, _ body: String, _ headers: [(name: String, value: String)] = []) -> GatewayError {
            adapter.decodeError(status: status, headers: headers, body: Array(body.utf8), settings: settings)
        }
        #expect(decode(402, #"{"message":"Please add a payment method"}"#).status == 402)
        #expect(decode(402, #"{"message":"x"}"#).type == "insufficient_quota")
        let notFound = decode(404, #"{"message":"model 'command-x' not found, make sure the correct model ID was used"}"#)
        #expect(notFound.code == "model_not_found")
        #expect(decode(499, #"{"message":"request cancelled"}"#).status == 499)
        #expect(decode(422, "").message == "cohere: HTTP 422")
        #expect(decode(503, "", [(name: "Retry-After", value: "4")]).retryAfter == 4)
        #expect(decode(503, "").status == 502)
        let echoed = decode(401, #"{"message":"invalid api token sk-live-1234567890abcdef"}"#)
        #expect(!echoed.message.contains("1234567890abcdef"))
        #expect(echoed.failureClass == .credentials)
    }

    // MARK: Streams

    func stream(_ request: ChatRequest, _ events: [SSEEvent]) -> (outputs: [StreamOutput], error: GatewayError?, translator: any StreamTranslator) {
        var translator = adapter.makeStreamTranslator(for: request)
        var outputs: [StreamOutput] = []
        for event in events {
            switch Result(catching: { () throws(GatewayError) -> [StreamOutput] in try translator.translate(event) }) {
            case .success(let produced): outputs += produced
            case .failure(let error): return (outputs, error, translator)
            }
        }
        switch Result(catching: { () throws(GatewayError) -> [StreamOutput] in try translator.finish() }) {
        case .success(let produced): outputs += produced
        case .failure(let error): return (outputs, error, translator)
        }
        return (outputs, nil, translator)
    }

    @Test func doneBeforeMessageEndIsAnError() throws {
        let request = try chat(#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"a"}]}"#)
        let result = stream(request, [
            SSEEvent(event: "message-start", data: #"{"type":"message-start","id":"m1"}"#),
            SSEEvent(data: "[DONE]"),
        ])
        #expect(result.error?.status == 502)
        #expect(!result.outputs.contains(.done))
    }

    @Test func exactlyOneDoneAndLaterEventsIgnored() throws {
        let request = try chat(#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"a"}]}"#)
        let result = stream(request, [
            SSEEvent(data: #"{"type":"content-delta","delta":{"message":{"content":{"text":"hi"}}}}"#),
            SSEEvent(event: "message-end", data: #"{"type":"message-end","delta":{"finish_reason":"MAX_TOKENS","usage":{"billed_units":{"input_tokens":3,"output_tokens":1}}}}"#),
            SSEEvent(event: "content-delta", data: #"{"type":"content-delta","delta":{"message":{"content":{"text":"late"}}}}"#),
            SSEEvent(data: "[DONE]"),
        ])
        #expect(result.error == nil)
        #expect(result.outputs.filter { $0 == .done }.count == 1)
        #expect(result.outputs.last == .done)
        let texts = result.outputs.compactMap { output -> String? in
            if case .data(let bytes) = output { return String(decoding: bytes, as: UTF8.self) } else { return nil }
        }
        // No message-start: the gateway id names the stream; role chunk first.
        #expect(texts.first?.contains(#""id":"chatcmpl-test""#) == true)
        #expect(texts.first?.contains(#""role":"assistant""#) == true)
        #expect(texts.contains { $0.contains(#""finish_reason":"length""#) })
        #expect(!texts.contains { $0.contains("late") })
        #expect(result.translator.usage == TokenUsage(promptTokens: 3, completionTokens: 1))
        #expect(result.translator.modelServed == "command-r")
    }

    @Test(arguments: [
        SSEEvent(event: "content-delta", data: #"{"type":"content-delta","delta":{"message":{"content":{"text":"#),
        SSEEvent(event: "content-delta", data: #"{"type":"content-delta","delta":{"message":{"content":{"text":5}}}}"#),
        SSEEvent(event: "tool-call-delta", data: #"{"type":"tool-call-delta","delta":{"message":{"tool_calls":{"function":{"arguments":"{"}}}}}"#),
        SSEEvent(event: "tool-call-start", data: #"{"type":"tool-call-start","delta":{"message":{"tool_calls":{"id":"x"}}}}"#),
        SSEEvent(event: "message-end", data: #"{"type":"message-end","delta":{"finish_reason":"TIMEOUT"}}"#),
        SSEEvent(event: "message-end", data: "[1,2]"),
    ])
    func brokenOrFailedStreamsEndWithAnError(_ event: SSEEvent) throws {
        let request = try chat(#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"a"}]}"#)
        let result = stream(request, [event])
        #expect(result.error?.status == 502)
    }

    @Test func unknownAndThinkingEventsAreSkipped() throws {
        let request = try chat(#"{"model":"command-r","stream":true,"messages":[{"role":"user","content":"a"}]}"#)
        let result = stream(request, [
            SSEEvent(event: "message-start", data: #"{"type":"message-start","id":"m1"}"#),
            SSEEvent(event: "content-delta", data: #"{"type":"content-delta","delta":{"message":{"content":{"thinking":"hmm"}}}}"#),
            SSEEvent(event: "something-new", data: #"{"type":"something-new"}"#),
            SSEEvent(event: "message-end", data: #"{"type":"message-end","delta":{"finish_reason":"COMPLETE"}}"#),
        ])
        #expect(result.error == nil)
        // role, finish, done
        #expect(result.outputs.count == 3)
        #expect(result.translator.usage == nil)
    }

    // MARK: Embeddings

    @Test func embeddingsTokenInputIs400AndCountMismatchIs502() throws {
        let tokens = try EmbeddingsRequest.parse(Array(#"{"model":"embed-v4.0","input":[[1,2,3]]}"#.utf8))
        #expect(failure { () throws(GatewayError) in try adapter.makeEmbeddingsRequest(tokens, settings: settings) }?.status == 400)
        let request = try EmbeddingsRequest.parse(Array(#"{"model":"embed-v4.0","input":["a","b"]}"#.utf8))
        let error = failure { () throws(GatewayError) in
            try adapter.decodeEmbeddingsResponse(Array(#"{"embeddings":{"float":[[0.1]]}}"#.utf8), for: request)
        }
        #expect(error?.status == 502)
        #expect(failure { () throws(GatewayError) in
            try adapter.decodeEmbeddingsResponse(Array(#"{"embeddings":{"float":[["x"],[1]]}}"#.utf8), for: request)
        }?.status == 502)
    }

    @Test func embeddingsBase64() throws {
        let request = try EmbeddingsRequest.parse(Array(#"{"model":"embed-v4.0","input":"a","encoding_format":"base64"}"#.utf8))
        let result = try adapter.decodeEmbeddingsResponse(Array(#"{"embeddings":{"float":[[1.0]]},"meta":{"billed_units":{"input_tokens":1}}}"#.utf8), for: request)
        let json = try JSON.parse(result.body)
        #expect(json["data"]?[0]?["embedding"] == "AACAPw==")
        #expect(result.usage == TokenUsage(promptTokens: 1, completionTokens: 0))
    }
}
