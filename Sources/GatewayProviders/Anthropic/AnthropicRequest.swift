import GatewayCore

/// OpenAI Chat Completions request → Anthropic Messages request body (docs/providers/anthropic.md).
enum AnthropicRequestBuilder {
    /// Image media types Anthropic accepts in an `image` block.
    static let imageMediaTypes: Set<String> = ["image/jpeg", "image/png", "image/gif", "image/webp"]

    /// Parameters with no Anthropic equivalent that would change the answer: a 400 naming them.
    static let rejected = ["n", "audio", "prediction", "reasoning_effort", "web_search_options"]

    /// Whether the client asked for JSON output (answered through the forced JSON tool).
    static func wantsJSON(_ request: ChatRequest) -> Bool {
        switch request.body["response_format"]?["type"]?.stringValue {
        case "json_object", "json_schema": return true
        default: return false
        }
    }

    static func body(for request: ChatRequest) throws(GatewayError) -> JSONObject {
        try request.rejectUnsupported(rejected, provider: .anthropic)
        try rejectNonDefault(request)
        let chat = try request.conversation()
        let parameters = chat.parameters

        var body = JSONObject()
        body["model"] = .string(request.model)
        body["max_tokens"] = .int(Int64(parameters.maxTokens ?? AnthropicAdapter.defaultMaxTokens))

        let system = chat.systemTexts.filter { !$0.trimmingWhitespace().isEmpty }
        if system.count == 1, let only = system.first {
            body["system"] = .string(only)
        } else if system.count > 1 {
            body["system"] = .array(system.map { ["type": "text", "text": .string($0)] })
        }

        var turns = try Self.turns(chat.messages)
        turns = Self.pairToolBlocks(turns)
        Self.stripPrefillWhitespace(&turns)
        guard !turns.isEmpty else {
            throw .invalidRequest("anthropic needs at least one user or assistant message with content.", param: "messages", code: "invalid_value")
        }
        body["messages"] = .array(turns.map { turn in
            .object(JSONObject([("role", .string(turn.role)), ("content", .array(turn.blocks.map(JSON.object)))]))
        })

        let stop = parameters.stop.filter { !$0.trimmingWhitespace().isEmpty }
        if !stop.isEmpty { body["stop_sequences"] = .array(stop.map(JSON.string)) }
        // Anthropic's range is 0–1 (OpenAI's 0–2): clamp. Newer models refuse temperature and
        // top_p together, so temperature wins when both are set.
        if let temperature = parameters.temperature {
            body["temperature"] = .double(min(temperature, 1))
        } else if let topP = parameters.topP {
            body["top_p"] = .double(topP)
        }

        try Self.addTools(chat, turns: turns, wantsJSON: wantsJSON(request), into: &body)

        if let user = parameters.user, !user.isEmpty, !user.contains("@") {
            body["metadata"] = ["user_id": .string(user)]
        }
        if request.stream { body["stream"] = true }
        return body
    }

    /// Penalties, logit_bias and logprobs change the answer; Anthropic has none of them. Their
    /// neutral values (0, {}, false) are accepted and dropped, since some clients always send them.
    private static func rejectNonDefault(_ request: ChatRequest) throws(GatewayError) {
        for name in ["presence_penalty", "frequency_penalty"] {
            if let value = request.body[name]?.doubleValue, value != 0 {
                throw .invalidRequest("'\(name)' is not supported by anthropic.", param: name, code: "unsupported_parameter")
            }
        }
        if request.body["logprobs"]?.boolValue == true {
            throw .invalidRequest("'logprobs' is not supported by anthropic.", param: "logprobs", code: "unsupported_parameter")
        }
        if let count = request.body["top_logprobs"]?.intValue, count > 0 {
            throw .invalidRequest("'top_logprobs' is not supported by anthropic.", param: "top_logprobs", code: "unsupported_parameter")
        }
        if case .object(let bias)? = request.body["logit_bias"], bias.count > 0 {
            throw .invalidRequest("'logit_bias' is not supported by anthropic.", param: "logit_bias", code: "unsupported_parameter")
        }
        if let modalities = request.body["modalities"]?.arrayValue, modalities.contains(where: { $0.stringValue != "text" }) {
            throw .invalidRequest("'modalities' other than text are not supported by anthropic.", param: "modalities", code: "unsupported_parameter")
        }
    }

    // MARK: Messages

    struct Turn {
        var role: String
        var blocks: [JSONObject]
    }

    /// One Anthropic turn per run of same-role messages: tool messages become `tool_result`
    /// blocks of a user turn (tool results first), system messages were lifted out.
    static func turns(_ messages: [ChatMessage]) throws(GatewayError) -> [Turn] {
        var turns: [Turn] = []
        func append(_ role: String, _ blocks: [JSONObject]) {
            guard !blocks.isEmpty else { return }
            if let last = turns.last, last.role == role {
                turns[turns.count - 1].blocks += blocks
            } else {
                turns.append(Turn(role: role, blocks: blocks))
            }
        }
        for (index, message) in messages.enumerated() {
            switch message {
            case .system:
                continue
            case .user(let parts):
                var blocks: [JSONObject] = []
                for (partIndex, part) in parts.enumerated() {
                    if let block = try Self.block(part, param: "messages[\(index)].content[\(partIndex)]") { blocks.append(block) }
                }
                append("user", blocks)
            case .assistant(let text, let calls):
                var blocks: [JSONObject] = []
                if let text, !text.trimmingWhitespace().isEmpty {
                    blocks.append(JSONObject([("type", "text"), ("text", .string(text))]))
                }
                for (callIndex, call) in calls.enumerated() {
                    let input = try call.argumentsObject(param: "messages[\(index)].tool_calls[\(callIndex)].function.arguments")
                    blocks.append(JSONObject([
                        ("type", "tool_use"), ("id", .string(Self.toolUseID(call.id))), ("name", .string(call.name)),
                        ("input", .object(input)),
                    ]))
                }
                append("assistant", blocks)
            case .tool(let callID, let content):
                var block = JSONObject([("type", "tool_result"), ("tool_use_id", .string(Self.toolUseID(callID)))])
                // An empty result is sent without content (an empty text block would be refused).
                if !content.trimmingWhitespace().isEmpty { block["content"] = .string(content) }
                append("user", [block])
            }
        }
        // Anthropic wants tool results first in a user turn.
        for index in turns.indices where turns[index].role == "user" {
            let blocks = turns[index].blocks
            turns[index].blocks = blocks.filter(isToolResult) + blocks.filter { !isToolResult($0) }
        }
        return turns
    }

    private static func block(_ part: ContentPart, param: String) throws(GatewayError) -> JSONObject? {
        switch part {
        case .text(let text):
            // Empty or whitespace-only text blocks are refused by Anthropic: drop them.
            guard !text.trimmingWhitespace().isEmpty else { return nil }
            return JSONObject([("type", "text"), ("text", .string(text))])
        case .image(.url(let url)):  // `ImageSource.parse` only makes http(s) URLs
            return JSONObject([("type", "image"), ("source", ["type": "url", "url": .string(url)])])
        case .image(.base64(let mediaType, let data)):
            let source = JSONObject([("type", "base64"), ("media_type", .string(mediaType)), ("data", .string(data))])
            if imageMediaTypes.contains(mediaType) {
                return JSONObject([("type", "image"), ("source", .object(source))])
            }
            if mediaType == "application/pdf" {
                return JSONObject([("type", "document"), ("source", .object(source))])
            }
            throw .invalidRequest("'\(param).image_url.url': anthropic accepts image/jpeg, image/png, image/gif, image/webp (and application/pdf), not \(mediaType).",
                                  param: "\(param).image_url.url", code: "invalid_value")
        }
    }

    /// Anthropic tool-use ids must match `^[a-zA-Z0-9_-]+$`: any other character becomes `_`,
    /// the same way for a call and its result.
    static func toolUseID(_ id: String) -> String {
        var result = ""
        for scalar in id.unicodeScalars {
            let allowed = scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
                || ("0"..."9").contains(scalar) || scalar == "_" || scalar == "-")
            result.unicodeScalars.append(allowed ? scalar : "_")
        }
        return result.isEmpty ? "call_" : result
    }

    static func isToolResult(_ block: JSONObject) -> Bool { block["type"]?.stringValue == "tool_result" }
    static func isToolUse(_ block: JSONObject) -> Bool { block["type"]?.stringValue == "tool_use" }

    /// Keeps only tool calls answered in the very next user turn and tool results answering the
    /// assistant turn just before (Anthropic refuses either orphan; docs/providers/anthropic.md,
    /// "Tool calls in the history"); turns left empty are removed and same-role neighbours merged
    /// again.
    static func pairToolBlocks(_ turns: [Turn]) -> [Turn] {
        var turns = turns
        for index in turns.indices {
            switch turns[index].role {
            case "assistant":
                let next = index + 1 < turns.count && turns[index + 1].role == "user" ? turns[index + 1].blocks : []
                let answered = Set(next.filter(isToolResult).compactMap { $0["tool_use_id"]?.stringValue })
                turns[index].blocks.removeAll { isToolUse($0) && !answered.contains($0["id"]?.stringValue ?? "") }
            default:
                let previous = index > 0 && turns[index - 1].role == "assistant" ? turns[index - 1].blocks : []
                let calls = Set(previous.filter(isToolUse).compactMap { $0["id"]?.stringValue })
                turns[index].blocks.removeAll { isToolResult($0) && !calls.contains($0["tool_use_id"]?.stringValue ?? "") }
            }
        }
        var merged: [Turn] = []
        for turn in turns where !turn.blocks.isEmpty {
            if let last = merged.last, last.role == turn.role {
                merged[merged.count - 1].blocks += turn.blocks
            } else {
                merged.append(turn)
            }
        }
        return merged
    }

    /// A trailing assistant turn is a prefill: Claude continues it, and refuses it if it ends
    /// in whitespace.
    static func stripPrefillWhitespace(_ turns: inout [Turn]) {
        guard let last = turns.indices.last, turns[last].role == "assistant",
              let blockIndex = turns[last].blocks.indices.last,
              turns[last].blocks[blockIndex]["type"]?.stringValue == "text",
              let text = turns[last].blocks[blockIndex]["text"]?.stringValue else { return }
        var trimmed = Substring(text)
        while let character = trimmed.last, character.isWhitespace { trimmed.removeLast() }
        turns[last].blocks[blockIndex]["text"] = .string(String(trimmed))
    }

    // MARK: Tools

    private static func addTools(_ chat: ChatConversation, turns: [Turn], wantsJSON: Bool, into body: inout JSONObject) throws(GatewayError) {
        var tools: [JSON] = chat.tools.map { tool in
            var object = JSONObject([("name", .string(tool.name))])
            if let description = tool.description, !description.isEmpty { object["description"] = .string(description) }
            object["input_schema"] = .object(tool.parameters)
            return .object(object)
        }
        var choice: JSONObject?
        switch chat.toolChoice {
        case nil: choice = tools.isEmpty ? nil : JSONObject([("type", "auto")])
        case .auto?: choice = JSONObject([("type", "auto")])
        case .none?: choice = JSONObject([("type", "none")])
        case .required?: choice = JSONObject([("type", "any")])
        case .function(let name)?:
            guard chat.tools.contains(where: { $0.name == name }) else {
                throw .invalidRequest("'tool_choice' names \(name), which is not in 'tools'.", param: "tool_choice", code: "invalid_value")
            }
            choice = JSONObject([("type", "tool"), ("name", .string(name))])
        }

        if wantsJSON && choice?["type"]?.stringValue != "none" {
            var schema = JSONObject([("type", "object"), ("additionalProperties", true), ("properties", .object(JSONObject()))])
            if case .jsonSchema(_, let given, _)? = chat.parameters.responseFormat, given.count > 0 { schema = given }
            tools.append(.object(JSONObject([
                ("name", .string(AnthropicAdapter.jsonToolName)),
                ("description", "Respond with the final answer as JSON by calling this tool."),
                ("input_schema", .object(schema)),
            ])))
            // Alone, the JSON tool is forced; next to the client's tools the model must call one of them.
            if chat.tools.isEmpty {
                choice = JSONObject([("type", "tool"), ("name", .string(AnthropicAdapter.jsonToolName))])
            } else if choice?["type"]?.stringValue != "tool" {
                choice = JSONObject([("type", "any")])
            }
        }

        // History with tool blocks needs `tools` even when the client sent none
        // (docs/providers/anthropic.md, "Tool calls in the history"): declare the tools the history
        // used that are not declared, and forbid new calls if the client gave no tools at all.
        let declared = Set(tools.compactMap { $0["name"]?.stringValue })
        var missing: [String] = []
        for turn in turns {
            for block in turn.blocks where isToolUse(block) {
                if let name = block["name"]?.stringValue, !declared.contains(name), !missing.contains(name) { missing.append(name) }
            }
        }
        if !missing.isEmpty {
            let onlyHistory = tools.isEmpty
            tools += missing.map { name in
                .object(JSONObject([("name", .string(name)), ("input_schema", ["type": "object", "properties": .object(JSONObject())])]))
            }
            if onlyHistory { choice = JSONObject([("type", "none")]) }
        }

        guard !tools.isEmpty else { return }
        if chat.parameters.parallelToolCalls == false, var object = choice, object["type"]?.stringValue != "none" {
            object["disable_parallel_tool_use"] = true
            choice = object
        }
        body["tools"] = .array(tools)
        if let choice { body["tool_choice"] = .object(choice) }
    }
}
