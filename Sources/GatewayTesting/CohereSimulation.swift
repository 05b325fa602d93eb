import NIOCore
import NIOHTTP1

/// The simulated Cohere API (v2): `/v2/chat` (plain and `stream: true`), `/v2/embed` and
/// `/v1/models`, mounted at `/cohere/...`. Auth is `Authorization: Bearer`; errors are Cohere's
/// `{"id", "message"}` bodies. It validates requests the way Cohere does where a translator can
/// get it wrong: system turn first, tool messages with `tool_call_id`, at most 5 stop
/// sequences, only v2 fields (an OpenAI-only field such as `top_p` or `n` is a 400).
struct CohereSimulation: SimulatedProvider {
    let mountPoints = ["/cohere"]

    /// The v2 chat request fields (docs/providers/cohere.md).
    static let chatFields: Set<String> = [
        "model", "messages", "tools", "strict_tools", "documents", "citation_options", "response_format", "safety_mode",
        "max_tokens", "stop_sequences", "temperature", "seed", "frequency_penalty", "presence_penalty", "k", "p",
        "logprobs", "tool_choice", "thinking", "priority", "stream",
    ]
    static let roles: Set<String> = ["system", "user", "assistant", "tool"]

    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse {
        enum Route { case chat, embed, models }
        let route: Route
        switch (request.method, path) {
        case (.POST, "/v2/chat"): route = .chat
        case (.POST, "/v2/embed"): route = .embed
        case (.GET, "/v1/models"): route = .models
        case (_, "/v2/chat"), (_, "/v2/embed"), (_, "/v1/models"):
            return Self.error(.methodNotAllowed, "method \(request.method.rawValue) not allowed on \(request.path)")
        default:
            return Self.error(.notFound, "404 page not found: \(request.method.rawValue) \(request.path)")
        }
        guard let key = request.bearerToken, !key.isEmpty else {
            return Self.error(.unauthorized, "no api key supplied")
        }
        guard !Self.rejectedKeys.contains(key) else {
            return Self.error(.unauthorized, "invalid api token")
        }
        switch route {
        case .chat: return chat(request, &script, context)
        case .embed: return embed(request, &script, context)
        case .models: return Self.scripted(script) ?? .json(.ok, CohereWireFormat.modelList())
        }
    }

    // MARK: Chat

    private func chat(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.error(.badRequest, "invalid request: body must be a JSON object")
        }
        let messages = (body["messages"] as? [Any])?.compactMap { $0 as? [String: Any] } ?? []
        let texts = messages.map(OpenAISimulation.texts(of:))
        for text in texts.joined() { script.scan(text) }
        if let problem = Self.validate(body, messages: messages) {
            return Self.error(.badRequest, problem)
        }
        if let failure = Self.scripted(script) { return failure }

        let promptTokens = SimulatedReply.promptTokens(texts)
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
                let fragments = SimulatedReply.argumentFragments(SimulatedReply.toolCallArguments)
                events += fragments.map { CohereWireFormat.toolCallDelta(index: 0, fragment: $0) }
                events.append(CohereWireFormat.toolCallEnd(index: 0))
                events.append(CohereWireFormat.messageEnd(finishReason: "TOOL_CALL", usage: usage))
                events.append(SimulatedSSE.done)
                response = .eventStream(events)
                if let k = script.disconnectAfter { response.interruption = .afterEvents(1 + k) }
            } else {
                response = .json(.ok, CohereWireFormat.response(
                    id: id, text: nil, toolPlan: plan,
                    toolCalls: [CohereWireFormat.toolCall(id: callID, name: tool, arguments: SimulatedReply.toolCallArguments)],
                    finishReason: "TOOL_CALL", usage: usage))
                if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
            }
            return response
        }

        let (words, truncated) = SimulatedReply.words(for: script, limit: SimulatorJSON.int(body["max_tokens"]))
        let finishReason = truncated ? "MAX_TOKENS" : "COMPLETE"
        let usage = CohereWireFormat.Usage(inputTokens: promptTokens, outputTokens: words.count)

        if stream {
            response = .eventStream(Self.streamEvents(id: id, words: words, finishReason: finishReason, usage: usage, script: script))
            // message-start + content-start + K word events, then the connection drops.
            if let k = script.disconnectAfter { response.interruption = .afterEvents(2 + min(k, words.count)) }
        } else if script.malformed {
            response = .rawJSON(#"{"id":"\#(id)","finish_reason":"COMPLETE","message":{"content":[{"#)
        } else {
            response = .json(.ok, CohereWireFormat.response(
                id: id, text: words.joined(separator: " "), finishReason: finishReason, usage: usage))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        return response
    }

    static func streamEvents(id: String, words: [String], finishReason: String, usage: CohereWireFormat.Usage,
                             script: SimulatorScript) -> [[UInt8]] {
        var events = [CohereWireFormat.messageStart(id: id), CohereWireFormat.contentStart(index: 0)]
        if script.malformed {
            events.append(SimulatedSSE.event("content-delta", raw: #"{"type":"content-delta","delta":{"message":"#))
            events.append(SimulatedSSE.done)
            return events
        }
        let pieces = SimulatedReply.streamPieces(words)
        if let k = script.streamErrorAfter {
            events += pieces.prefix(k).map { CohereWireFormat.contentDelta(index: 0, text: $0) }
            let partial = CohereWireFormat.Usage(inputTokens: usage.inputTokens, outputTokens: min(k, pieces.count))
            events.append(CohereWireFormat.messageEnd(
                finishReason: "ERROR", usage: partial,
                error: "internal server error: simulated mid-stream failure after \(min(k, pieces.count)) events"))
            events.append(SimulatedSSE.done)
            return events
        }
        events += pieces.map { CohereWireFormat.contentDelta(index: 0, text: $0) }
        events.append(CohereWireFormat.contentEnd(index: 0))
        events.append(CohereWireFormat.messageEnd(finishReason: finishReason, usage: usage))
        events.append(SimulatedSSE.done)
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

    // MARK: Embed

    private func embed(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.error(.badRequest, "invalid request: body must be a JSON object")
        }
        let texts = (body["texts"] as? [Any])?.compactMap { $0 as? String }
        for text in texts ?? [] { script.scan(text) }
        guard (body["model"] as? String).map({ !$0.isEmpty }) == true else {
            return Self.error(.badRequest, "invalid request: model must be provided")
        }
        guard let texts, !texts.isEmpty, texts.count == (body["texts"] as? [Any])?.count else {
            return Self.error(.badRequest, "invalid request: texts must be a non-empty list of strings")
        }
        guard let inputType = body["input_type"] as? String,
              ["search_document", "search_query", "classification", "clustering"].contains(inputType) else {
            return Self.error(.badRequest, "invalid request: valid input_type must be provided with the provided model")
        }
        if let types = body["embedding_types"] as? [Any], !types.contains(where: { $0 as? String == "float" }) {
            return Self.error(.badRequest, "invalid request: the simulator only returns float embeddings")
        }
        if let failure = Self.scripted(script) { return failure }
        let dimensions = SimulatorJSON.int(body["output_dimension"]).map { min(max($0, 1), 4096) } ?? SimulatedReply.embeddingDimensions
        let tokens = SimulatedReply.wordCount(texts)
        let id = CohereWireFormat.responseID(context.stats.nextCompletionNumber())
        var response: SimulatedResponse
        if script.malformed {
            response = .rawJSON(#"{"id":"\#(id)","embeddings":{"float":[[0.1,"#)
        } else {
            response = .json(.ok, CohereWireFormat.embeddings(id: id, texts: texts, dimensions: dimensions, billedTokens: tokens))
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        return response
    }

    // MARK: Errors

    /// The error response for a `status=` directive (any status but 200).
    static func scripted(_ script: SimulatorScript) -> SimulatedResponse? {
        guard let status = script.failureStatus else { return nil }
        return error(HTTPResponseStatus(statusCode: status), CohereWireFormat.simulatedErrorMessage(status: status))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> SimulatedResponse {
        .json(status, CohereWireFormat.error(message: message))
    }
}
