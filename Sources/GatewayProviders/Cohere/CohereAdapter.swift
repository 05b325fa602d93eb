import GatewayCore

/// Cohere's Chat v2 (`POST /v2/chat`) and Embed v2 (`POST /v2/embed`), docs/providers/cohere.md
/// Request translation lives here; responses, streams and errors in the sibling files.
/// What is mapped, dropped or refused is listed in docs/providers/cohere.md.
public struct CohereAdapter: ProviderAdapter {
    public init() {}

    public var provider: Provider { .cohere }
    public var knownModels: [String] { ["command-r-plus", "command-r", "command-a-03-2025", "command-r7b-12-2024"] }

    /// Cohere accepts at most this many stop sequences.
    static let maxStopSequences = 5

    /// Client fields Cohere cannot honour and that would change the answer if dropped.
    static let unsupportedFields = ["n", "top_logprobs", "audio", "modalities", "prediction"]

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        try request.rejectUnsupported(Self.unsupportedFields, provider: provider)
        if request.body["logprobs"]?.boolValue == true {
            throw .invalidRequest("'logprobs' is not supported by cohere.", param: "logprobs", code: "unsupported_parameter")
        }
        let conversation = try request.conversation()
        var body = JSONObject([("model", .string(request.model)), ("messages", .array(try Self.messages(conversation)))])
        try Self.addTools(conversation, to: &body)
        try Self.addParameters(conversation.parameters, to: &body)
        if request.stream { body["stream"] = .bool(true) }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v2/chat"),
            headers: Self.headers(settings, stream: request.stream),
            body: JSON.object(body).serialized())
    }

    static func headers(_ settings: ProviderSettings, stream: Bool) -> [(name: String, value: String)] {
        OpenAICompatible.headers(settings, accept: stream ? "text/event-stream" : "application/json")
            + [(name: "X-Client-Name", value: "deploxa-gateway")]
    }

    // MARK: Messages

    /// Cohere wants the system turn first: every system/developer message, wherever it appeared,
    /// is merged (in order, blank line between) into one leading system message. Tool results
    /// without a matching earlier call, and calls that never got a result, are dropped together
    /// (history truncation leaves such halves; Cohere refuses them).
    static func messages(_ conversation: ChatConversation) throws(GatewayError) -> [JSON] {
        var output: [JSON] = []
        let systemTexts = conversation.systemTexts.filter { !$0.trimmingWhitespace().isEmpty }
        if !systemTexts.isEmpty {
            output.append(["role": "system", "content": .string(systemTexts.joined(separator: "\n\n"))])
        }
        let (called, answered) = conversation.toolCallPairing
        var seenCalls = Set<String>()
        for (index, message) in conversation.messages.enumerated() {
            switch message {
            case .system:
                continue
            case .user(let parts):
                output.append(["role": "user", "content": try userContent(parts, param: "messages[\(index)].content")])
            case .assistant(let text, let calls):
                if index == conversation.messages.count - 1 {
                    throw .invalidRequest("cohere cannot continue a trailing assistant message (prefill); end 'messages' with a user or tool message.",
                                          param: "messages[\(index)]", code: "unsupported_parameter")
                }
                let kept = calls.filter { answered.contains($0.id) }
                let text = text ?? ""
                if kept.isEmpty && text.isEmpty { continue }
                var object = JSONObject([("role", "assistant")])
                if !text.isEmpty { object["content"] = .string(text) }
                if !kept.isEmpty {
                    object["tool_calls"] = .array(kept.map { call in
                        seenCalls.insert(call.id)
                        return ["id": .string(call.id), "type": "function",
                                "function": ["name": .string(call.name), "arguments": .string(argumentsString(call.arguments))]]
                    })
                }
                output.append(.object(object))
            case .tool(let callID, let content):
                guard called.contains(callID), seenCalls.contains(callID) else { continue }
                output.append(["role": "tool", "tool_call_id": .string(callID), "content": .string(content)])
            }
        }
        guard output.contains(where: { $0["role"]?.stringValue != "system" }) else {
            throw .invalidRequest("cohere needs at least one user message besides the system prompt.", param: "messages", code: "invalid_value")
        }
        return output
    }

    /// Arguments as Cohere expects them: a JSON-encoded string; an empty string becomes `{}`.
    private static func argumentsString(_ arguments: String) -> String {
        arguments.trimmingWhitespace().isEmpty ? "{}" : arguments
    }

    /// A plain string for text-only content (the common case), else v2 content parts with
    /// images as `image_url` parts (data URLs are rebuilt without extra MIME parameters; web URLs
    /// pass through, Cohere fetches them).
    private static func userContent(_ parts: [ContentPart], param: String) throws(GatewayError) -> JSON {
        if parts.allSatisfy({ if case .text = $0 { return true } else { return false } }) {
            let texts = parts.compactMap { if case .text(let text) = $0 { return text } else { return nil } }
            return .string(texts.joined(separator: "\n"))
        }
        var items: [JSON] = []
        for part in parts {
            switch part {
            case .text(let text):
                items.append(["type": "text", "text": .string(text)])
            case .image(let source):
                if case .base64(let mediaType, _) = source, !mediaType.hasPrefix("image/") {
                    throw .invalidRequest("'\(param)': cohere accepts only image data URLs, got \(mediaType).", param: param, code: "invalid_value")
                }
                items.append(["type": "image_url", "image_url": ["url": .string(source.urlString)]])
            }
        }
        return .array(items)
    }

    // MARK: Tools

    /// `tools` in OpenAI's own shape; `tool_choice` per docs/providers/cohere.md, "Requests":
    /// auto → omitted, none → NONE, required → REQUIRED, a named function → only that tool + REQUIRED.
    static func addTools(_ conversation: ChatConversation, to body: inout JSONObject) throws(GatewayError) {
        var tools = conversation.tools
        switch conversation.toolChoice {
        case nil, .auto?:
            break
        case .none?:
            if !tools.isEmpty { body["tool_choice"] = "NONE" }
        case .required?:
            guard !tools.isEmpty else {
                throw .invalidRequest("'tool_choice' is \"required\" but no 'tools' were given.", param: "tool_choice", code: "invalid_value")
            }
            body["tool_choice"] = "REQUIRED"
        case .function(let name)?:
            tools = tools.filter { $0.name == name }
            guard !tools.isEmpty else {
                throw .invalidRequest("'tool_choice' names function '\(name)', which is not in 'tools'.", param: "tool_choice", code: "invalid_value")
            }
            body["tool_choice"] = "REQUIRED"
        }
        guard !tools.isEmpty else { return }
        body["tools"] = .array(tools.map { tool in
            var function = JSONObject([("name", .string(tool.name))])
            if let description = tool.description { function["description"] = .string(description) }
            function["parameters"] = .object(tool.parameters)
            return ["type": "function", "function": .object(function)]
        })
        // Reorder so tool_choice follows tools (readability of the upstream body only).
        if let choice = body["tool_choice"] {
            body["tool_choice"] = nil
            body["tool_choice"] = choice
        }
    }

    // MARK: Parameters

    static func addParameters(_ parameters: ChatParameters, to body: inout JSONObject) throws(GatewayError) {
        if let maxTokens = parameters.maxTokens { body["max_tokens"] = .int(Int64(maxTokens)) }
        if let temperature = parameters.temperature { body["temperature"] = .double(temperature) }
        if let topP = parameters.topP { body["p"] = .double(topP) }
        if !parameters.stop.isEmpty {
            guard parameters.stop.count <= maxStopSequences else {
                throw .invalidRequest("'stop' has \(parameters.stop.count) sequences; cohere accepts at most \(maxStopSequences).",
                                      param: "stop", code: "invalid_value")
            }
            body["stop_sequences"] = .array(parameters.stop.map { .string($0) })
        }
        if let seed = parameters.seed { body["seed"] = .int(seed) }
        if let frequency = parameters.frequencyPenalty { body["frequency_penalty"] = .double(frequency) }
        if let presence = parameters.presencePenalty { body["presence_penalty"] = .double(presence) }
        switch parameters.responseFormat {
        case nil, .text?: break
        case .jsonObject?: body["response_format"] = ["type": "json_object"]
        case .jsonSchema(_, let schema, _)?: body["response_format"] = ["type": "json_object", "json_schema": .object(schema)]
        }
    }

    // MARK: Responses (see CohereResponse.swift, CohereStreamTranslator.swift)

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        try CohereResponse.decode(body, for: request)
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        CohereStreamTranslator(request: request)
    }

    public func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        CohereErrors.decode(status: status, headers: headers, body: body)
    }

    // MARK: Embeddings

    /// `input` → `texts`, `dimensions` → `output_dimension`, `input_type` the client's (a Cohere
    /// extension field) or `search_document`, `embedding_types: ["float"]` (base64 is encoded by
    /// the gateway from the floats).
    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let texts = try request.requireTexts(provider: provider)
        var body = JSONObject([
            ("model", .string(request.model)), ("texts", .array(texts.map { .string($0) })),
            ("input_type", .string(request.body["input_type"]?.stringValue ?? "search_document")),
            ("embedding_types", ["float"]),
        ])
        if let dimensions = request.dimensions { body["output_dimension"] = .int(Int64(dimensions)) }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v2/embed"),
            headers: Self.headers(settings, stream: false),
            body: JSON.object(body).serialized())
    }

    public func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult {
        let object = try ProviderBody.object(body, provider: provider)
        guard case .array(let rows)? = object["embeddings"]?["float"] else {
            throw .upstreamError("cohere returned an embeddings response without 'embeddings.float'.")
        }
        var vectors: [[Double]] = []
        for row in rows {
            guard case .array(let values) = row else {
                throw .upstreamError("cohere returned an embedding that is not an array of numbers.")
            }
            vectors.append(try EmbeddingsResult.numbers(values, failure: "cohere returned an embedding that is not an array of numbers."))
        }
        if vectors.count != request.texts.count {  // token-id input was refused by `requireTexts`
            throw .upstreamError("cohere returned \(vectors.count) embeddings for \(request.texts.count) inputs.")
        }
        let tokens = TokenCount.clamp(object["meta"]?["billed_units"]?["input_tokens"])
        return EmbeddingsResult.make(model: request.model, vectors: vectors, promptTokens: tokens, encodingFormat: request.encodingFormat)
    }
}
