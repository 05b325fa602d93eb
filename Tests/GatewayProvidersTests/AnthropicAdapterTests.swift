import Foundation
import GatewayCore
import GatewayProviders
import Testing

/// Anthropic's tricky cases beyond the shared fixture table (docs/providers/anthropic.md).
@Suite("Anthropic adapter")
struct AnthropicAdapterTests: AdapterSuite {
    let adapter = AnthropicAdapter()
    let settings = ProviderSettings(projectID: 1, provider: .anthropic, apiKey: Secret("sk-ant-secret-key-123456"),
                                    baseURL: "http://127.0.0.1:9000/anthropic", updatedAt: Date(timeIntervalSince1970: 0))

    func responseError(_ body: [UInt8], request: String = #"{"model":"claude-x","messages":[{"role":"user","content":"x"}]}"#) throws -> GatewayError? {
        let chat = try chat(request)
        let result = Result { () throws(GatewayError) -> ChatResult in try adapter.decodeChatResponse(body, for: chat) }
        guard case .failure(let error) = result else { return nil }
        return error
    }

    func stream(_ request: String, _ sse: String) throws -> (String, StreamRelay) {
        var relay = StreamRelay(providerName: "anthropic", translator: adapter.makeStreamTranslator(for: try chat(request)))
        var output = relay.feed(Array(sse.utf8))
        output += relay.finish()
        return (String(decoding: output, as: UTF8.self), relay)
    }

    // MARK: Requests

    @Test func headersCarryKeyAndVersionAndNeverTheURL() throws {
        let request = try adapter.makeChatRequest(chat(#"{"model":"claude-x","messages":[{"role":"user","content":"hi"}]}"#), settings: settings)
        #expect(request.url == "http://127.0.0.1:9000/anthropic/v1/messages")
        #expect(request.headers.contains { $0.name == "x-api-key" && $0.value == "sk-ant-secret-key-123456" })
        #expect(request.headers.contains { $0.name == "anthropic-version" && $0.value == "2023-06-01" })
        #expect(!request.headers.contains { $0.name.lowercased() == "authorization" })
    }

    @Test func orphanedToolCallsAndResultsAreDroppedTogether() throws {
        let body = try upstreamBody(#"""
        {"model":"claude-x","tools":[{"type":"function","function":{"name":"f"}}],"messages":[
          {"role":"tool","tool_call_id":"call_lost","content":"orphan result"},
          {"role":"user","content":"hi"},
          {"role":"assistant","content":"Calling.","tool_calls":[
            {"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},
            {"id":"call_2","type":"function","function":{"name":"f","arguments":""}}]},
          {"role":"tool","tool_call_id":"call_1","content":"one"},
          {"role":"user","content":"next"}]}
        """#)
        let expected = try JSON.parse(#"""
        [{"role":"user","content":[{"type":"text","text":"hi"}]},
         {"role":"assistant","content":[{"type":"text","text":"Calling."},{"type":"tool_use","id":"call_1","name":"f","input":{}}]},
         {"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":"one"},{"type":"text","text":"next"}]}]
        """#)
        #expect(body["messages"] == expected)
    }

    @Test func historyWithToolBlocksButNoToolsDeclaresThemAndForbidsCalls() throws {
        let body = try upstreamBody(#"""
        {"model":"claude-x","messages":[
          {"role":"user","content":"weather?"},
          {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
          {"role":"tool","tool_call_id":"c1","content":"sunny"}]}
        """#)
        #expect(body["tools"] == (try JSON.parse(#"[{"name":"get_weather","input_schema":{"type":"object","properties":{}}}]"#)))
        #expect(body["tool_choice"] == (try JSON.parse(#"{"type":"none"}"#)))
        #expect(body["messages"]?[1]?["content"]?[0]?["input"] == (try JSON.parse(#"{"city":"Paris"}"#)))
    }

    @Test func toolChoiceNoneKeepsToolsAndNamedChoiceMustExist() throws {
        let none = try upstreamBody(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}"#)
        #expect(none["tool_choice"] == (try JSON.parse(#"{"type":"none"}"#)))
        #expect(none["tools"]?.arrayValue?.count == 1)
        let named = try upstreamBody(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}"#)
        #expect(named["tool_choice"] == (try JSON.parse(#"{"type":"tool","name":"f"}"#)))
        let error = try requestError(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}}"#)
        #expect(error?.status == 400)
        #expect(error?.param == "tool_choice")
    }

    @Test(arguments: [
        (#""n":2"#, "n"), (#""logprobs":true"#, "logprobs"), (#""presence_penalty":0.5"#, "presence_penalty"),
        (#""frequency_penalty":-1"#, "frequency_penalty"), (#""logit_bias":{"50256":-100}"#, "logit_bias"),
        (#""reasoning_effort":"high""#, "reasoning_effort"), (#""modalities":["text","audio"]"#, "modalities"),
    ])
    func unsupportedParametersAre400NamingThem(_ field: String, _ param: String) throws {
        let error = try requestError(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],\#(field)}"#)
        #expect(error?.status == 400)
        #expect(error?.param == param)
        #expect(error?.code == "unsupported_parameter")
    }

    @Test func neutralValuesAreDropped() throws {
        let body = try upstreamBody(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],"n":1,"seed":3,"presence_penalty":0,"logit_bias":{},"user":"bob@example.com"}"#)
        #expect(body == (try JSON.parse(#"{"model":"claude-x","max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"x"}]}]}"#)))
    }

    @Test func imageTypesAnthropicCannotReadAre400NamingThePart() throws {
        let error = try requestError(#"{"model":"claude-x","messages":[{"role":"user","content":[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}"#)
        #expect(error?.status == 400)
        #expect(error?.param == "messages[0].content[1].image_url.url")
        let pdf = try upstreamBody(#"{"model":"claude-x","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:application/pdf;name=a.pdf;base64,JVBERi0="}}]}]}"#)
        #expect(pdf["messages"]?[0]?["content"]?[0] == (try JSON.parse(#"{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0="}}"#)))
    }

    @Test func onlySystemMessagesIs400() throws {
        let error = try requestError(#"{"model":"claude-x","messages":[{"role":"system","content":"be nice"}]}"#)
        #expect(error?.status == 400)
        #expect(error?.param == "messages")
    }

    @Test func jsonObjectWithClientToolsLetsTheModelChoose() throws {
        let body = try upstreamBody(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"response_format":{"type":"json_object"}}"#)
        #expect(body["tools"]?.arrayValue?.count == 2)
        #expect(body["tools"]?[1]?["name"] == "json_tool_call")
        #expect(body["tools"]?[1]?["input_schema"] == (try JSON.parse(#"{"type":"object","additionalProperties":true,"properties":{}}"#)))
        #expect(body["tool_choice"] == (try JSON.parse(#"{"type":"any"}"#)))
    }

    // MARK: Responses

    @Test func malformedProviderOutputIs502NeverACrash() throws {
        let bodies: [[UInt8]] = [
            Array(#"{"id":"m","content":"text"}"#.utf8),
            Array(#"{"id":"m","content":[{"type":"tool_use","name":"f","input":"{}"}]}"#.utf8),
            Array(#"{"id":"m","content":[{"type":"text"}]}"#.utf8),
            Array(#"{"id":"m","content":[42]}"#.utf8),
            Array(#"[1,2]"#.utf8),
            [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D],
            [],
        ]
        for body in bodies {
            let error = try responseError(body)
            #expect(error?.status == 502, "\(body)")
            #expect(error?.type == "upstream_error")
        }
    }

    @Test func toolUseWithoutIDGetsAStableUniqueID() throws {
        let request = try chat(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}]}"#)
        let body = Array(#"{"id":"m","model":"claude-x","content":[{"type":"tool_use","name":"f","input":{}},{"type":"tool_use","name":"g"}],"stop_reason":"tool_use"}"#.utf8)
        let first = try JSON.parse(adapter.decodeChatResponse(body, for: request).body)
        let second = try JSON.parse(adapter.decodeChatResponse(body, for: request).body)
        #expect(first == second)
        let ids = first["choices"]?[0]?["message"]?["tool_calls"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        #expect(ids.count == 2 && Set(ids).count == 2)
        #expect(first["usage"] == .null)
    }

    @Test func refusalWithoutContentIsAValidCompletion() throws {
        let request = try chat(#"{"model":"claude-x","messages":[{"role":"user","content":"x"}]}"#)
        let result = try adapter.decodeChatResponse(Array(#"{"id":"m","type":"message","content":[],"stop_reason":"refusal","usage":{"input_tokens":3,"output_tokens":0}}"#.utf8), for: request)
        let json = try JSON.parse(result.body)
        #expect(json["choices"]?[0]?["message"]?["content"] == .null)
        #expect(json["choices"]?[0]?["finish_reason"] == "content_filter")
        #expect(json["model"] == "claude-x")
        #expect(result.modelServed == nil)
    }

    // MARK: Streams

    @Test func jsonModeStreamsTheForcedToolAsContent() throws {
        let sse = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_j","model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}}

        event: content_block_start
        data: {"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"json_tool_call","input":{}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\\"a\\": "}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"1}"}}

        event: message_delta
        data: {"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}

        event: message_stop
        data: {"type":"message_stop"}

        """
        let (output, relay) = try stream(#"{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}}"#, sse)
        #expect(output.contains(#""delta":{"content":"{\"a\": "}"#))
        #expect(output.contains(#""delta":{"content":"1}"}"#))
        #expect(!output.contains("tool_calls"))
        #expect(output.contains(#""finish_reason":"stop""#))
        #expect(output.hasSuffix("data: [DONE]\n\n"))
        #expect(relay.usage == TokenUsage(promptTokens: 5, completionTokens: 4))
    }

    @Test func malformedStreamEventEndsWithAnErrorEvent() throws {
        let sse = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_b","model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}}

        event: content_block_delta
        data: {"type":"content_block_delta","index":"zero","delta":{"type":"text_delta","text":"x"}}

        """
        let (output, relay) = try stream(#"{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"x"}]}"#, sse)
        #expect(relay.error?.status == 502)
        #expect(output.contains(#"data: {"error":"#))
        #expect(output.hasSuffix("data: [DONE]\n\n"))
    }

    @Test func eventsAfterMessageStopAreIgnoredAndDoneIsSentOnce() throws {
        let sse = """
        event: message_start
        data: {"type":"message_start","message":{"id":"msg_d","model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}}

        event: message_stop
        data: {"type":"message_stop"}

        event: content_block_delta
        data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"late"}}

        """
        let (output, _) = try stream(#"{"model":"claude-x","stream":true,"messages":[{"role":"user","content":"x"}]}"#, sse)
        #expect(!output.contains("late"))
        #expect(output.components(separatedBy: "[DONE]").count == 2)
        #expect(output.contains(#""finish_reason":"stop""#))
    }

    // MARK: Errors

    @Test func errorMessagesNeverCarryTheKey() {
        let body = Array(#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-secret-key-123456"}}"#.utf8)
        let error = adapter.decodeError(status: 401, headers: [], body: body, settings: settings)
        #expect(error.status == 401)
        #expect(!error.message.contains("sk-ant-secret-key-123456"))
        #expect(error.failureClass == .credentials)
    }

    @Test func nonJSONErrorBodiesKeepTheStatus() {
        let error = adapter.decodeError(status: 413, headers: [], body: Array("<html>Request Entity Too Large</html>".utf8), settings: settings)
        #expect(error.status == 413)
        #expect(error.code == "request_too_large")
        #expect(error.message == "anthropic returned HTTP 413.")
        let overloaded = adapter.decodeError(status: 529, headers: [(name: "Retry-After", value: "3")], body: [], settings: settings)
        #expect(overloaded.status == 502)
        #expect(overloaded.retryAfter == 3)
        #expect(overloaded.failureClass == .transient)
    }
}
