import GatewayCore

/// OpenAI's `finish_reason` values; adapters map their provider's reasons onto these (docs/api.md, "Finish reasons").
public enum FinishReason: String, Sendable, Equatable {
    case stop, length
    case toolCalls = "tool_calls"
    case contentFilter = "content_filter"
}

/// One choice of a translated answer.
public struct CompletionChoice: Sendable, Equatable {
    public var index: Int
    /// nil for a turn that is only tool calls or was blocked.
    public var content: String?
    public var toolCalls: [ToolCall]
    public var finishReason: FinishReason

    public init(index: Int = 0, content: String?, toolCalls: [ToolCall] = [], finishReason: FinishReason) {
        self.index = index
        self.content = content
        self.toolCalls = toolCalls
        // A turn that produced tool calls finishes with tool_calls whatever the provider said (docs/api.md, "Finish reasons").
        self.finishReason = !toolCalls.isEmpty && finishReason == .stop ? .toolCalls : finishReason
    }
}

/// Builds the `chat.completion` body every non-OpenAI adapter returns, so the shape clients
/// rely on (docs/api.md, "Chat completion answers") is written in one place.
public enum ChatCompletionBody {
    public static func make(id: String, created: Int, model: String, choices: [CompletionChoice], usage: TokenUsage?) -> [UInt8] {
        var choiceValues: [JSON] = []
        for choice in choices {
            var message = JSONObject([("role", "assistant"), ("content", choice.content.map { .string($0) } ?? .null), ("refusal", .null)])
            if !choice.toolCalls.isEmpty {
                message["tool_calls"] = .array(choice.toolCalls.map { call in
                    ["id": .string(call.id), "type": "function",
                     "function": ["name": .string(call.name), "arguments": .string(call.arguments)]]
                })
            }
            choiceValues.append(.object(JSONObject([
                ("index", .int(Int64(choice.index))), ("message", .object(message)), ("logprobs", .null),
                ("finish_reason", .string(choice.finishReason.rawValue)),
            ])))
        }
        var object = JSONObject([
            ("id", .string(id)), ("object", "chat.completion"), ("created", .int(Int64(created))), ("model", .string(model)),
            ("system_fingerprint", .null), ("choices", .array(choiceValues)),
        ])
        object["usage"] = usage.map { $0.openAIJSON } ?? .null
        return JSON.object(object).serialized()
    }
}

extension TokenUsage {
    /// The OpenAI `usage` object: prompt includes cached, completion includes reasoning.
    public var openAIJSON: JSON {
        .object(JSONObject([
            ("prompt_tokens", .int(Int64(promptTokens))), ("completion_tokens", .int(Int64(completionTokens))),
            ("total_tokens", .int(Int64(totalTokens))),
            ("prompt_tokens_details", ["cached_tokens": .int(Int64(cachedPromptTokens))]),
            ("completion_tokens_details", ["reasoning_tokens": .int(Int64(reasoningTokens))]),
        ]))
    }
}

/// Writes `chat.completion.chunk`s with one id, created and model for the whole stream
/// (docs/api.md, "Streaming"), the role chunk first, tool-call deltas indexed by tool ordinal, and
/// the usage chunk only when the client asked for it. Stream translators own one and call it per
/// provider event.
public struct ChunkWriter: Sendable {
    public let id: String
    public let created: Int
    public let model: String
    public let clientWantsUsage: Bool
    public private(set) var sentRole = false
    public private(set) var sentFinish = false
    /// A tool call went out: the stream finishes with `tool_calls` whatever the provider said
    /// (docs/api.md, "Finish reasons").
    public private(set) var sentToolCall = false

    public init(id: String, created: Int, model: String, clientWantsUsage: Bool) {
        self.id = id
        self.created = created
        self.model = model
        self.clientWantsUsage = clientWantsUsage
    }

    /// The role chunk, once (empty if already sent).
    public mutating func role() -> [StreamOutput] {
        guard !sentRole else { return [] }
        sentRole = true
        return [chunk(delta: JSONObject([("role", "assistant"), ("content", "")]), finishReason: nil)]
    }

    public mutating func content(_ text: String) -> [StreamOutput] {
        guard !text.isEmpty else { return [] }
        return role() + [chunk(delta: JSONObject([("content", .string(text))]), finishReason: nil)]
    }

    /// The first delta of tool call number `index`: id, type, name and (possibly whole) arguments.
    public mutating func toolCallStart(index: Int, id: String, name: String, arguments: String = "") -> [StreamOutput] {
        sentToolCall = true
        let call = JSONObject([
            ("index", .int(Int64(index))), ("id", .string(id)), ("type", "function"),
            ("function", ["name": .string(name), "arguments": .string(arguments)]),
        ])
        return role() + [chunk(delta: JSONObject([("tool_calls", .array([.object(call)]))]), finishReason: nil)]
    }

    /// A later fragment of tool call number `index`'s arguments.
    public mutating func toolCallArguments(index: Int, fragment: String) -> [StreamOutput] {
        guard !fragment.isEmpty else { return [] }
        let call = JSONObject([("index", .int(Int64(index))), ("function", ["arguments": .string(fragment)])])
        return role() + [chunk(delta: JSONObject([("tool_calls", .array([.object(call)]))]), finishReason: nil)]
    }

    /// The chunk carrying `finish_reason`, once.
    public mutating func finish(_ reason: FinishReason) -> [StreamOutput] {
        guard !sentFinish else { return [] }
        sentFinish = true
        return role() + [chunk(delta: JSONObject(), finishReason: sentToolCall && reason == .stop ? .toolCalls : reason)]
    }

    /// The end of a complete stream: the finish chunk (unless sent), the usage chunk if asked, `[DONE]`.
    public mutating func end(_ reason: FinishReason, usage: TokenUsage?) -> [StreamOutput] {
        finish(reason) + self.usage(usage) + [.done]
    }

    /// The usage chunk (`choices: []`) if the client asked for one.
    public func usage(_ usage: TokenUsage?) -> [StreamOutput] {
        guard clientWantsUsage, let usage else { return [] }
        let object = JSONObject([
            ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(Int64(created))),
            ("model", .string(model)), ("choices", .array([])), ("usage", usage.openAIJSON),
        ])
        return [.data(JSON.object(object).serialized())]
    }

    private func chunk(delta: JSONObject, finishReason: FinishReason?) -> StreamOutput {
        var object = JSONObject([
            ("id", .string(id)), ("object", "chat.completion.chunk"), ("created", .int(Int64(created))),
            ("model", .string(model)),
            ("choices", .array([.object(JSONObject([
                ("index", 0), ("delta", .object(delta)), ("logprobs", .null),
                ("finish_reason", finishReason.map { .string($0.rawValue) } ?? .null),
            ]))])),
        ])
        if clientWantsUsage { object["usage"] = .null }
        return .data(JSON.object(object).serialized())
    }
}

/// Decoding helpers for provider bodies: a malformed body is a 502 naming the provider, never a trap.
public enum ProviderBody {
    public static func object(_ bytes: [UInt8], provider: Provider) throws(GatewayError) -> JSONObject {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw .upstreamError("\(provider.rawValue) returned a malformed response (\(error.description)).")
        }
        guard case .object(let object) = json else {
            throw .upstreamError("\(provider.rawValue) returned \(json.typeName) where a JSON object was expected.")
        }
        return object
    }

    /// A stream event's JSON payload.
    public static func event(_ data: String, provider: Provider) throws(GatewayError) -> JSONObject {
        try event(Array(data.utf8), provider: provider)
    }

    public static func event(_ bytes: [UInt8], provider: Provider) throws(GatewayError) -> JSONObject {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch {
            throw .upstreamError("\(provider.rawValue) sent a malformed stream event (\(error.description)).")
        }
        guard case .object(let object) = json else {
            throw .upstreamError("\(provider.rawValue) sent a stream event that is not a JSON object.")
        }
        return object
    }

    /// A mid-stream error from the provider (or an error object inside a 200 body), as the final
    /// error event the client sees. Key-shaped strings are redacted here already, because a
    /// 200 body's error never passes `decodeError`; `StreamRelay` adds the project's own key.
    public static func streamError(provider: Provider, message: String, type: String?, status: Int = 502) -> GatewayError {
        let failureClass: FailureClass = type.map { $0.contains("rate") ? .rateLimit : .transient } ?? .transient
        return SecretRedactor.redact(
            GatewayError(status: status, type: "upstream_error", code: type ?? "upstream_error",
                         message: "\(provider.rawValue): \(message)", failureClass: failureClass),
            secrets: [])
    }
}
