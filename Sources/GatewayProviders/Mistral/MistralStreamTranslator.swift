import GatewayCore

/// Mistral's data-only SSE (docs/providers/mistral.md, "Streaming") → OpenAI chunks, re-emitted
/// through `ChunkWriter`: Mistral's id/created/model from its first chunk on every chunk, role
/// first, tool calls (whole in one delta at Mistral; later fragments are passed on as argument
/// deltas), `model_length` → `length`, and the usage Mistral puts on its final chunk sent as the
/// standard usage chunk only when the client asked. `[DONE]` ends the stream; a stream without it
/// is an error.
struct MistralStreamTranslator: StreamTranslator {
    private let fallbackID: String
    private let fallbackCreated: Int
    private let requestModel: String
    private let clientWantsUsage: Bool
    private var writer: ChunkWriter?
    /// Tool-call ordinal (the index the client sees) by Mistral's delta `index`: calls are
    /// numbered 0, 1, … as they start, whatever index Mistral sent (2^62 included).
    private var startedCalls: [Int: Int] = [:]
    private var producedText = false
    private var complete = false
    private(set) var usage: TokenUsage?
    private(set) var modelServed: String?

    init(request: ChatRequest) {
        fallbackID = request.responseID
        fallbackCreated = request.created
        requestModel = request.model
        clientWantsUsage = request.clientWantsUsage
    }

    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput] {
        if complete { return [] }
        let data = event.data.trimmingWhitespace()
        if data == "[DONE]" { return try done() }
        if data.isEmpty { return [] }
        let chunk = try ProviderBody.event(data, provider: .mistral)
        if let error = Self.streamError(chunk) { throw error }

        var output: [StreamOutput] = []
        if writer == nil {
            let model = chunk["model"]?.stringValue.nonEmpty
            modelServed = model ?? requestModel
            writer = ChunkWriter(
                id: chunk["id"]?.stringValue.nonEmpty ?? fallbackID,
                created: ProviderNumber.timestamp(chunk["created"]) ?? fallbackCreated,
                model: model ?? requestModel, clientWantsUsage: clientWantsUsage)
            output += writer?.role() ?? []
        }
        if let decoded = OpenAIUsage.decode(chunk["usage"]) { usage = decoded }
        guard var writer else { return output }
        defer { self.writer = writer }

        for choice in try OpenAICompatible.deltaChoices(chunk, provider: .mistral) where choice.index == 0 {
            if let text = choice.text, !text.isEmpty {
                producedText = true
                output += writer.content(text)
            }
            for call in choice.toolCalls {
                if let ordinal = startedCalls[call.index] {
                    if let fragment = call.arguments { output += writer.toolCallArguments(index: ordinal, fragment: fragment) }
                } else {
                    let ordinal = startedCalls.count
                    startedCalls[call.index] = ordinal
                    let id = call.id ?? "call_\(writer.id)_\(ordinal)"
                    output += writer.toolCallStart(index: ordinal, id: id, name: call.name ?? "", arguments: call.arguments ?? "")
                }
            }
            if let reason = choice.finishReason {
                output += writer.finish(try MistralAdapter.finishReason(reason, produced: producedText || !startedCalls.isEmpty))
            }
        }
        return output
    }

    private mutating func done() throws(GatewayError) -> [StreamOutput] {
        complete = true
        var writer = self.writer ?? ChunkWriter(id: fallbackID, created: fallbackCreated, model: requestModel, clientWantsUsage: clientWantsUsage)
        if modelServed == nil { modelServed = requestModel }
        let output = writer.end(.stop, usage: usage)
        self.writer = writer
        return output
    }

    mutating func finish() throws(GatewayError) -> [StreamOutput] {
        if !complete {
            throw .upstreamError("mistral ended the stream before [DONE].")
        }
        return []
    }

    /// A mid-stream error: Mistral's `{"object":"error","message",…}` or an OpenAI-style
    /// `{"error":{…}}` (Mistral does not document the format, so both are read;
    /// docs/providers/mistral.md, "Streaming").
    static func streamError(_ chunk: JSONObject) -> GatewayError? {
        let error: JSON
        if chunk["object"]?.stringValue == "error" {
            error = .object(chunk)
        } else if let nested = chunk["error"], nested != .null {
            error = nested
        } else {
            return nil
        }
        let message = OpenAICompatible.describe(error["message"] ?? error)
        return ProviderBody.streamError(provider: .mistral, message: message.isEmpty ? "stream error" : message,
                                        type: error["type"]?.stringValue)
    }
}
