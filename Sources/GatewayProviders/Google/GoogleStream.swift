import GatewayCore

/// `streamGenerateContent?alt=sse` → OpenAI chunks (docs/providers/google.md). Every event is a whole
/// `GenerateContentResponse` holding only the new parts; `usageMetadata` holds running totals
/// (the last one wins); function calls arrive whole. There is no terminator: `[DONE]` is sent at
/// EOF, in `finish()`, provided a candidate said it was finished (or the prompt was blocked).
struct GoogleStreamTranslator: StreamTranslator {
    private let request: ChatRequest
    private var writer: ChunkWriter?
    private var identity: GoogleIdentity?
    private(set) var usage: TokenUsage?
    private(set) var modelServed: String?
    private var toolCalls = 0
    private var finished = false

    init(request: ChatRequest) { self.request = request }

    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput] {
        let data = event.data.trimmingWhitespace()
        if data.isEmpty || data == "[DONE]" { return [] }
        var json: JSON
        do { json = try JSON.parse(Array(data.utf8)) } catch {
            throw .upstreamError("google sent a malformed stream event (\(error.description)).")
        }
        if case .array(let items) = json, items.count == 1, let first = items.first { json = first }
        guard case .object(let chunk) = json else {
            throw .upstreamError("google sent a stream event that is not a JSON object.")
        }
        if let error = chunk["error"], error != .null {
            throw GoogleErrorDecoder.streamError(error)
        }

        if writer == nil {
            let identity = GoogleIdentity(responseID: chunk["responseId"]?.stringValue, request: request)
            self.identity = identity
            writer = ChunkWriter(id: identity.completionID, created: request.created,
                                 model: chunk["modelVersion"]?.stringValue ?? request.model,
                                 clientWantsUsage: request.clientWantsUsage)
        }
        guard var writer, let identity else { return [] }
        if modelServed == nil { modelServed = chunk["modelVersion"]?.stringValue ?? request.model }
        if let decoded = try GoogleUsage.decode(chunk["usageMetadata"]) { usage = decoded }

        var output = writer.role()
        let blocked = chunk["promptFeedback"]?["blockReason"]?.stringValue != nil
        switch chunk["candidates"] {
        case nil, .null?:
            if blocked {
                output += writer.finish(.contentFilter)
                finished = true
            }
        case .array(let candidates)? where candidates.isEmpty && blocked:
            output += writer.finish(.contentFilter)
            finished = true
        case .array(let candidates)?:
            // One choice per stream (n > 1 is refused for streams): candidate index 0.
            for raw in candidates {
                guard case .object(let candidate) = raw else {
                    throw .upstreamError("google sent a candidate that is not an object.")
                }
                if let index = candidate["index"]?.intValue, index != 0 { continue }
                let parts = try GoogleParts.decode(candidate)
                if let text = parts.text { output += writer.content(text) }
                for call in parts.calls {
                    output += writer.toolCallStart(index: toolCalls, id: call.id ?? identity.toolCallID(toolCalls),
                                                   name: call.name, arguments: call.arguments)
                    toolCalls += 1
                }
                if let reason = try GoogleFinishReason.map(candidate["finishReason"]) {
                    output += writer.finish(reason)
                    finished = true
                }
            }
        default:
            throw .upstreamError("google sent 'candidates' that is not an array.")
        }
        self.writer = writer
        return output
    }

    mutating func finish() throws(GatewayError) -> [StreamOutput] {
        guard let writer, finished else {
            // A bare (non-`data:`) JSON error or a cut connection both end here without a finishReason.
            throw .upstreamError("google ended the stream without a finishReason.")
        }
        return writer.usage(usage) + [.done]
    }
}
