import NIOCore
import NIOHTTP1

/// The simulated Cohere API (v2): `/v2/chat` (plain and `stream: true`), `/v2/embed` and
/// `/v1/models`, mounted at `/cohere/...`. Auth is `Authorization: Bearer`; errors are Cohere's
/// `{"id", "message"}` bodies. It validates requests the way Cohere does where a translator can
/// get it wrong: system turn first, tool messages with `tool_call_id`, at most 5 stop
/// sequences, only v2 fields (an OpenAI-only field such as `top_p` or `n` is a 400).
struct CohereSimulation: SimulatedProvider {
    let mountPoints = ["/cohere"]

    /// Keys that are always refused, so tests can exercise a bad upstream key.
    static let rejectedKeys: Set<String> = ["sk-invalid"]

    /// The v2 chat request fields (providers.md §6.2).
    static let chatFields: Set<String> = [
        "model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format", "safety_mode",
        "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty", "k", "p",
        "logprobs", "tool_choice", "thinking", "priority", "stream",
    ]
    static let roles: Set<String> = ["system", "user", "assistant", "tool"]

    func respond(to request: SimulatorRequest, path: String, context: SimulationContext) -> SimulatedResponse {
        let headerScript = SimulatorScript(header: request.header("x-sim"), texts: [])
        enum Route { case chat, embed, models }
        let route: Route
        switch (request.method, path) {
        case (.POST, "/v2/chat"): route = .chat
        case (.POST, "/v2/embed"): route = .embed
        case (.GET, "/v1/models"): route = .models
        case (_, "/v2/chat"), (_, "/v2/embed"), (_, "/v1/models"):
            return headerScript.decorate(Self.error(.methodNotAllowed, "method \(request.method.rawValue) not allowed on \(request.path)"))
        default:
            return headerScript.decorate(Self.error(.notFound, "404 page not found: \(request.method.rawValue) \(request.path)"))
        }
        guard let key = request.bearerToken, !key.isEmpty else {
            return headerScript.decorate(Self.error(.unauthorized, "no api key supplied"))
        }
        guard !Self.rejectedKeys.contains(key) else {
            return headerScript.decorate(Self.error(.unauthorized, "invalid api token"))
        }
        switch route {
        case .chat: return chat(request, headerScript, context)
        case .embed: return embed(request, headerScript, context)
        case .models: return Self.scripted(headerScript) ?? headerScript.decorate(.json(.ok, CohereWireFormat.modelList()))
        }
    }

    // MARK: Chat

    private func chat(_ request: SimulatorRequest, _ headerScript: SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return headerScript.decorate(Self.error(.badRequest, "invalid request: body must be a JSON object"))
        }
        let messages = (body["messages"] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
        let texts = messages.map(Self.texts(of:))
        var script = headerScript
        for text in texts.joined() { script.scan(text) }
        if let problem = Self.validate(body, messages: messages) {
            return script.decorate(Self.error(.badRequest, problem))
        }
        if let failure = Self.scripted(script) { return failure }

        let promptTokens = texts.reduce(0) { total, parts in
            total + SimulatedReply.tokensPerMessage + parts.reduce(0) { $0 + SimulatedReply.wordCount($1) }
        }
        let id = CohereWireFormat.responseID(context.stats.nextCompletionNumber())
        let stream = SimulatorJSON.bool(body["stream"]) ?? false
        let lastRole = messages.last?["role"] as? String

        var response: SimulatedResponse
        if let tool = script.tool, lastRole != "tool" {
            let callID = CohereWireFormat.toolCallID(name: tool, number: Int(id.suffix(12)) ?? 0)
            let plan = CohereWireFormat.toolPlan(name: tool)
            let usage = CohereWireFormat.Usage(inputTokens: promptTokens, outputTokens: SimulatedReply.wordCount(plan))
            if stream {
                var events = [CohereWireFormat.messageStart(id: id)]
                events += SimulatedReply.streamPieces(plan.split(separator: " ").map(String.init)).map(CohereWireFormat.toolPlanDelta)
                events.append(CohereWireFormat.toolCallStart(index: 0, id: callID, name: tool))
                events += CohereWireFormat.toolArgumentFragments.map { CohereWireFormat.toolCallDelta(index: 0, fragment: $0) }
                events.append(CohereWireFormat.toolCallEnd(index: 0))
                events.append(CohereWireFormat.messageEnd(finishReason: "TOOL_CALL", usage: usage))
                events.append(CohereWireFormat.done)
                response = .eventStream(events)
                if let k = script.disconnectAfter { response.interruption = .afterEvents(1 + k) }
            } else {
                response = .json(.ok, CohereWireFormat.response(
                    id: id, text: nil, toolPlan: plan,
                    toolCalls: [CohereWireFormat.toolCall(id: callID, name: tool, arguments: CohereWireFormat.toolArguments)],
                    finishReason: "TOOL_CALL", usage: usage))
                if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
            }
            return script.decorate(response)
        }

        let requested = script.words ?? SimulatedReply.defaultWordCount
        let limit = SimulatorJSON.int(body["max_tokens"])
        let count = limit.flatMap { (0..<requested).contains($0) ? $0 : nil } ?? requested
        let finishReason = count < requested ? "MAX_TOKENS" : "COMPLETE"
        let words = SimulatedReply.words(count: count, unicode: script.unicode)
        let usage = CohereWireFormat.Usage(inputTokens: promptTokens, outputTokens: words.count)

        if stream {
            response = .eventStream(Self.streamEvents(id: id, words: words, finishReason: finishReason, usage: usage, script: script))
            // message-start + content-start + K word events, then the connection drops.
            if let k = script.disconnectAfter { response.interruption = .afterEvents(2 + min(k, words.count)) }
        } else if script.malformed {
            response = SimulatedResponse(status: .ok, contentType: "application/json",
                                         body: .full(Array(#"{"id":"\#(id)","finish_reason":"COMPLETE","message":{"content":[{"#.utf8)))
        } else {
            response = .json(.ok, CohereWireFormat.response(
                id: id, text: words.joined(separator: " "), finishReason: finishReason, usage: usage))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        return script.decorate(response)
    }

    static func streamEvents(id: String, words: [String], finishReason: String, usage: CohereWireFormat.Usage,
                             script: SimulatorScript) -> [[UInt8]] {
        var events = [CohereWireFormat.messageStart(id: id), CohereWireFormat.contentStart(index: 0)]
        if script.malformed {
            events.append(CohereWireFormat.event(raw: "content-delta", payload: #"{"type":"content-delta","delta":{"message":"#))
            events.append(CohereWireFormat.done)
            return events
        }
        let pieces = SimulatedReply.streamPieces(words)
        if let k = script.streamErrorAfter {
            events += pieces.prefix(k).map { CohereWireFormat.contentDelta(index: 0, text: $0) }
            let partial = CohereWireFormat.Usage(inputTokens: usage.inputTokens, outputTokens: min(k, pieces.count))
            events.append(CohereWireFormat.messageEnd(
                finishReason: "ERROR", usage: partial,
                error: "internal server error: simulated mid-stream failure after \(min(k, pieces.count)) events"))
            events.append(CohereWireFormat.done)
            return events
        }
        events += pieces.map { CohereWireFormat.contentDelta(index: 0, text: $0) }
        events.append(CohereWireFormat.contentEnd(index: 0))
        events.append(CohereWireFormat.messageEnd(finishReason: finishReason, usage: usage))
        events.append(CohereWireFormat.done)
        return events
    }

    /// Cohere's own checks that a translator could trip over; nil when the request is fine.
    static func validate(_ body: [String: Any], messages: [[String: Any]]) -> String? {
        guard let model = body["model"] as? String, !model.isEmpty else { return "invalid request: model must be provided" }
        for key in body.keys.sorted() where !chatFields.contains(key) {
            return "invalid request: unknown field: parameter \(key) is not a valid field"
        }
        guard let raw = body["messages"] as? [Any], !raw.isEmpty, raw.count == messages.count else {
            return "invalid request: messages must be a non-empty list of message objects"
        }
        for (index, message) in messages.enumerated() {
            guard let role = message["role"] as? String, roles.contains(role) else {
                return "invalid request: messages[\(index)].role must be one of system, user, assistant, tool"
            }
            if role == "system" && index > 0 { return "system turn must be the first in the list" }
            if role == "tool" && (message["tool_call_id"] as? String ?? "").isEmpty {
                return "invalid request: messages[\(index)].tool_call_id is required for a tool message"
            }
            if role == "user" && message["content"] == nil { return "message must not be empty in a turn" }
            if role == "assistant" && message["content"] == nil && message["tool_calls"] == nil {
                return "message must not be empty in a turn"
            }
        }
        if let stops = body["stop_sequences"] {
            guard let list = stops as? [Any], list.allSatisfy({ $0 is String }) else {
                return "invalid request: stop_sequences must be a list of strings"
            }
            if list.count > 5 { return "invalid request: stop_sequences can have at most 5 elements" }
        }
        if let choice = body["tool_choice"] {
            guard let value = choice as? String, value == "REQUIRED" || value == "NONE" else {
                return "invalid request: tool_choice must be one of REQUIRED, NONE"
            }
            if (body["tools"] as? [Any] ?? []).isEmpty { return "invalid request: tool_choice requires tools to be provided" }
        }
        return nil
    }

    /// The text of a message: string content, or the `text` of each text part.
    static func texts(of message: [String: Any]) -> [String] {
        if let content = message["content"] as? String { return [content] }
        guard let parts = message["content"] as? [Any] else { return [] }
        return parts.compactMap { part in
            guard let part = part as? [String: Any], part["type"] as? String == "text" else { return nil }
            return part["text"] as? String
        }
    }

    // MARK: Embed

    private func embed(_ request: SimulatorRequest, _ headerScript: SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return headerScript.decorate(Self.error(.badRequest, "invalid request: body must be a JSON object"))
        }
        let texts = (body["texts"] as? [Any])?.compactMap { $0 as? String }
        var script = headerScript
        for text in texts ?? [] { script.scan(text) }
        guard (body["model"] as? String).map({ !$0.isEmpty }) == true else {
            return script.decorate(Self.error(.badRequest, "invalid request: model must be provided"))
        }
        guard let texts, !texts.isEmpty, texts.count == (body["texts"] as? [Any])?.count else {
            return script.decorate(Self.error(.badRequest, "invalid request: texts must be a non-empty list of strings"))
        }
        guard let inputType = body["input_type"] as? String,
              ["search_document", "search_query", "classification", "clustering"].contains(inputType) else {
            return script.decorate(Self.error(.badRequest, "invalid request: valid input_type must be provided with the provided model"))
        }
        if let types = body["embedding_types"] as? [Any], !types.contains(where: { $0 as? String == "float" }) {
            return script.decorate(Self.error(.badRequest, "invalid request: the simulator only returns float embeddings"))
        }
        if let failure = Self.scripted(script) { return failure }
        let dimensions = SimulatorJSON.int(body["output_dimension"]).map { min(max($0, 1), 4096) } ?? 8
        let tokens = texts.reduce(0) { $0 + SimulatedReply.wordCount($1) }
        let id = CohereWireFormat.responseID(context.stats.nextCompletionNumber())
        var response: SimulatedResponse
        if script.malformed {
            response = SimulatedResponse(status: .ok, contentType: "application/json",
                                         body: .full(Array(#"{"id":"\#(id)","embeddings":{"float":[[0.1,"#.utf8)))
        } else {
            response = .json(.ok, CohereWireFormat.embeddings(id: id, texts: texts, dimensions: dimensions, billedTokens: tokens))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        return script.decorate(response)
    }

    // MARK: Errors

    /// The error response for a `status=` directive (any status but 200), already decorated.
    static func scripted(_ script: SimulatorScript) -> SimulatedResponse? {
        guard let status = script.status, status != 200 else { return nil }
        let response = SimulatedResponse.json(
            HTTPResponseStatus(statusCode: status), CohereWireFormat.error(message: CohereWireFormat.simulatedErrorMessage(status: status)))
        return script.decorate(response)
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> SimulatedResponse {
        .json(status, CohereWireFormat.error(message: message))
    }
}
