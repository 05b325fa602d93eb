import GatewayCore

/// Cohere v2 non-streamed answers, usage, finish reasons and error bodies → OpenAI shapes.
enum CohereResponse {
    /// `{"id", "finish_reason", "message": {"content": [...], "tool_calls": [...], "tool_plan"}, "usage"}`.
    /// Cohere reports neither `model` nor `created`: the requested model and the gateway clock stand in.
    static func decode(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        let object = try ProviderBody.object(body, provider: .cohere)
        guard case .object(let message)? = object["message"] else {
            throw .upstreamError("cohere returned a response without 'message'.")
        }
        let id = object["id"]?.stringValue.nonEmpty ?? request.responseID
        let text = try contentText(message["content"])
        let calls = try toolCalls(message["tool_calls"], responseID: id)
        let rawReason = object["finish_reason"]?.stringValue
        if let value = object["finish_reason"], value != .null, rawReason == nil {
            throw .upstreamError("cohere returned a 'finish_reason' that is not a string.")
        }
        let usage = CohereUsage.decode(object["usage"])
        let reason: FinishReason
        switch rawReason {
        case "ERROR"?, "TIMEOUT"?:
            // A failed generation with nothing to show is an error, not an empty success (docs/providers/cohere.md, "Responses").
            if text.isEmpty && calls.isEmpty {
                throw .upstreamError("cohere: the generation ended with \(rawReason ?? "ERROR") and produced no output.")
            }
            reason = .stop
        default:
            reason = finishReason(rawReason)
        }
        let choice = CompletionChoice(content: text.isEmpty ? nil : text, toolCalls: calls, finishReason: reason)
        let result = ChatCompletionBody.make(id: id, created: request.created, model: request.model, choices: [choice], usage: usage)
        return ChatResult(body: result, usage: usage, modelServed: request.model)
    }

    /// docs/providers/cohere.md, "Responses"; unknown values read as `stop`.
    static func finishReason(_ value: String?) -> FinishReason {
        switch value {
        case "MAX_TOKENS"?: return .length
        case "TOOL_CALL"?: return .toolCalls
        default: return .stop
        }
    }

    /// The `text` blocks joined; `thinking` blocks (reasoning models) are not part of the answer.
    static func contentText(_ value: JSON?) throws(GatewayError) -> String {
        switch value {
        case nil, .null?: return ""
        case .string(let text)?: return text
        case .array(let blocks)?:
            var text = ""
            for block in blocks {
                guard case .object(let object) = block else {
                    throw .upstreamError("cohere returned a content block that is not an object.")
                }
                guard object["type"]?.stringValue == "text" else { continue }
                guard case .string(let piece)? = object["text"] else {
                    throw .upstreamError("cohere returned a text block without 'text'.")
                }
                text += piece
            }
            return text
        default:
            throw .upstreamError("cohere returned 'message.content' that is neither a string nor an array.")
        }
    }

    /// Tool calls are OpenAI-shaped already; ids are generated (stable per response) when missing
    /// and object arguments are encoded to the string OpenAI clients expect.
    static func toolCalls(_ value: JSON?, responseID: String) throws(GatewayError) -> [ToolCall] {
        guard let value, value != .null else { return [] }
        guard case .array(let items) = value else {
            throw .upstreamError("cohere returned 'message.tool_calls' that is not an array.")
        }
        var calls: [ToolCall] = []
        for (index, item) in items.enumerated() {
            guard case .object(let call) = item, case .string(let name)? = call["function"]?["name"], !name.isEmpty else {
                throw .upstreamError("cohere returned a tool call without 'function.name'.")
            }
            let id = call["id"]?.stringValue.nonEmpty ?? generatedCallID(responseID: responseID, index: index)
            calls.append(ToolCall(id: id, name: name, arguments: try argumentsString(call["function"]?["arguments"])))
        }
        return calls
    }

    static func argumentsString(_ value: JSON?) throws(GatewayError) -> String {
        switch value {
        case nil, .null?: return "{}"
        case .string(let text)?: return text.trimmingWhitespace().isEmpty ? "{}" : text
        case .object?: return value?.serializedString() ?? "{}"
        default: throw .upstreamError("cohere returned tool-call arguments that are neither a string nor an object.")
        }
    }

    /// `call_<response id>_<ordinal>`: unique within the answer, the same on every replay of it.
    static func generatedCallID(responseID: String, index: Int) -> String {
        let suffix = responseID.filter { $0.isLetter || $0.isNumber }.suffix(12)
        return "call_\(suffix)_\(index)"
    }
}

/// Cohere usage → `TokenUsage`. Cohere reports two counts (docs/providers/cohere.md, "Usage:
/// `billed_units`, not `tokens`"): `tokens` (what the model processed, including Cohere's own
/// prompt template) and `billed_units` (what Cohere charges). The gateway's cost, TPM limits and
/// the client's `usage` all follow the bill, so `billed_units` is used; `tokens` only when
/// `billed_units` is absent. `cached_tokens` is counted on the `tokens` scale (it can exceed the
/// billed input), so it is reported as `cached_tokens` only with the `tokens` fallback, clamped to
/// the prompt count.
enum CohereUsage {
    /// Counts (integers or doubles, as Cohere's API has sent both) are clamped by `TokenCount`.
    static func decode(_ value: JSON?) -> TokenUsage? {
        guard case .object(let usage)? = value else { return nil }
        let billed = usage["billed_units"]
        let tokens = usage["tokens"]
        if let prompt = TokenCount.clamp(billed?["input_tokens"]), let completion = TokenCount.clamp(billed?["output_tokens"]) {
            return TokenUsage(promptTokens: prompt, completionTokens: completion)
        }
        guard let prompt = TokenCount.clamp(tokens?["input_tokens"]), let completion = TokenCount.clamp(tokens?["output_tokens"]) else {
            // Partial billed counts (e.g. input only): use what is there.
            guard let prompt = TokenCount.clamp(billed?["input_tokens"]) ?? TokenCount.clamp(tokens?["input_tokens"]) else { return nil }
            let completion = TokenCount.clamp(billed?["output_tokens"]) ?? TokenCount.clamp(tokens?["output_tokens"]) ?? 0
            return TokenUsage(promptTokens: prompt, completionTokens: completion)
        }
        let cached = min(TokenCount.clamp(usage["cached_tokens"]) ?? 0, prompt)
        return TokenUsage(promptTokens: prompt, completionTokens: completion, cachedPromptTokens: cached)
    }
}

/// Cohere error bodies: `{"message": "…"}`, sometimes with an `id` (docs/providers/cohere.md, "Errors").
enum CohereErrors {
    static func decode(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        var text: String?
        if let json = try? JSON.parse(body) {
            text = json["message"]?.stringValue ?? json["error"]?["message"]?.stringValue ?? json["error"]?.stringValue
        } else if !body.isEmpty, body.count <= 1000 {
            let raw = String(decoding: body, as: UTF8.self).trimmingWhitespace()
            if !raw.isEmpty { text = raw }
        }
        let message = "cohere: \(text ?? "HTTP \(status)")"
        let retryAfter = RetryAfter.seconds(headers)
        let lowered = (text ?? "").lowercased()
        switch status {
        case 401, 498:
            // 498 is Cohere's "invalid token".
            return .provider(status: 401, message: message, type: "authentication_error", code: "invalid_api_key", retryAfter: retryAfter)
        case 400 where lowered.contains("too many tokens"):
            return .provider(status: 400, message: message, type: "invalid_request_error", code: "context_length_exceeded",
                             param: "messages", retryAfter: retryAfter)
        case 402:
            return .provider(status: 402, message: message, type: "insufficient_quota", code: "payment_required", retryAfter: retryAfter)
        case 404 where lowered.contains("model"):
            return .provider(status: 404, message: message, type: "not_found_error", code: "model_not_found", param: "model", retryAfter: retryAfter)
        case 429:
            return .provider(status: 429, message: message, type: "rate_limit_error", code: "rate_limit_exceeded", retryAfter: retryAfter)
        case 499:
            return .provider(status: 499, message: message, type: "api_error", code: "request_cancelled", retryAfter: retryAfter)
        default:
            return .provider(status: status, message: message, retryAfter: retryAfter)
        }
    }
}
