import Foundation
import NIOCore
import NIOHTTP1

/// The simulated OpenAI API: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`,
/// mounted at `/openai/...` and at bare `/v1/...`.
struct OpenAISimulation: SimulatedProvider {
    let mountPoints = ["/openai", ""]

    /// The endpoints this provider serves.
    private enum Route {
        case chatCompletions
        case embeddings
        case models
        case model(id: String)
    }

    func respond(to request: SimulatorRequest, path: String, script: inout SimulatorScript, context: SimulationContext) -> SimulatedResponse {
        let route: Route
        switch (request.method, path) {
        case (.POST, "/v1/chat/completions"): route = .chatCompletions
        case (.POST, "/v1/embeddings"): route = .embeddings
        case (.GET, "/v1/models"): route = .models
        case (.GET, _) where path.hasPrefix("/v1/models/"): route = .model(id: String(path.dropFirst("/v1/models/".count)))
        case (_, "/v1/chat/completions"), (_, "/v1/embeddings"), (_, "/v1/models"):
            return Self.error(
                status: .methodNotAllowed, message: "Method \(request.method.rawValue) is not allowed on \(request.path).", code: nil)
        default:
            return Self.error(status: .notFound, message: "Invalid URL (\(request.method.rawValue) \(request.path))", code: nil)
        }

        // OpenAI checks the key before it looks at the body.
        guard let key = request.bearerToken, !key.isEmpty, !Self.rejectedKeys.contains(key) else {
            return Self.error(status: .unauthorized, message: "Incorrect API key provided.", code: "invalid_api_key")
        }

        switch route {
        case .chatCompletions: return chatCompletions(request, &script, context)
        case .embeddings: return embeddings(request, &script)
        case .models: return Self.scripted(script) ?? .json(.ok, OpenAIWireFormat.modelList())
        case .model(let id): return Self.scripted(script) ?? Self.model(id: id)
        }
    }

    // MARK: Chat completions

    private func chatCompletions(_ request: SimulatorRequest, _ script: inout SimulatorScript, _ context: SimulationContext) -> SimulatedResponse {
        guard let body = SimulatorJSON.parse(request.body) as? [String: Any] else {
            return Self.invalidJSON(request.body)
        }
        let messages = body["messages"] as? [[String: Any]] ?? []
        let texts = messages.map(Self.texts(of:))
        for text in texts.joined() { script.scan(text) }

        guard let model = body["model"] as? String, !model.isEmpty else {
            return Self.error(status: .badRequest, message: "you must provide a model parameter", param: "model", code: nil)
        }
        guard body["messages"] is [Any], !messages.isEmpty else {
            return Self.error(
                status: .badRequest, message: "'messages' must be a non-empty array of message objects.", param: "messages", code: nil)
        }
        if let failure = Self.scripted(script) { return failure }

        let limit = SimulatorJSON.int(body["max_completion_tokens"]) ?? SimulatorJSON.int(body["max_tokens"])
        let (words, truncated) = SimulatedReply.words(for: script, limit: limit)
        let identity = OpenAIWireFormat.Identity(
            id: "chatcmpl-sim-\(context.stats.nextCompletionNumber())", created: context.now, model: model)
        // `tool=NAME`: one call of NAME, unless the conversation already answered a call.
        let toolCall = Self.scriptedToolCall(script, messages: messages, id: "call_sim\(identity.id.split(separator: "-").last ?? "0")")
        let usage = OpenAIWireFormat.Usage(
            promptTokens: SimulatedReply.promptTokens(texts),
            completionTokens: toolCall == nil ? words.count : OpenAIWireFormat.toolCallCompletionTokens
        )
        let finishReason = toolCall != nil ? "tool_calls" : truncated ? "length" : "stop"

        let stream = SimulatorJSON.bool(body["stream"]) ?? false
        var response: SimulatedResponse
        if stream {
            let streamOptions = body["stream_options"] as? [String: Any]
            let includeUsage = SimulatorJSON.bool(streamOptions?["include_usage"]) ?? false
            if let toolCall {
                response = .eventStream(Self.toolCallStreamEvents(identity, call: toolCall, usage: usage, includeUsage: includeUsage))
            } else {
                response = .eventStream(Self.streamEvents(
                    identity, words: words, finishReason: finishReason, usage: usage, includeUsage: includeUsage,
                    malformed: script.malformed, errorAfter: script.streamErrorAfter))
            }
            // Role chunk + K word chunks, then the connection drops.
            if let k = script.disconnectAfter { response.interruption = .afterEvents(1 + min(k, words.count)) }
        } else if script.malformed {
            response = .rawJSON(#"{"id":"chatcmpl-sim","choices":[{"message":"#)
        } else {
            if let toolCall {
                response = .json(.ok, OpenAIWireFormat.toolCallCompletion(identity, call: toolCall, usage: usage))
            } else {
                response = .json(.ok, OpenAIWireFormat.completion(
                    identity, content: words.joined(separator: " "), finishReason: finishReason, usage: usage))
            }
            if script.disconnectAfter != nil { response.interruption = .afterHalfBody }
        }
        response.headers.add(name: "x-request-id", value: "req_sim_\(identity.id.split(separator: "-").last ?? "0")")
        return response
    }

    /// The tool call a `tool=NAME` directive asks for, or nil when there is none or the last
    /// message is already a tool result (the round trip then ends with text).
    static func scriptedToolCall(_ script: SimulatorScript, messages: [[String: Any]], id: String) -> OpenAIWireFormat.ToolCall? {
        guard let name = script.tool, messages.last?["role"] as? String != "tool" else { return nil }
        return OpenAIWireFormat.ToolCall(id: id, name: name, arguments: SimulatedReply.toolCallArguments)
    }

    static func streamEvents(
        _ identity: OpenAIWireFormat.Identity, words: [String], finishReason: String,
        usage: OpenAIWireFormat.Usage, includeUsage: Bool, malformed: Bool, errorAfter: Int?
    ) -> [[UInt8]] {
        func chunk(_ delta: [String: Any], _ finish: String? = nil) -> [UInt8] {
            OpenAIWireFormat.event(OpenAIWireFormat.chunk(identity, delta: delta, finishReason: finish, includeUsage: includeUsage))
        }
        var events = [chunk(["role": "assistant", "content": ""])]
        if malformed {
            events.append(OpenAIWireFormat.event(raw: #"{"choices": [{"delta": {"content": "x""#))
            events.append(SimulatedSSE.done)
            return events
        }
        let pieces = SimulatedReply.streamPieces(words)
        if let errorAfter {
            // K word chunks, then OpenAI's mid-stream error payload; the stream then ends without [DONE].
            events += pieces.prefix(errorAfter).map { chunk(["content": $0]) }
            events.append(OpenAIWireFormat.event(OpenAIWireFormat.error(
                message: OpenAIWireFormat.simulatedStreamErrorMessage, type: "server_error", code: nil)))
            return events
        }
        events += pieces.map { chunk(["content": $0]) }
        events.append(chunk([:], finishReason))
        if includeUsage { events.append(OpenAIWireFormat.event(OpenAIWireFormat.usageChunk(identity, usage: usage))) }
        events.append(SimulatedSSE.done)
        return events
    }

    /// A streamed tool call as OpenAI sends it: id, type and name with empty arguments first,
    /// then the arguments in fragments, then `finish_reason: tool_calls`.
    static func toolCallStreamEvents(
        _ identity: OpenAIWireFormat.Identity, call: OpenAIWireFormat.ToolCall, usage: OpenAIWireFormat.Usage, includeUsage: Bool
    ) -> [[UInt8]] {
        func chunk(_ delta: [String: Any], _ finish: String? = nil) -> [UInt8] {
            OpenAIWireFormat.event(OpenAIWireFormat.chunk(identity, delta: delta, finishReason: finish, includeUsage: includeUsage))
        }
        var events = [chunk(["role": "assistant", "content": NSNull()])]
        events.append(chunk(["tool_calls": [[
            "index": 0, "id": call.id, "type": "function", "function": ["name": call.name, "arguments": ""],
        ] as [String: Any]]]))
        for fragment in SimulatedReply.argumentFragments(call.arguments) {
            events.append(chunk(["tool_calls": [["index": 0, "function": ["arguments": fragment]] as [String: Any]]]))
        }
        events.append(chunk([:], "tool_calls"))
        if includeUsage { events.append(OpenAIWireFormat.event(OpenAIWireFormat.usageChunk(identity, usage: usage))) }
        events.append(SimulatedSSE.done)
        return events
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

    // MARK: Errors

    /// The error response for a `status=` directive (any status but 200).
    static func scripted(_ script: SimulatorScript) -> SimulatedResponse? {
        guard let status = script.failureStatus else { return nil }
        let kind = OpenAIWireFormat.errorKind(for: status)
        return .json(
            HTTPResponseStatus(statusCode: status),
            OpenAIWireFormat.error(message: OpenAIWireFormat.simulatedErrorMessage(status: status), type: kind.type, code: kind.code))
    }

    static func error(status: HTTPResponseStatus, message: String, param: String? = nil, code: String?) -> SimulatedResponse {
        let type = OpenAIWireFormat.errorKind(for: Int(status.code)).type
        return .json(status, OpenAIWireFormat.error(message: message, type: type, param: param, code: code))
    }

    /// 400 for a body that is not JSON, or JSON but not an object.
    static func invalidJSON(_ body: ByteBuffer) -> SimulatedResponse {
        if SimulatorJSON.parse(body) != nil {
            return error(status: .badRequest, message: "The request body must be a JSON object.", code: nil)
        }
        return error(
            status: .badRequest,
            message: "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
            code: nil)
    }
}
