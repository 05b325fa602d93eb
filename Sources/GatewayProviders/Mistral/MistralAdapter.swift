import GatewayCore

/// Mistral La Plateforme (docs/providers/mistral.md): OpenAI-shaped, with quirks. Requests are rebuilt
/// from the typed conversation (9-character tool-call ids, `random_seed`, `any`, `prefix`,
/// sanitised tool schemas, no unknown keys); answers are read with the OpenAI-compatible
/// decoders and re-emitted through the shared OpenAI builders (`model_length` → `length`,
/// tool-call-only turns → `content: null`, usage only when the client asked).
public struct MistralAdapter: ProviderAdapter {
    public init() {}

    public var provider: Provider { .mistral }
    public var knownModels: [String] {
        ["mistral-large", "mistral-medium", "codestral", "mistral-large-latest", "mistral-medium-latest", "mistral-small-latest", "codestral-latest", "open-mistral-nemo",
         "pixtral-large-latest", "magistral-medium-latest"]
    }

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let body = try MistralRequest.body(request)
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1/chat/completions"),
            headers: OpenAICompatible.headers(settings, accept: request.stream ? "text/event-stream" : "application/json"),
            body: JSON.object(body).serialized())
    }

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        let object = try ProviderBody.object(body, provider: .mistral)
        if object["object"]?.stringValue == "error" {
            throw SecretRedactor.redact(.upstreamError("mistral: \(OpenAICompatible.describe(object["message"] ?? .null))"), secrets: [])
        }
        let id = object["id"]?.stringValue.nonEmpty ?? request.responseID
        let decoded = try OpenAICompatible.choices(object, fallbackID: id, provider: .mistral)
        var choices: [CompletionChoice] = []
        for choice in decoded {
            let text = choice.text ?? ""
            // Mistral answers a tool-call-only turn with content "" (docs/providers/mistral.md,
            // "Response translation"): clients expect null.
            let content: String? = choice.text == nil || (text.isEmpty && !choice.toolCalls.isEmpty) ? nil : text
            let reason = try Self.finishReason(choice.finishReason, produced: !text.isEmpty || !choice.toolCalls.isEmpty)
            choices.append(CompletionChoice(index: choice.index, content: content, toolCalls: choice.toolCalls, finishReason: reason))
        }
        if choices.isEmpty {
            choices = [CompletionChoice(content: nil, finishReason: .stop)]
        }
        let usage = OpenAIUsage.decode(object["usage"])
        let model = object["model"]?.stringValue.nonEmpty
        let created = ProviderNumber.timestamp(object["created"]) ?? request.created
        return ChatResult(
            body: ChatCompletionBody.make(id: id, created: created, model: model ?? request.model, choices: choices, usage: usage),
            usage: usage, modelServed: model ?? request.model)
    }

    /// docs/providers/mistral.md, "Response translation": `model_length` → `length`; `error` →
    /// `stop` when something was produced, else a 502.
    static func finishReason(_ reason: String?, produced: Bool) throws(GatewayError) -> FinishReason {
        switch reason {
        case "length", "model_length": return .length
        case "tool_calls": return .toolCalls
        case "content_filter": return .contentFilter
        case "error":
            if !produced { throw .upstreamError("mistral: the model stopped with finish_reason \"error\" before producing output.") }
            return .stop
        default: return .stop
        }
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        MistralStreamTranslator(request: request)
    }

    public func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        MistralErrorDecoder.decode(status: status, headers: headers, body: body)
    }

    // MARK: Embeddings

    /// `{model, input, output_dimension?, encoding_format?}` (docs/providers/mistral.md,
    /// "Embeddings"); `user` is dropped, `dimensions` becomes `output_dimension`, token-id input is
    /// a 400.
    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let texts = try request.requireTexts(provider: .mistral)
        var body = JSONObject([("model", .string(request.model))])
        if case .string(let single)? = request.body["input"] {
            body["input"] = .string(single)
        } else {
            body["input"] = .array(texts.map { .string($0) })
        }
        if let dimensions = request.dimensions { body["output_dimension"] = .int(Int64(dimensions)) }
        if request.body["encoding_format"] != nil { body["encoding_format"] = .string(request.encodingFormat) }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1/embeddings"),
            headers: OpenAICompatible.headers(settings, accept: "application/json"),
            body: JSON.object(body).serialized())
    }

    /// Mistral's list is OpenAI's plus an `id`: rebuilt as OpenAI's list shape.
    public func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult {
        let object = try ProviderBody.object(body, provider: .mistral)
        guard case .array(let items)? = object["data"] else {
            throw .upstreamError("mistral returned an embeddings response without 'data'.")
        }
        var data: [JSON] = []
        for (position, item) in items.enumerated() {
            guard case .object(let entry) = item, let embedding = entry["embedding"], embedding.arrayValue != nil || embedding.stringValue != nil else {
                throw .upstreamError("mistral returned an embedding without a vector.")
            }
            let index = ProviderNumber.index(entry["index"]).map(Int64.init) ?? Int64(position)
            data.append(.object(JSONObject([("object", "embedding"), ("index", .int(index)), ("embedding", embedding)])))
        }
        return EmbeddingsResult.make(model: object["model"]?.stringValue ?? request.model, data: data,
                                     promptTokens: TokenCount.clamp(object["usage"]?["prompt_tokens"]))
    }
}

/// Mistral's error bodies (docs/providers/mistral.md, "Errors"):
/// `{"object":"error","message","type","param","code"}` (message may be an object of 422 validation
/// details), FastAPI `{"detail": …}`, or `{"message": …}`.
enum MistralErrorDecoder {
    static func decode(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        var message = "mistral returned HTTP \(status)."
        var type: String?
        var code: String?
        var param: String?
        if let json = try? JSON.parse(body) {
            let error = json["error"].flatMap { $0.objectValue != nil ? $0 : nil } ?? json
            let text: JSON? = error["message"] ?? error["detail"] ?? (error.stringValue != nil ? error : nil)
            if let text {
                let described = OpenAICompatible.describe(text)
                if !described.isEmpty { message = "mistral: \(described)" }
            }
            type = error["type"]?.stringValue
            code = error["code"]?.stringValue ?? error["code"]?.intValue.map { String($0) }
            param = error["param"]?.stringValue
            // 422 validation details name the offending field in `loc`.
            let details = (error["message"]?["detail"] ?? error["detail"])?.arrayValue
            if param == nil, let location = details?.first?["loc"]?.arrayValue {
                param = OpenAICompatible.parameter(fromLocation: location)
            }
            if type == nil, details != nil { type = "invalid_request_error" }
        } else if let text = String(validating: body, as: UTF8.self)?.trimmingWhitespace(), !text.isEmpty, text.count < 500 {
            message = "mistral: \(text)"
        }
        // An exhausted monthly limit is a quota, not a burst limit: not worth retrying (docs/providers/mistral.md, "Errors").
        if status == 429, message.lowercased().contains("month") || (type ?? "").contains("quota") {
            type = "insufficient_quota"
            code = code ?? "insufficient_quota"
        }
        return .provider(status: status, message: message, type: type, code: code,
                         param: param, retryAfter: RetryAfter.seconds(headers))
    }
}
