import GatewayCore

/// OpenAI Chat Completions → Mistral's `/v1/chat/completions` body (docs/providers/mistral.md). The body
/// is rebuilt from the typed conversation, field by field: Mistral rejects unknown keys
/// (`extra_forbidden`), so nothing the client sent is forwarded unread.
enum MistralRequest {
    /// Parameters that would change the answer and that Mistral cannot honour: a 400 naming them.
    static let rejected = ["logit_bias", "logprobs", "top_logprobs", "audio", "modalities", "web_search_options"]
    /// Mistral fields (or extensions) forwarded unchanged when the client sets them.
    static let forwarded = ["prediction", "reasoning_effort", "prompt_mode", "prompt_cache_key", "safe_prompt"]
    /// The assistant turn inserted between a tool result and a user message (Mistral refuses
    /// `user` right after `tool`, code 3230).
    static let bridgeText = "Understood."

    static func body(_ request: ChatRequest) throws(GatewayError) -> JSONObject {
        try rejectUnsupported(request)
        let conversation = try request.conversation()
        let parameters = conversation.parameters
        if request.stream, let n = parameters.n, n > 1 {
            throw .invalidRequest("'n' greater than 1 cannot be combined with stream on mistral.", param: "n", code: "unsupported_parameter")
        }

        var body = JSONObject()
        body["model"] = .string(request.model)
        body["messages"] = .array(try messages(conversation))
        if let temperature = parameters.temperature { body["temperature"] = .double(temperature) }
        if let topP = parameters.topP { body["top_p"] = .double(topP) }
        if let maxTokens = parameters.maxTokens { body["max_tokens"] = .int(Int64(maxTokens)) }
        if request.stream { body["stream"] = true }
        if !parameters.stop.isEmpty { body["stop"] = .array(parameters.stop.map { .string($0) }) }
        if let seed = parameters.seed { body["random_seed"] = .int(seed) }
        if let n = parameters.n, n > 1 { body["n"] = .int(Int64(n)) }
        if let presence = parameters.presencePenalty { body["presence_penalty"] = .double(presence) }
        if let frequency = parameters.frequencyPenalty { body["frequency_penalty"] = .double(frequency) }
        if let format = parameters.responseFormat { body["response_format"] = responseFormat(format) }
        if !conversation.tools.isEmpty {
            body["tools"] = .array(conversation.tools.map(tool))
        }
        if let choice = conversation.toolChoice { body["tool_choice"] = toolChoice(choice) }
        if let parallel = parameters.parallelToolCalls { body["parallel_tool_calls"] = .bool(parallel) }
        for name in forwarded {
            if let value = request.body[name], value != .null { body[name] = value }
        }
        return body
    }

    private static func rejectUnsupported(_ request: ChatRequest) throws(GatewayError) {
        for name in rejected {
            guard let value = request.body[name], value != .null else { continue }
            if value == .bool(false) { continue }  // logprobs: false asks for nothing
            if name == "modalities", value == .array(["text"]) { continue }
            throw .invalidRequest("'\(name)' is not supported by mistral.", param: name, code: "unsupported_parameter")
        }
    }

    // MARK: Messages

    static func messages(_ conversation: ChatConversation) throws(GatewayError) -> [JSON] {
        let ids = MistralToolCallIDs(conversation.messages)
        let names = conversation.toolNamesByCallID
        // Calls and results must pair up: a call nobody answered or a result for an unknown call
        // (e.g. after history truncation) is a 400 at Mistral, so both are dropped.
        let (called, answered) = conversation.toolCallPairing

        var output: [JSONObject] = []
        var lastRole: String? { output.last?["role"]?.stringValue }
        for (index, message) in conversation.messages.enumerated() {
            switch message {
            case .system(let text):
                output.append(JSONObject([("role", "system"), ("content", .string(text))]))
            case .user(let parts):
                if lastRole == "tool" {
                    output.append(JSONObject([("role", "assistant"), ("content", .string(bridgeText))]))
                }
                output.append(JSONObject([("role", "user"), ("content", try userContent(parts, param: "messages[\(index)].content"))]))
            case .assistant(let rawText, let calls):
                let kept = calls.filter { answered.contains($0.id) }
                let text = rawText ?? ""
                if text.isEmpty && kept.isEmpty { continue }  // Mistral rejects empty assistant messages.
                var object = JSONObject([("role", "assistant")])
                if !text.isEmpty { object["content"] = .string(text) }
                if !kept.isEmpty {
                    object["tool_calls"] = .array(kept.map { call in
                        .object(JSONObject([
                            ("id", .string(ids.mistral(call.id))), ("type", "function"),
                            ("function", .object(JSONObject([("name", .string(call.name)), ("arguments", .string(call.arguments))]))),
                        ]))
                    })
                }
                output.append(object)
            case .tool(let callID, let content):
                guard called.contains(callID) else { continue }
                var object = JSONObject([("role", "tool"), ("tool_call_id", .string(ids.mistral(callID)))])
                if let name = names[callID] { object["name"] = .string(name) }
                object["content"] = .string(content)
                output.append(object)
            }
        }
        guard !output.isEmpty, output.contains(where: { $0["role"]?.stringValue != "system" }) else {
            throw .invalidRequest("'messages' must contain at least one user, assistant or tool message.", param: "messages", code: "invalid_value")
        }
        // A trailing assistant message is a prefill: Mistral continues it only with `prefix: true`.
        if let last = output.indices.last, output[last]["role"]?.stringValue == "assistant", output[last]["tool_calls"] == nil {
            output[last]["prefix"] = true
        }
        return output.map { .object($0) }
    }

    /// A string for plain text, else chunks: `text` and `image_url` (data URLs and http(s) URLs).
    private static func userContent(_ parts: [ContentPart], param: String) throws(GatewayError) -> JSON {
        if parts.isEmpty { return .string("") }
        if parts.count == 1, case .text(let text) = parts[0] { return .string(text) }
        return .array(parts.map { part in
            switch part {
            case .text(let text):
                return .object(JSONObject([("type", "text"), ("text", .string(text))]))
            case .image(let source):
                return .object(JSONObject([("type", "image_url"), ("image_url", .string(source.urlString))]))
            }
        })
    }

    // MARK: Tools and formats

    private static func tool(_ tool: ToolDefinition) -> JSON {
        var function = JSONObject([("name", .string(tool.name))])
        if let description = tool.description { function["description"] = .string(description) }
        function["parameters"] = .object(sanitizedSchema(tool.parameters))
        return .object(JSONObject([("type", "function"), ("function", .object(function))]))
    }

    /// Mistral's grammar validation chokes on `$schema`, `$id` and `additionalProperties: false`
    /// (docs/providers/mistral.md, "Request translation"): removed at every depth. `strict` is not sent.
    static func sanitizedSchema(_ schema: JSONObject) -> JSONObject {
        var result = JSONObject()
        for (key, value) in schema {
            if key == "$schema" || key == "$id" { continue }
            if key == "additionalProperties", value == .bool(false) { continue }
            result[key] = sanitized(value)
        }
        return result
    }

    private static func sanitized(_ value: JSON) -> JSON {
        switch value {
        case .object(let object): return .object(sanitizedSchema(object))
        case .array(let items): return .array(items.map(sanitized))
        default: return value
        }
    }

    /// `required` → `any` (the value every Mistral API version accepts); a named function keeps
    /// OpenAI's object, which the current API accepts.
    private static func toolChoice(_ choice: ToolChoice) -> JSON {
        switch choice {
        case .auto: return "auto"
        case .none: return "none"
        case .required: return "any"
        case .function(let name):
            return .object(JSONObject([("type", "function"), ("function", .object(JSONObject([("name", .string(name))])))]))
        }
    }

    private static func responseFormat(_ format: ResponseFormat) -> JSON {
        switch format {
        case .text: return ["type": "text"]
        case .jsonObject: return ["type": "json_object"]
        case .jsonSchema(let name, let schema, let strict):
            var spec = JSONObject([("name", .string(name)), ("schema", .object(schema))])
            if let strict { spec["strict"] = .bool(strict) }
            return .object(JSONObject([("type", "json_schema"), ("json_schema", .object(spec))]))
        }
    }
}

/// Mistral accepts only tool-call ids of exactly 9 characters `[a-zA-Z0-9]`
/// (docs/providers/mistral.md, "Request translation"). Ids that already comply are kept; others get
/// a deterministic 9-character base62 hash, the same on the call and on its result, distinct within
/// one request. Mistral's own answers carry compliant ids, so no reverse mapping is needed: what
/// the client sends back is what Mistral issued.
struct MistralToolCallIDs {
    private var map: [String: String] = [:]

    init(_ messages: [ChatMessage]) {
        var ordered: [String] = []
        var seen: Set<String> = []
        for message in messages {
            switch message {
            case .assistant(_, let calls):
                for call in calls where seen.insert(call.id).inserted { ordered.append(call.id) }
            case .tool(let callID, _):
                if seen.insert(callID).inserted { ordered.append(callID) }
            default: break
            }
        }
        var used: Set<String> = []
        // Compliant ids first, so a hash never takes an id the client already uses.
        for id in ordered where Self.isCompliant(id) {
            map[id] = id
            used.insert(id)
        }
        for id in ordered where !Self.isCompliant(id) {
            var salt = 0
            var candidate = Self.hash(id, salt: salt)
            while used.contains(candidate) {
                salt += 1
                candidate = Self.hash(id, salt: salt)
            }
            map[id] = candidate
            used.insert(candidate)
        }
    }

    func mistral(_ id: String) -> String { map[id] ?? Self.hash(id, salt: 0) }

    static func isCompliant(_ id: String) -> Bool {
        id.utf8.count == 9 && id.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) }
    }

    private static let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

    /// FNV-1a (64 bit) of the id, as 9 base62 digits.
    static func hash(_ id: String, salt: Int) -> String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in id.utf8 + (salt == 0 ? [] : Array("#\(salt)".utf8)) {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01b3
        }
        var digits: [Character] = []
        for _ in 0..<9 {
            digits.append(alphabet[Int(value % 62)])
            value /= 62
        }
        return String(digits)
    }
}
