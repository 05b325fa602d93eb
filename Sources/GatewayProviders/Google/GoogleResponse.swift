import GatewayCore

/// Gemini `GenerateContentResponse` → OpenAI `chat.completion` (docs/providers/google.md).
enum GoogleResponseDecoder {
    static func decode(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        let object = try ProviderBody.object(body, provider: .google)
        if let error = object["error"], error != .null {
            throw GoogleErrorDecoder.streamError(error)
        }
        let responseID = object["responseId"]?.stringValue
        let identity = GoogleIdentity(responseID: responseID, request: request)
        let model = object["modelVersion"]?.stringValue ?? request.model
        let usage = try GoogleUsage.decode(object["usageMetadata"])

        var choices: [CompletionChoice] = []
        var toolOrdinal = 0
        switch object["candidates"] {
        case nil, .null?:
            break
        case .array(let candidates)?:
            for (position, raw) in candidates.enumerated() {
                guard case .object(let candidate) = raw else {
                    throw .upstreamError("google returned a candidate that is not an object.")
                }
                let parts = try GoogleParts.decode(candidate)
                var calls: [ToolCall] = []
                for call in parts.calls {
                    calls.append(ToolCall(id: call.id ?? identity.toolCallID(toolOrdinal), name: call.name, arguments: call.arguments))
                    toolOrdinal += 1
                }
                let index = ProviderNumber.index(candidate["index"]) ?? position
                let reason = try GoogleFinishReason.map(candidate["finishReason"])
                choices.append(CompletionChoice(index: index, content: parts.text, toolCalls: calls, finishReason: reason ?? .stop))
            }
        default:
            throw .upstreamError("google returned 'candidates' that is not an array.")
        }
        if choices.isEmpty {
            // Blocked prompt (promptFeedback.blockReason, no candidates): one empty, filtered choice
            // (docs/providers/google.md, "Response translation").
            let blocked = object["promptFeedback"]?["blockReason"]?.stringValue != nil
            choices = [CompletionChoice(index: 0, content: nil, finishReason: blocked ? .contentFilter : .stop)]
        }
        let body = ChatCompletionBody.make(id: identity.completionID, created: request.created, model: model, choices: choices, usage: usage)
        return ChatResult(body: body, usage: usage, modelServed: model)
    }
}

/// The `id` of the translated answer and the ids of tool calls Gemini left without one.
struct GoogleIdentity: Sendable {
    let completionID: String
    private let callPrefix: String

    init(responseID: String?, request: ChatRequest) {
        if let responseID, !responseID.isEmpty {
            completionID = "chatcmpl-\(responseID)"
            callPrefix = "call_\(responseID)_"
        } else {
            completionID = request.responseID
            let base = request.responseID.hasPrefix("chatcmpl-") ? String(request.responseID.dropFirst("chatcmpl-".count)) : request.responseID
            callPrefix = "call_\(base)_"
        }
    }

    /// Stable and unique within the answer: response id + tool ordinal.
    func toolCallID(_ ordinal: Int) -> String { "\(callPrefix)\(ordinal)" }
}

/// A candidate's parts: visible text (thought parts dropped) and whole function calls.
struct GoogleParts {
    struct Call {
        var id: String?
        var name: String
        var arguments: String
    }

    var text: String?
    var calls: [Call] = []

    static func decode(_ candidate: JSONObject) throws(GatewayError) -> GoogleParts {
        var result = GoogleParts()
        let content: JSONObject
        switch candidate["content"] {
        case nil, .null?: return result  // stopped for safety before any output
        case .object(let object)?: content = object
        default: throw .upstreamError("google returned a candidate whose 'content' is not an object.")
        }
        let parts: [JSON]
        switch content["parts"] {
        case nil, .null?: return result
        case .array(let items)?: parts = items
        default: throw .upstreamError("google returned 'parts' that is not an array.")
        }
        var text: String?
        for part in parts {
            guard case .object(let object) = part else {
                throw .upstreamError("google returned a content part that is not an object.")
            }
            if let value = object["text"], value != .null {
                guard case .string(let piece) = value else {
                    throw .upstreamError("google returned a text part whose 'text' is not a string.")
                }
                if object["thought"]?.boolValue == true { continue }
                if !piece.isEmpty { text = (text ?? "") + piece }
            } else if let value = object["functionCall"], value != .null {
                guard case .object(let call) = value, case .string(let name)? = call["name"], !name.isEmpty else {
                    throw .upstreamError("google returned a functionCall without a name.")
                }
                let arguments: String
                switch call["args"] {
                case nil, .null?: arguments = "{}"
                case .object(let args)?: arguments = JSON.object(args).serializedString()
                default: throw .upstreamError("google returned functionCall.args that is not an object.")
                }
                let id = call["id"]?.stringValue.nonEmpty
                result.calls.append(Call(id: id, name: name, arguments: arguments))
            }
            // inlineData, executableCode, … are not part of a chat answer: skipped.
        }
        result.text = text
        return result
    }
}

enum GoogleFinishReason {
    /// docs/providers/google.md, "Response translation"; nil when the candidate has none (yet).
    static func map(_ value: JSON?) throws(GatewayError) -> FinishReason? {
        switch value {
        case nil, .null?: return nil
        case .string(let reason)?:
            switch reason {
            case "STOP", "FINISH_REASON_UNSPECIFIED", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS":
                return .stop
            case "MAX_TOKENS": return .length
            case "SAFETY", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "LANGUAGE",
                 "RECITATION", "OTHER", "NO_IMAGE", "IMAGE_RECITATION", "IMAGE_OTHER":
                return .contentFilter
            default: return .stop
            }
        default:
            throw .upstreamError("google returned a finishReason that is not a string.")
        }
    }
}

enum GoogleUsage {
    /// docs/providers/google.md, "Response translation": prompt = promptTokenCount
    /// (+ toolUsePromptTokenCount), completion = candidates + thoughts,
    /// cached = cachedContentTokenCount, reasoning = thoughts. Counts and sums are clamped by
    /// `TokenCount`; a count that is not a number is a malformed answer.
    static func decode(_ value: JSON?) throws(GatewayError) -> TokenUsage? {
        switch value {
        case nil, .null?: return nil
        case .object(let usage)?:
            func count(_ key: String) throws(GatewayError) -> Int {
                guard let raw = usage[key], raw != .null else { return 0 }
                guard let number = TokenCount.clamp(raw) else {
                    throw .upstreamError("google returned usageMetadata.\(key) that is not a count.")
                }
                return number
            }
            let thoughts = try count("thoughtsTokenCount")
            let prompt = TokenCount.sum(try count("promptTokenCount"), try count("toolUsePromptTokenCount"))
            let completion = TokenCount.sum(try count("candidatesTokenCount"), thoughts)
            return TokenUsage(
                promptTokens: prompt,
                completionTokens: completion,
                cachedPromptTokens: min(try count("cachedContentTokenCount"), prompt),
                reasoningTokens: min(thoughts, completion))
        default:
            throw .upstreamError("google returned usageMetadata that is not an object.")
        }
    }
}

/// google.rpc.Status bodies (`{"error":{"code","message","status","details"}}`, sometimes wrapped
/// in a one-element array) → the client's error (docs/providers/google.md, "Errors").
enum GoogleErrorDecoder {
    static func decode(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        var json = try? JSON.parse(body)
        if case .array(let items)? = json, let first = items.first { json = first }
        guard let error = json?["error"]?.objectValue else {
            let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingWhitespace()
            let message = text.isEmpty || json != nil ? "google returned HTTP \(status)." : "google returned HTTP \(status): \(text)"
            return .provider(status: status, message: message, retryAfter: RetryAfter.seconds(headers))
        }
        let statusName = error["status"]?.stringValue
        let reasons = details(error, type: "google.rpc.ErrorInfo").compactMap { $0["reason"]?.stringValue }
        let message = "google: \(error["message"]?.stringValue ?? "HTTP \(status)")"
        let retryAfter = retryDelay(error) ?? RetryAfter.seconds(headers)

        if status == 400 && (reasons.contains("API_KEY_INVALID") || reasons.contains("API_KEY_EXPIRED")) || status == 401 {
            return GatewayError(status: 401, type: "authentication_error", code: "invalid_api_key", message: message,
                                failureClass: .credentials)
        }
        if status == 429 {
            // A daily quota is not worth retrying soon; a per-minute limit is.
            let quotaIDs = details(error, type: "google.rpc.QuotaFailure").flatMap { $0["violations"]?.arrayValue ?? [] }
                .compactMap { $0["quotaId"]?.stringValue }
            let daily = quotaIDs.contains { $0.contains("PerDay") }
            return .provider(status: 429, message: message, type: daily ? "insufficient_quota" : "rate_limit_error",
                             code: statusName ?? "RESOURCE_EXHAUSTED", retryAfter: retryAfter)
        }
        if status == 400, let text = error["message"]?.stringValue, text.contains("input token count"), text.contains("exceeds the maximum") {
            return .provider(status: 400, message: message, code: "context_length_exceeded", param: "messages")
        }
        return .provider(status: status, message: message, code: statusName, retryAfter: retryAfter)
    }

    /// A mid-stream `{"error": {…}}` event: the client already has a 200, so it becomes the final error event.
    static func streamError(_ error: JSON) -> GatewayError {
        let statusName = error["status"]?.stringValue
        let message = error["message"]?.stringValue ?? "stream error"
        var failure = ProviderBody.streamError(provider: .google, message: message, type: statusName)
        switch statusName {
        case "RESOURCE_EXHAUSTED"?: failure.failureClass = .rateLimit
        case "INVALID_ARGUMENT"?, "FAILED_PRECONDITION"?, "NOT_FOUND"?: failure.failureClass = .callerFault
        case "PERMISSION_DENIED"?, "UNAUTHENTICATED"?: failure.failureClass = .credentials
        default: break
        }
        failure.retryAfter = retryDelay(error.objectValue ?? JSONObject())
        return failure
    }

    private static func details(_ error: JSONObject, type: String) -> [JSON] {
        (error["details"]?.arrayValue ?? []).filter { $0["@type"]?.stringValue?.hasSuffix(type) == true }
    }

    /// `RetryInfo.retryDelay` ("12s", "34.4s") in whole seconds, rounded up and clamped by `RetryAfter`.
    static func retryDelay(_ error: JSONObject) -> Int? {
        for info in details(error, type: "google.rpc.RetryInfo") {
            guard var text = info["retryDelay"]?.stringValue?.trimmingWhitespace(), text.hasSuffix("s") else { continue }
            text.removeLast()
            if let seconds = Double(text), let clamped = RetryAfter.clamp(seconds: seconds) { return clamped }
        }
        return nil
    }
}
