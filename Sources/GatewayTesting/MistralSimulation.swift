import Foundation
import NIOCore
import NIOHTTP1

/// The simulated Mistral API (docs/providers/mistral.md) at `/mistral`: `/v1/chat/completions`,
/// `/v1/embeddings`, `/v1/models`. Strict the way Mistral is, so adapter mistakes show up:
/// unknown body fields are a 422 (`extra_forbidden`), tool-call ids must be 9 alphanumerics,
/// `user` may not follow `tool`, the last message must be user/tool or an assistant prefix.
struct MistralSimulation: SimulatedProvider {
    let mountPoints = ["/mistral"]

    /// The body fields Mistral's chat endpoint accepts (docs/providers/mistral.md, "Request translation").
    static let chatFields: Set<String> = [
        "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
        "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n", "prediction",
        "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key", "safe_prompt",
    ]
    static let embeddingFields: Set<String> = ["model", "input", "output_dimension", "output_dtype", "encoding_format"]

    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse {
        enum Route { case chat, embeddings, models, model(String) }
        let route: Route
        switch (request.method, path) {
        case (.POST, "/v1/chat/completions"): route = .chat
        case (.POST, "/v1/embeddings"): route = .embeddings
        case (.GET, "/v1/models"): route = .models
        case (.GET, _) where path.hasPrefix("/v1/models/"): route = .model(String(path.dropFirst("/v1/models/".count)))
        case (_, "/v1/chat/completions"), (_, "/v1/embeddings"), (_, "/v1/models"):
            return .json(.methodNotAllowed, ["detail": "Method Not Allowed"])
        default:
            return .json(.notFound, ["detail": "Not Found"])
        }

        // Mistral checks the bearer key before the body.
        guard let key = request.bearerToken, !key.isEmpty else {
            return .json(.unauthorized, Self.unauthorized("No API key found in request", context))
        }
        guard !Self.rejectedKeys.contains(key) else {
            return .json(.unauthorized, Self.unauthorized("Unauthorized", context))
        }

        switch route {
        case .chat: return chat(request, &script, context)
        case .embeddings: return embeddings(request, &script, context)
        case .models: return Self.scripted(script, context) ?? .json(.ok, Self.modelList())
        case .model(let id):
            if let failure = Self.scripted(script, context) { return failure }
            guard let model = Self.models.first(where: { $0.id == id }) else {
                return .json(.notFound, Self.error("Invalid model: \(id)", type: "invalid_model", code: "1500"))
            }
            return .json(.ok, Self.model(model))
        }
    }

    // MARK: Chat

    private func chat(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return .json(.badRequest, Self.error("Invalid JSON body", type: "invalid_request_error", code: nil))
        }
        let messages = body["messages"] as? [[String: Any]] ?? []
        let texts = messages.map(OpenAISimulation.texts(of:))
        for text in texts.joined() { script.scan(text) }

        if let invalid = Self.validateChat(body, messages: messages) { return invalid }
        if let failure = Self.scripted(script, context) { return failure }
        let model = body["model"] as? String ?? ""  // `validateChat` made sure it is a non-empty string.

        let number = context.stats.nextCompletionNumber()
        let id = Self.hex32(UInt64(truncatingIfNeeded: number) &* 0x9E37_79B9_7F4A_7C15)
        let (words, truncated) = SimulatedReply.words(for: script, limit: SimulatorJSON.int(body["max_tokens"]))
        let toolCall = OpenAISimulation.scriptedToolCall(script, messages: messages, id: Self.toolCallID(number))
        let promptTokens = SimulatedReply.promptTokens(texts)
        let completionTokens = toolCall == nil ? words.count : OpenAIWireFormat.toolCallCompletionTokens
        let usage: [String: Any] = [
            "prompt_tokens": promptTokens, "completion_tokens": completionTokens, "total_tokens": promptTokens + completionTokens,
        ]
        let finishReason = toolCall != nil ? "tool_calls" : truncated ? "length" : "stop"
        let created = context.now

        var response: SimulatedResponse
        if SimulatorJSON.bool(body["stream"]) ?? false {
            func chunk(_ delta: [String: Any], _ finish: String? = nil, usage: [String: Any]? = nil) -> [UInt8] {
                var object: [String: Any] = [
                    "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [["index": 0, "delta": delta, "finish_reason": finish ?? NSNull()] as [String: Any]],
                ]
                if let usage { object["usage"] = usage }
                return OpenAIWireFormat.event(object)
            }
            var events = [chunk(["role": "assistant", "content": ""])]
            if script.malformed {
                events.append(OpenAIWireFormat.event(raw: #"{"id":"\#(id)","choices":[{"delta":{"content":"x"#))
                events.append(SimulatedSSE.done)
            } else if let toolCall {
                // Mistral streams a tool call whole, with the finish reason and usage on the same chunk.
                events.append(chunk(["content": "", "tool_calls": [Self.toolCall(toolCall)]], "tool_calls", usage: usage))
                events.append(SimulatedSSE.done)
            } else if let errorAfter = script.streamErrorAfter {
                events += SimulatedReply.streamPieces(words).prefix(errorAfter).map { chunk(["content": $0]) }
                events.append(OpenAIWireFormat.event(Self.error(
                    OpenAIWireFormat.simulatedStreamErrorMessage, type: "internal_server_error", code: "1000")))
            } else {
                events += SimulatedReply.streamPieces(words).map { chunk(["content": $0]) }
                events.append(chunk(["content": ""], finishReason, usage: usage))
                events.append(SimulatedSSE.done)
            }
            response = .eventStream(events)
            if let k = script.disconnectAfter { response.interruption = .afterEvents(1 + min(k, words.count)) }
        } else if script.malformed {
            response = .rawJSON(#"{"id":"\#(id)","object":"chat.completion","choices":[{"message":"#)
        } else {
            let message: [String: Any] = toolCall.map { ["role": "assistant", "content": "", "tool_calls": [Self.toolCall($0)]] }
                ?? ["role": "assistant", "content": words.joined(separator: " "), "tool_calls": NSNull()]
            response = .json(.ok, [
                "id": id, "object": "chat.completion", "created": created, "model": model, "usage": usage,
                "choices": [["index": 0, "message": message, "finish_reason": finishReason] as [String: Any]],
            ] as [String: Any])
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        response.headers.add(name: "mistral-correlation-id", value: id)
        response.headers.add(name: "x-ratelimit-limit-req-minute", value: "600")
        response.headers.add(name: "x-ratelimit-remaining-req-minute", value: "599")
        return response
    }

    /// 32 lowercase hex digits, the shape of Mistral's ids.
    static func hex32(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 32 - digits.count)) + digits
    }

    /// A 9-character alphanumeric tool-call id, as Mistral issues them: `sim` + 6 digits.
    static func toolCallID(_ number: Int) -> String {
        let digits = String(abs(number) % 1_000_000)
        return "sim" + String(repeating: "0", count: 6 - digits.count) + digits
    }

    static func toolCall(_ call: OpenAIWireFormat.ToolCall) -> [String: Any] {
        ["id": call.id, "type": "function", "function": ["name": call.name, "arguments": call.arguments], "index": 0]
    }

    /// Mistral's own checks, in the order the API applies them; nil when the body is acceptable.
    static func validateChat(_ body: [String: Any], messages: [[String: Any]]) -> SimulatedResponse? {
        for key in body.keys.sorted() where !chatFields.contains(key) {
            return validation([(["body", key], "extra_forbidden", "Extra inputs are not permitted", body[key] ?? NSNull())])
        }
        guard let model = body["model"] as? String, !model.isEmpty else {
            return validation([(["body", "model"], "missing", "Field required", NSNull())])
        }
        guard let raw = body["messages"] as? [Any], !raw.isEmpty, raw.count == messages.count else {
            return validation([(["body", "messages"], "missing", "Field required", NSNull())])
        }
        var previousRole: String?
        for (index, message) in messages.enumerated() {
            let role = message["role"] as? String ?? ""
            guard ["system", "user", "assistant", "tool"].contains(role) else {
                return validation([(["body", "messages", index, "role"], "literal_error", "Input should be 'system', 'user', 'assistant' or 'tool'", role)])
            }
            if message["name"] != nil && role != "tool" {
                return validation([(["body", "messages", index, role, "name"], "extra_forbidden", "Extra inputs are not permitted", message["name"] ?? NSNull())])
            }
            if role == "user" && previousRole == "tool" {
                return .json(.badRequest, error("Unexpected role 'user' after role 'tool'", type: "invalid_request_message_order", code: "3230"))
            }
            var ids: [String] = []
            if role == "assistant" {
                let calls = message["tool_calls"] as? [[String: Any]] ?? []
                let content = message["content"]
                let hasContent = (content as? String).map { !$0.isEmpty } ?? ((content as? [Any])?.isEmpty == false)
                if !hasContent && calls.isEmpty {
                    return .json(.badRequest, error("Assistant message must have either content or tool_calls, but not none.",
                                                    type: "invalid_request_message", code: "3240"))
                }
                ids = calls.map { $0["id"] as? String ?? "" }
            } else if role == "tool" {
                ids = [message["tool_call_id"] as? String ?? ""]
            }
            for id in ids where !isValidToolCallID(id) {
                return .json(.badRequest, error("Tool call id was \(id) but must be a-z, A-Z, 0-9, with a length of 9.",
                                                type: "invalid_function_call", code: "3280"))
            }
            previousRole = role
        }
        if let last = messages.last, let role = last["role"] as? String, role != "user", role != "tool",
           !(role == "assistant" && SimulatorJSON.bool(last["prefix"]) == true) {
            return .json(.badRequest, error("Expected last role User or Tool (or Assistant with prefix True) for serving but got \(role)",
                                            type: "invalid_request_message_order", code: "3230"))
        }
        if let choice = body["tool_choice"], !(choice is [String: Any]),
           !["auto", "none", "any", "required"].contains(choice as? String ?? "") {
            return validation([(["body", "tool_choice"], "enum", "Input should be 'auto', 'none', 'any' or 'required'", choice)])
        }
        return nil
    }

    static func isValidToolCallID(_ id: String) -> Bool {
        id.utf8.count == 9 && id.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    // MARK: Embeddings

    private func embeddings(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return .json(.badRequest, Self.error("Invalid JSON body", type: "invalid_request_error", code: nil))
        }
        var inputs: [String]?
        if let text = body["input"] as? String { inputs = [text] }
        else if let items = body["input"] as? [Any], !items.isEmpty, items.allSatisfy({ $0 is String }) { inputs = items.compactMap { $0 as? String } }
        for input in inputs ?? [] { script.scan(input) }
        for key in body.keys.sorted() where !Self.embeddingFields.contains(key) {
            return Self.validation([(["body", key], "extra_forbidden", "Extra inputs are not permitted", body[key] ?? NSNull())])
        }
        guard let model = body["model"] as? String, !model.isEmpty else {
            return Self.validation([(["body", "model"], "missing", "Field required", NSNull())])
        }
        guard let inputs else {
            return Self.validation([(["body", "input"], "string_type", "Input should be a valid string", body["input"] ?? NSNull())])
        }
        if let failure = Self.scripted(script, context) { return failure }
        let tokens = SimulatedReply.wordCount(inputs)
        var response = SimulatedResponse.json(.ok, [
            "id": "embd-sim\(context.stats.nextCompletionNumber())", "object": "list", "model": model,
            "data": inputs.enumerated().map { index, text -> [String: Any] in
                ["object": "embedding", "embedding": SimulatedReply.embeddingVector(for: text), "index": index]
            },
            "usage": ["prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0],
        ] as [String: Any])
        if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        return response
    }

    // MARK: Models

    static let models: [(id: String, created: Int, vision: Bool)] = [
        ("mistral-large-latest", 1_731_456_000, false),
        ("mistral-small-latest", 1_741_651_200, true),
        ("pixtral-large-latest", 1_731_456_000, true),
        ("mistral-embed", 1_702_425_600, false),
    ]

    static func model(_ model: (id: String, created: Int, vision: Bool)) -> [String: Any] {
        let chat = model.id != "mistral-embed"
        return [
            "id": model.id, "object": "model", "created": model.created, "owned_by": "mistralai", "type": "base",
            "max_context_length": chat ? 131_072 : 8_192, "aliases": [String](), "deprecation": NSNull(),
            "capabilities": ["completion_chat": chat, "function_calling": chat, "vision": model.vision, "completion_fim": false,
                             "fine_tuning": false, "classification": false],
        ]
    }

    static func modelList() -> [String: Any] { ["object": "list", "data": models.map(model)] }

    // MARK: Errors

    /// `{"object":"error","message","type","param":null,"code"}` (docs/providers/mistral.md, "Errors").
    static func error(_ message: Any, type: String, code: String?) -> [String: Any] {
        ["object": "error", "message": message, "type": type, "param": NSNull(), "code": code ?? NSNull()]
    }

    static func unauthorized(_ message: String, _ context: SimulationContext) -> [String: Any] {
        ["message": message, "request_id": hex32(UInt64(truncatingIfNeeded: context.now))]
    }

    /// A 422 with FastAPI validation details wrapped as Mistral sends them.
    static func validation(_ details: [(loc: [Any], type: String, msg: String, input: Any)]) -> SimulatedResponse {
        let detail = details.map { ["type": $0.type, "loc": $0.loc, "msg": $0.msg, "input": $0.input] as [String: Any] }
        return .json(HTTPResponseStatus(statusCode: 422), error(["detail": detail], type: "invalid_request_error", code: nil))
    }

    /// Mistral's error body for a `status=CODE` directive.
    static func scripted(_ script: SimulatorScript, _ context: SimulationContext) -> SimulatedResponse? {
        guard let status = script.failureStatus else { return nil }
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        let message = SimulatedReply.scriptedErrorMessage(status: status)
        let body: [String: Any]
        switch status {
        case 401: body = unauthorized("Unauthorized (simulated HTTP 401 \(reason))", context)
        case 422: return validation([(["body"], "value_error", message, NSNull())])
        case 429: body = error("Requests rate limit exceeded (simulated HTTP 429 \(reason))", type: "rate_limited", code: "1300")
        case 403: body = error(message, type: "tier_not_allowed", code: "1910")
        case 404: body = error("Invalid model (simulated HTTP 404 \(reason))", type: "invalid_model", code: "1500")
        case 500...: body = error(message, type: "internal_server_error", code: "1000")
        default: body = error(message, type: "invalid_request_error", code: nil)
        }
        var response = SimulatedResponse.json(HTTPResponseStatus(statusCode: status), body)
        if status >= 400 { response.headers.add(name: "mistral-correlation-id", value: "sim-error-\(status)") }
        return response
    }
}
