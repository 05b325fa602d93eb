import GatewayCore

/// Anthropic `message` → OpenAI `chat.completion` (docs/providers/anthropic.md).
enum AnthropicResponseDecoder {
    static func decode(_ bytes: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        let object = try ProviderBody.object(bytes, provider: .anthropic)
        if object["type"]?.stringValue == "error" {
            let error = object["error"]
            throw ProviderBody.streamError(provider: .anthropic, message: error?["message"]?.stringValue ?? "error",
                                           type: error?["type"]?.stringValue)
        }
        guard case .array(let blocks)? = object["content"] else {
            throw .upstreamError("anthropic returned a message without a 'content' array.")
        }
        let wantsJSON = AnthropicRequestBuilder.wantsJSON(request)
        var text = ""
        var jsonAnswer: String?
        var calls: [ToolCall] = []
        for (index, value) in blocks.enumerated() {
            guard case .object(let block) = value, case .string(let type)? = block["type"] else {
                throw .upstreamError("anthropic returned content[\(index)] without a type.")
            }
            switch type {
            case "text":
                guard case .string(let piece)? = block["text"] else {
                    throw .upstreamError("anthropic returned a text block without text.")
                }
                text += piece
            case "tool_use":
                guard case .string(let name)? = block["name"] else {
                    throw .upstreamError("anthropic returned a tool_use block without a name.")
                }
                let input: JSON
                switch block["input"] {
                case nil, .null?: input = .object(JSONObject())
                case .object(let object)?: input = .object(object)
                default: throw .upstreamError("anthropic returned a tool_use block whose input is not an object.")
                }
                if wantsJSON && name == AnthropicAdapter.jsonToolName {
                    jsonAnswer = input.serializedString()
                    continue
                }
                let id = block["id"]?.stringValue.nonEmpty ?? "toolu_\(request.responseID)_\(calls.count)"
                calls.append(ToolCall(id: id, name: name, arguments: input.serializedString()))
            default:
                continue  // thinking, redacted_thinking, server-tool blocks: not part of the OpenAI answer
            }
        }
        let stopReason = object["stop_reason"]?.stringValue
        var finish = AnthropicStopReason.finishReason(stopReason)
        let content: String?
        if let jsonAnswer {
            // JSON mode: the forced tool's input is the answer (docs/providers/anthropic.md, "JSON mode").
            content = jsonAnswer
            if finish == .toolCalls && calls.isEmpty { finish = .stop }
        } else {
            content = text.isEmpty ? nil : text
        }
        let usage = AnthropicUsage.decode(object["usage"])
        let model = object["model"]?.stringValue.nonEmpty
        let id = object["id"]?.stringValue.nonEmpty ?? request.responseID
        let body = ChatCompletionBody.make(
            id: id, created: request.created, model: model ?? request.model,
            choices: [CompletionChoice(content: content, toolCalls: calls, finishReason: finish)], usage: usage)
        return ChatResult(body: body, usage: usage, modelServed: model)
    }
}

enum AnthropicStopReason {
    /// docs/providers/anthropic.md, "Response translation". Unknown or missing reasons are `stop`.
    static func finishReason(_ reason: String?) -> FinishReason {
        switch reason {
        case "max_tokens", "model_context_window_exceeded": return .length
        case "tool_use": return .toolCalls
        case "refusal": return .contentFilter
        default: return .stop  // end_turn, stop_sequence, pause_turn
        }
    }
}

/// Anthropic usage counts: `input_tokens` excludes cache reads and writes, so the OpenAI prompt
/// count is the sum of all three (docs/providers/anthropic.md, "Response translation").
struct AnthropicUsage: Sendable, Equatable {
    var input = 0
    var cacheCreation = 0
    var cacheRead = 0
    var output = 0

    /// Applies the counts present in a `usage` object (stream events carry only some), each
    /// clamped by `TokenCount`.
    mutating func merge(_ value: JSON?) {
        guard case .object(let usage)? = value else { return }
        if let count = TokenCount.clamp(usage["input_tokens"]) { input = count }
        if let count = TokenCount.clamp(usage["cache_creation_input_tokens"]) { cacheCreation = count }
        if let count = TokenCount.clamp(usage["cache_read_input_tokens"]) { cacheRead = count }
        if let count = TokenCount.clamp(usage["output_tokens"]) { output = count }
    }

    /// The prompt sum is clamped too, and reads and writes are kept within it, so the parts
    /// never exceed the whole.
    var tokenUsage: TokenUsage {
        let prompt = TokenCount.sum(input, cacheCreation, cacheRead)
        let reads = min(cacheRead, prompt)
        return TokenUsage(promptTokens: prompt, completionTokens: output,
                          cachedPromptTokens: reads, reasoningTokens: 0, cacheWriteTokens: min(cacheCreation, prompt - reads))
    }

    static func decode(_ value: JSON?) -> TokenUsage? {
        guard case .object? = value else { return nil }
        var usage = AnthropicUsage()
        usage.merge(value)
        return usage.tokenUsage
    }
}
