import GatewayCore

/// One Anthropic stream event, decoded (docs/providers/anthropic.md). The JSON `type` equals the SSE
/// event name; unknown types are `.unknown` and skipped.
enum AnthropicStreamEvent: Equatable {
    case messageStart(id: String?, model: String?, usage: JSON?)
    case contentBlockStart(index: Int, block: Block)
    case contentBlockDelta(index: Int, delta: Delta)
    case contentBlockStop(index: Int)
    case messageDelta(stopReason: String?, usage: JSON?)
    case messageStop
    case ping
    case error(type: String?, message: String)
    case unknown

    enum Block: Equatable {
        case text(String)
        case toolUse(id: String, name: String)
        case other
    }

    enum Delta: Equatable {
        case text(String)
        case inputJSON(String)
        case other
    }

    static func decode(_ event: SSEEvent) throws(GatewayError) -> AnthropicStreamEvent {
        if event.data.isEmpty { return event.event == "ping" ? .ping : .unknown }
        let payload = try ProviderBody.event(event.data, provider: .anthropic)
        let type = payload["type"]?.stringValue ?? event.event ?? ""
        switch type {
        case "message_start":
            guard case .object(let message)? = payload["message"] else { throw malformed(type, "message") }
            return .messageStart(id: message["id"]?.stringValue, model: message["model"]?.stringValue, usage: message["usage"])
        case "content_block_start":
            let index = try Self.index(payload, type)
            guard case .object(let block)? = payload["content_block"] else { throw malformed(type, "content_block") }
            switch block["type"]?.stringValue {
            case "text":
                return .contentBlockStart(index: index, block: .text(block["text"]?.stringValue ?? ""))
            case "tool_use":
                guard case .string(let id)? = block["id"], case .string(let name)? = block["name"] else {
                    throw malformed(type, "content_block.id/name")
                }
                return .contentBlockStart(index: index, block: .toolUse(id: id, name: name))
            default:
                return .contentBlockStart(index: index, block: .other)
            }
        case "content_block_delta":
            let index = try Self.index(payload, type)
            guard case .object(let delta)? = payload["delta"] else { throw malformed(type, "delta") }
            switch delta["type"]?.stringValue {
            case "text_delta":
                guard case .string(let text)? = delta["text"] else { throw malformed(type, "delta.text") }
                return .contentBlockDelta(index: index, delta: .text(text))
            case "input_json_delta":
                guard case .string(let fragment)? = delta["partial_json"] else { throw malformed(type, "delta.partial_json") }
                return .contentBlockDelta(index: index, delta: .inputJSON(fragment))
            default:
                return .contentBlockDelta(index: index, delta: .other)
            }
        case "content_block_stop":
            return .contentBlockStop(index: try Self.index(payload, type))
        case "message_delta":
            return .messageDelta(stopReason: payload["delta"]?["stop_reason"]?.stringValue, usage: payload["usage"])
        case "message_stop":
            return .messageStop
        case "ping":
            return .ping
        case "error":
            let error = payload["error"]
            return .error(type: error?["type"]?.stringValue, message: error?["message"]?.stringValue ?? "stream error")
        default:
            return .unknown
        }
    }

    private static func index(_ payload: JSONObject, _ type: String) throws(GatewayError) -> Int {
        guard let index = payload["index"]?.intValue, index >= 0, index < Int64(Int32.max) else { throw malformed(type, "index") }
        return Int(index)
    }

    private static func malformed(_ type: String, _ field: String) -> GatewayError {
        .upstreamError("anthropic sent a \(type) event without a valid '\(field)'.")
    }
}

/// Anthropic SSE → OpenAI chunks. Block indices count every content block; OpenAI's tool-call index
/// counts tool calls, so tool_use blocks are numbered as they start (docs/providers/anthropic.md,
/// "Tool calls in a stream").
struct AnthropicStreamTranslator: StreamTranslator {
    private let responseID: String
    private let created: Int
    private let requestedModel: String
    private let clientWantsUsage: Bool
    private let wantsJSON: Bool

    private var writer: ChunkWriter?
    private var toolOrdinals: [Int: Int] = [:]
    /// Block index of the JSON-mode tool, whose argument fragments are the answer's content.
    private var jsonBlocks: Set<Int> = []
    private var toolCount = 0
    private var counts = AnthropicUsage()
    private var sawUsage = false
    private var stopReason: String?
    private var complete = false

    private(set) var modelServed: String?
    var usage: TokenUsage? { sawUsage ? counts.tokenUsage : nil }

    init(request: ChatRequest) {
        responseID = request.responseID
        created = request.created
        requestedModel = request.model
        clientWantsUsage = request.clientWantsUsage
        wantsJSON = AnthropicRequestBuilder.wantsJSON(request)
    }

    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput] {
        guard !complete else { return [] }
        switch try AnthropicStreamEvent.decode(event) {
        case .messageStart(let id, let model, let usage):
            if let model, !model.isEmpty { modelServed = model }
            if usage != nil {
                counts.merge(usage)
                sawUsage = true
            }
            if writer == nil {
                let streamID = id.nonEmpty ?? responseID
                writer = ChunkWriter(id: streamID, created: created, model: modelServed ?? requestedModel, clientWantsUsage: clientWantsUsage)
            }
            return withWriter { $0.role() }
        case .contentBlockStart(_, .text(let text)):
            return withWriter { $0.content(text) }
        case .contentBlockStart(let index, .toolUse(let id, let name)):
            if wantsJSON && name == AnthropicAdapter.jsonToolName {
                jsonBlocks.insert(index)
                return withWriter { $0.role() }
            }
            let ordinal = toolCount
            toolCount += 1
            toolOrdinals[index] = ordinal
            return withWriter { $0.toolCallStart(index: ordinal, id: id, name: name) }
        case .contentBlockStart:
            return []
        case .contentBlockDelta(_, .text(let text)):
            return withWriter { $0.content(text) }
        case .contentBlockDelta(let index, .inputJSON(let fragment)):
            if jsonBlocks.contains(index) { return withWriter { $0.content(fragment) } }
            guard let ordinal = toolOrdinals[index] else { return [] }
            return withWriter { $0.toolCallArguments(index: ordinal, fragment: fragment) }
        case .contentBlockDelta, .contentBlockStop, .ping, .unknown:
            return []
        case .messageDelta(let reason, let usage):
            if let reason { stopReason = reason }
            if usage != nil {
                counts.merge(usage)  // cumulative: the last one wins
                sawUsage = true
            }
            return []
        case .messageStop:
            complete = true
            let reason = finishReason()
            let finalUsage = usage
            return withWriter { $0.end(reason, usage: finalUsage) }
        case .error(let type, let message):
            throw ProviderBody.streamError(provider: .anthropic, message: message, type: type)
        }
    }

    mutating func finish() throws(GatewayError) -> [StreamOutput] {
        guard complete else { throw .upstreamError("anthropic ended the stream before message_stop.") }
        return []
    }

    private func finishReason() -> FinishReason {
        var reason = AnthropicStopReason.finishReason(stopReason)
        // The JSON-mode tool alone is not a tool call (docs/providers/anthropic.md, "JSON mode").
        if toolCount == 0 && !jsonBlocks.isEmpty && reason == .toolCalls { reason = .stop }
        return reason
    }

    /// Runs `body` on the chunk writer, creating it first if the stream did not start with
    /// `message_start` (the client still gets one id and the role chunk first).
    private mutating func withWriter(_ body: (inout ChunkWriter) -> [StreamOutput]) -> [StreamOutput] {
        var current = writer ?? ChunkWriter(id: responseID, created: created, model: modelServed ?? requestedModel,
                                             clientWantsUsage: clientWantsUsage)
        let output = body(&current)
        writer = current
        return output
    }
}
