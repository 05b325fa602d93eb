import GatewayCore

/// Cohere v2 stream events (docs/providers/cohere.md, "Streams") → OpenAI chunks. Named events,
/// each with a JSON payload whose `type` repeats the name; the answer is complete at `message-end`
/// (finish reason + usage), and the `data: [DONE]` Cohere may send afterwards is ignored, so the
/// client gets exactly one.
struct CohereStreamTranslator: StreamTranslator {
    private let fallbackID: String
    private let created: Int
    private let model: String
    private let clientWantsUsage: Bool
    /// Created at the first event, with Cohere's message id when `message-start` carries one.
    private var writer: ChunkWriter?
    /// Tool-call ordinal by Cohere's event `index`; some streams omit `index`, then the
    /// latest call is the one being continued.
    private var ordinalByIndex: [Int64: Int] = [:]
    private var toolCallCount = 0
    private var producedOutput = false
    private var complete = false
    private(set) var usage: TokenUsage?
    var modelServed: String? { model }

    init(request: ChatRequest) {
        fallbackID = request.responseID
        created = request.created
        model = request.model
        clientWantsUsage = request.clientWantsUsage
    }

    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput] {
        if complete { return [] }
        let data = event.data.trimmingWhitespace()
        if data.isEmpty { return [] }
        if data == "[DONE]" {
            throw .upstreamError("cohere ended the stream before message-end.")
        }
        let payload = try ProviderBody.event(data, provider: .cohere)
        let type = event.event ?? payload["type"]?.stringValue ?? ""
        switch type {
        case "message-start":
            return write(id: payload["id"]?.stringValue) { $0.role() }
        case "content-delta":
            // `content.text` for answer text; `content.thinking` (reasoning models) is not sent.
            guard let text = payload["delta"]?["message"]?["content"]?["text"] else { return [] }
            guard case .string(let piece) = text else {
                throw .upstreamError("cohere sent a content-delta whose text is not a string.")
            }
            if !piece.isEmpty { producedOutput = true }
            return write { $0.content(piece) }
        case "tool-call-start":
            guard case .object(let call)? = payload["delta"]?["message"]?["tool_calls"] else {
                throw .upstreamError("cohere sent a tool-call-start without 'tool_calls'.")
            }
            guard case .string(let name)? = call["function"]?["name"], !name.isEmpty else {
                throw .upstreamError("cohere sent a tool-call-start without 'function.name'.")
            }
            let ordinal = toolCallCount
            toolCallCount += 1
            if let index = payload["index"]?.intValue { ordinalByIndex[index] = ordinal }
            producedOutput = true
            let id = call["id"]?.stringValue.nonEmpty
            let arguments = call["function"]?["arguments"]?.stringValue ?? ""
            return write { writer in
                writer.toolCallStart(index: ordinal, id: id ?? CohereResponse.generatedCallID(responseID: writer.id, index: ordinal),
                                     name: name, arguments: arguments)
            }
        case "tool-call-delta":
            guard toolCallCount > 0 else {
                throw .upstreamError("cohere sent a tool-call-delta before any tool-call-start.")
            }
            let fragment = payload["delta"]?["message"]?["tool_calls"]?["function"]?["arguments"]
            guard case .string(let text)? = fragment else { return [] }
            let ordinal = payload["index"]?.intValue.flatMap { ordinalByIndex[$0] } ?? (toolCallCount - 1)
            return write { $0.toolCallArguments(index: ordinal, fragment: text) }
        case "message-end":
            return try end(payload)
        default:
            // content-start/-end, tool-plan-delta, tool-call-end, citation-*, debug, unknown.
            return []
        }
    }

    mutating func finish() throws(GatewayError) -> [StreamOutput] {
        guard complete else { throw .upstreamError("cohere ended the stream before message-end.") }
        return []
    }

    /// Runs `body` on the writer, created on first use: a `message-start` id names the whole
    /// stream, else the gateway's response id does.
    private mutating func write(id: String? = nil, _ body: (inout ChunkWriter) -> [StreamOutput]) -> [StreamOutput] {
        var current = writer ?? ChunkWriter(id: id.nonEmpty ?? fallbackID, created: created, model: model,
                                            clientWantsUsage: clientWantsUsage)
        let output = body(&current)
        writer = current
        return output
    }

    private mutating func end(_ payload: JSONObject) throws(GatewayError) -> [StreamOutput] {
        let delta = payload["delta"]
        usage = CohereUsage.decode(delta?["usage"]) ?? usage
        complete = true
        let reason = delta?["finish_reason"]?.stringValue
        let errorText = delta?["error"]?.stringValue ?? delta?["error"]?["message"]?.stringValue
        if reason == "ERROR" || (reason == "TIMEOUT" && !producedOutput) || (errorText != nil && reason != "COMPLETE") {
            throw ProviderBody.streamError(provider: .cohere, message: errorText ?? "the generation ended with \(reason ?? "an error").",
                                           type: reason == "TIMEOUT" ? "timeout" : "generation_error")
        }
        // COMPLETE after tool calls: the writer says tool_calls (docs/providers/cohere.md, "Responses")
        let mapped = CohereResponse.finishReason(reason)
        let finalUsage = usage
        return write { writer in writer.end(mapped, usage: finalUsage) }
    }
}

