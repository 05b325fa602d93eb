import NIOCore
import NIOHTTP1

/// The simulated Anthropic Messages API: `POST /v1/messages` (plain and streamed),
/// `GET /v1/models`, `GET /v1/models/{id}`, mounted at `/anthropic`. Checks `x-api-key` and
/// `anthropic-version`, and refuses the request shapes the real API refuses (same-role turns in
/// a row, orphaned tool blocks, empty text blocks, missing `max_tokens` …) so that a translation
/// mistake shows up as Anthropic's own 400.
struct AnthropicSimulation: SimulatedProvider {
    let mountPoints = ["/anthropic"]

    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse {
        enum Route { case messages, models, model(String) }
        let route: Route
        switch (request.method, path) {
        case (.POST, "/v1/messages"): route = .messages
        case (.GET, "/v1/models"): route = .models
        case (.GET, _) where path.hasPrefix("/v1/models/"): route = .model(String(path.dropFirst("/v1/models/".count)))
        case (_, "/v1/messages"), (_, "/v1/models"):
            return Self.error(.methodNotAllowed, "invalid_request_error", "Method Not Allowed")
        default:
            return Self.error(.notFound, "not_found_error", "Not Found")
        }

        guard let key = request.header("x-api-key")?.trimmingWhitespace(), !key.isEmpty else {
            return Self.error(.unauthorized, "authentication_error", "x-api-key header is required")
        }
        guard !Self.rejectedKeys.contains(key) else {
            return Self.error(.unauthorized, "authentication_error", "invalid x-api-key")
        }
        guard let version = request.header("anthropic-version"), !version.isEmpty else {
            return Self.error(.badRequest, "invalid_request_error", "anthropic-version: header is required")
        }

        switch route {
        case .messages:
            return messages(request, &script, context)
        case .models:
            return Self.scripted(script) ?? .json(.ok, AnthropicWireFormat.modelList())
        case .model(let id):
            if let failure = Self.scripted(script) { return failure }
            guard let model = AnthropicWireFormat.models.first(where: { $0.id == id }) else {
                return Self.error(.notFound, "not_found_error", "model: \(id)")
            }
            return .json(.ok, AnthropicWireFormat.model(model))
        }
    }

    // MARK: Messages

    private func messages(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.error(.badRequest, "invalid_request_error", "There was an error parsing the body of your request.")
        }
        let messages = body["messages"] as? [[String: Any]] ?? []
        let system = Self.systemTexts(body["system"])
        let texts = messages.map(Self.texts(of:))
        for text in system + texts.joined() { script.scan(text) }

        if let problem = Self.validate(body, messages: messages) {
            return Self.error(.badRequest, "invalid_request_error", problem)
        }
        if let failure = Self.scripted(script) { return failure }

        let model = body["model"] as? String ?? ""
        let number = context.stats.nextCompletionNumber()
        let id = "msg_sim_\(number)"
        // `validate` made sure `max_tokens` is at least 1.
        let (words, truncated) = SimulatedReply.words(for: script, limit: SimulatorJSON.int(body["max_tokens"]))

        // A forced tool, or `tool=NAME` unless the turn answers tool results, gives a tool call.
        let answersToolResults = (messages.last?["content"] as? [Any])?.contains {
            ($0 as? [String: Any])?["type"] as? String == "tool_result"
        } ?? false
        let choice = body["tool_choice"] as? [String: Any]
        var toolName: String?
        if choice?["type"] as? String == "tool", let name = choice?["name"] as? String {
            toolName = name
        } else if let name = script.tool, !answersToolResults, choice?["type"] as? String != "none" {
            toolName = name
        }
        let reply: AnthropicWireFormat.Reply = toolName.map { .toolUse(id: "toolu_sim_\(number)", name: $0) } ?? .text(words)
        let stopReason: String
        let outputTokens: Int
        switch reply {
        case .toolUse:
            stopReason = "tool_use"
            outputTokens = AnthropicWireFormat.toolCallTokens
        case .text:
            stopReason = truncated ? "max_tokens" : "end_turn"
            outputTokens = words.count
        }
        // The system prompt, when there is one, costs as one more message.
        let promptTokens = SimulatedReply.promptTokens((system.isEmpty ? [] : [system]) + texts)
        let usage = AnthropicWireFormat.Usage(inputTokens: promptTokens, outputTokens: outputTokens)

        var response: SimulatedResponse
        if SimulatorJSON.bool(body["stream"]) ?? false {
            response = .eventStream(Self.streamEvents(
                id: id, model: model, reply: reply, stopReason: stopReason, usage: usage, script: script))
            // message_start, content_block_start, ping + K deltas, then the connection drops.
            if let k = script.disconnectAfter { response.interruption = .afterEvents(3 + k) }
        } else if script.malformed {
            response = .rawJSON(#"{"id":"msg_sim","type":"message","content":[{"type":"text","te"#)
        } else {
            response = .json(.ok, AnthropicWireFormat.message(id: id, model: model, reply: reply, stopReason: stopReason, usage: usage))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        response.headers.add(name: "request-id", value: "req_sim_\(number)")
        return response
    }

    static func streamEvents(
        id: String, model: String, reply: AnthropicWireFormat.Reply, stopReason: String,
        usage: AnthropicWireFormat.Usage, script: SimulatorScript
    ) -> [[UInt8]] {
        var events = [AnthropicWireFormat.messageStart(id: id, model: model, inputTokens: usage.inputTokens)]
        var deltas: [[UInt8]]
        switch reply {
        case .text(let words):
            events.append(AnthropicWireFormat.blockStart(0, ["type": "text", "text": ""]))
            deltas = SimulatedReply.streamPieces(words).map { AnthropicWireFormat.textDelta(0, $0) }
        case .toolUse(let toolID, let name):
            events.append(AnthropicWireFormat.blockStart(0, ["type": "tool_use", "id": toolID, "name": name, "input": [String: Any]()]))
            deltas = AnthropicWireFormat.toolInputFragments.map { AnthropicWireFormat.inputJSONDelta(0, $0) }
        }
        events.append(AnthropicWireFormat.ping)
        if script.malformed {
            events.append(SimulatedSSE.event("content_block_delta", raw: #"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x""#))
            events.append(AnthropicWireFormat.messageStop)
            return events
        }
        if let k = script.streamErrorAfter {
            events += deltas.prefix(k)
            events.append(AnthropicWireFormat.errorEvent(type: "overloaded_error", message: "Overloaded"))
            return events
        }
        events += deltas
        events.append(AnthropicWireFormat.blockStop(0))
        events.append(AnthropicWireFormat.messageDelta(stopReason: stopReason, usage: usage))
        events.append(AnthropicWireFormat.messageStop)
        return events
    }

    // MARK: Request checks

    /// The first reason the real API would refuse this body, in its words; nil if none.
    static func validate(_ body: [String: Any], messages: [[String: Any]]) -> String? {
        guard let model = body["model"] as? String, !model.isEmpty else { return "model: Field required" }
        guard let maxTokens = SimulatorJSON.int(body["max_tokens"]) else { return "max_tokens: Field required" }
        guard maxTokens >= 1 else { return "max_tokens: Input should be greater than or equal to 1" }
        guard body["messages"] is [Any], !messages.isEmpty else { return "messages: Field required" }
        if let temperature = body["temperature"] as? Double, !(0...1).contains(temperature) {
            return "temperature: Input should be less than or equal to 1"
        }
        if body["temperature"] != nil && body["top_p"] != nil {
            return "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
        }
        let tools = body["tools"] as? [[String: Any]] ?? []
        for (index, tool) in tools.enumerated() where !(tool["input_schema"] is [String: Any]) {
            return "tools.\(index).custom.input_schema: Field required"
        }
        var previousRole: String?
        var previousToolUses: Set<String> = []
        var pendingToolUses: Set<String> = []
        var sawToolBlock = false
        for (index, message) in messages.enumerated() {
            guard let role = message["role"] as? String, role == "user" || role == "assistant" else {
                return "messages.\(index).role: Input should be 'user' or 'assistant'"
            }
            if role == previousRole {
                return "messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"\(role)\" roles in a row"
            }
            var blocks: [[String: Any]] = []
            if let text = message["content"] as? String {
                blocks = [["type": "text", "text": text]]
            } else if let items = message["content"] as? [[String: Any]] {
                blocks = items
            } else {
                return "messages.\(index).content: Input should be a valid list"
            }
            var toolUses: Set<String> = []
            var answered: Set<String> = []
            for (blockIndex, block) in blocks.enumerated() {
                switch block["type"] as? String {
                case "text":
                    guard let text = block["text"] as? String, !text.isEmpty else { return "messages: text content blocks must be non-empty" }
                    if text.trimmingWhitespace().isEmpty { return "messages: text content blocks must contain non-whitespace text" }
                case "tool_use":
                    sawToolBlock = true
                    guard role == "assistant", let id = block["id"] as? String, !id.isEmpty,
                          id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                        return "messages.\(index).content.\(blockIndex).tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'"
                    }
                    guard block["input"] is [String: Any] else { return "messages.\(index).content.\(blockIndex).tool_use.input: Input should be a valid dictionary" }
                    toolUses.insert(id)
                case "tool_result":
                    sawToolBlock = true
                    let id = block["tool_use_id"] as? String ?? ""
                    guard role == "user", previousToolUses.contains(id) else {
                        return "messages.\(index).content.\(blockIndex): unexpected `tool_use_id` found in `tool_result` blocks: \(id). Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
                    }
                    answered.insert(id)
                case "image", "document":
                    guard block["source"] is [String: Any] else { return "messages.\(index).content.\(blockIndex).source: Field required" }
                default:
                    return "messages.\(index).content.\(blockIndex).type: Input tag '\(block["type"] as? String ?? "")' is not valid"
                }
            }
            if !pendingToolUses.isEmpty {
                let missing = pendingToolUses.subtracting(answered)
                if !missing.isEmpty {
                    return "messages.\(index): `tool_use` ids were found without `tool_result` blocks immediately after: \(missing.sorted().joined(separator: ", ")). Each `tool_use` block must have a corresponding `tool_result` block in the next message."
                }
            }
            if role == "assistant", index == messages.count - 1, let last = blocks.last, last["type"] as? String == "text",
               let text = last["text"] as? String, text.last?.isWhitespace == true {
                return "messages: final assistant content cannot end with trailing whitespace"
            }
            previousRole = role
            previousToolUses = toolUses
            pendingToolUses = index == messages.count - 1 ? [] : toolUses
        }
        if sawToolBlock && tools.isEmpty {
            return "Requests which include `tool_use` or `tool_result` blocks must define tools."
        }
        return nil
    }

    /// `system` as a string or text blocks.
    static func systemTexts(_ system: Any?) -> [String] {
        if let text = system as? String { return [text] }
        guard let blocks = system as? [[String: Any]] else { return [] }
        return blocks.compactMap { $0["text"] as? String }
    }

    /// The text of a message: string content, text blocks, and tool results' text.
    static func texts(of message: [String: Any]) -> [String] {
        if let content = message["content"] as? String { return [content] }
        guard let blocks = message["content"] as? [[String: Any]] else { return [] }
        var texts: [String] = []
        for block in blocks {
            switch block["type"] as? String {
            case "text": if let text = block["text"] as? String { texts.append(text) }
            case "tool_result":
                if let text = block["content"] as? String { texts.append(text) }
                else if let parts = block["content"] as? [[String: Any]] { texts += parts.compactMap { $0["text"] as? String } }
            default: break
            }
        }
        return texts
    }

    // MARK: Errors

    /// The error response for a `status=` directive (any status but 200).
    static func scripted(_ script: SimulatorScript) -> SimulatedResponse? {
        guard let status = script.failureStatus else { return nil }
        return error(HTTPResponseStatus(statusCode: status), AnthropicWireFormat.errorType(for: status),
                     AnthropicWireFormat.simulatedErrorMessage(status: status))
    }

    static func error(_ status: HTTPResponseStatus, _ type: String, _ message: String) -> SimulatedResponse {
        var response = SimulatedResponse.json(status, AnthropicWireFormat.error(type: type, message: message))
        if status.code == 429 || status.code >= 500 { response.headers.add(name: "x-should-retry", value: "true") }
        return response
    }
}
