import GatewayCore

/// OpenAI's Chat Completions: the client format itself, so translation is a pass-through with
/// two rewrites: streams always ask for usage (so every streamed request is metered), and the
/// extra usage chunk is dropped again when the client did not ask for it.
public struct OpenAIAdapter: ProviderAdapter {
    public init() {}

    public var provider: Provider { .openai }
    public var knownModels: [String] { ["gpt-4o", "gpt-4o-mini", "gpt-4-turbo", "gpt-3.5-turbo", "o1-mini"] }

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        var body = request.body
        if request.stream {
            var options = body["stream_options"]?.objectValue ?? JSONObject()
            options["include_usage"] = .bool(true)
            body["stream_options"] = .object(options)
        }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1/chat/completions"),
            headers: OpenAICompatible.headers(settings, accept: request.stream ? "text/event-stream" : "application/json"),
            body: JSON.object(body).serialized())
    }

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        let json: JSON
        do { json = try JSON.parse(body) } catch {
            throw .upstreamError("openai returned a malformed response (\(error.description)).")
        }
        guard case .object(let object) = json, case .array? = object["choices"] else {
            throw .upstreamError("openai returned a response without 'choices'.")
        }
        // Already the client's format: send the provider's bytes unchanged.
        return ChatResult(body: body, usage: OpenAIUsage.decode(object["usage"]), modelServed: object["model"]?.stringValue)
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        OpenAIStreamTranslator(clientWantsUsage: request.clientWantsUsage)
    }

    public func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        OpenAIErrorDecoder.decode(providerName: "openai", status: status, headers: headers, body: body)
    }

    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        OpenAIEmbeddings.request(request, settings: settings)
    }

    public func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult {
        try OpenAIEmbeddings.decode(body, provider: .openai)
    }
}

/// OpenAI's embeddings: the client's body passes through.
public enum OpenAIEmbeddings {
    public static func request(_ request: EmbeddingsRequest, settings: ProviderSettings) -> UpstreamRequest {
        UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1/embeddings"),
            headers: OpenAICompatible.headers(settings, accept: nil),
            body: JSON.object(request.body).serialized())
    }

    public static func decode(_ body: [UInt8], provider: Provider) throws(GatewayError) -> EmbeddingsResult {
        let object = try ProviderBody.object(body, provider: provider)
        guard case .array? = object["data"] else {
            throw .upstreamError("\(provider.rawValue) returned an embeddings response without 'data'.")
        }
        let usage = TokenCount.clamp(object["usage"]?["prompt_tokens"]).map { TokenUsage(promptTokens: $0, completionTokens: 0) }
        return EmbeddingsResult(body: body, usage: usage, modelServed: object["model"]?.stringValue)
    }
}

/// OpenAI-shaped usage objects (OpenAI, Mistral and other compatible servers), counts clamped
/// by `TokenCount` (cached within prompt, reasoning within completion).
public enum OpenAIUsage {
    public static func decode(_ value: JSON?) -> TokenUsage? {
        guard case .object(let usage)? = value,
              let prompt = TokenCount.clamp(usage["prompt_tokens"]),
              let completion = TokenCount.clamp(usage["completion_tokens"]) else { return nil }
        return TokenUsage(
            promptTokens: prompt,
            completionTokens: completion,
            cachedPromptTokens: min(TokenCount.clamp(usage["prompt_tokens_details"]?["cached_tokens"]) ?? 0, prompt),
            reasoningTokens: min(TokenCount.clamp(usage["completion_tokens_details"]?["reasoning_tokens"]) ?? 0, completion))
    }
}

/// `{"error": {"message", "type", "code", "param"}}` bodies, as OpenAI-compatible servers send them.
public enum OpenAIErrorDecoder {
    public static func decode(providerName: String, status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        let error = fields(providerName: providerName, status: status, body: body)
        return .provider(status: status, message: error.message, type: error.type, code: error.code,
                         param: error.param, retryAfter: RetryAfter.seconds(headers))
    }

    /// The readable parts of an `{"error": {...}}` (or bare `{...}` / string) body: the message
    /// prefixed with the provider's name, and the provider's own type, code, param (redacted
    /// later, by `ProviderAdapter.decodeError`).
    public static func fields(providerName: String, status: Int, body: [UInt8])
        -> (message: String, type: String?, code: String?, param: String?) {
        var message = "\(providerName) returned HTTP \(status)."
        var type: String?
        var code: String?
        var param: String?
        if let json = try? JSON.parse(body) {
            let error = json["error"] ?? json
            if let text = error["message"]?.stringValue, !text.isEmpty { message = "\(providerName): \(text)" }
            else if let text = error.stringValue, !text.isEmpty { message = "\(providerName): \(text)" }
            type = error["type"]?.stringValue
            code = error["code"]?.stringValue ?? error["code"]?.intValue.map { String($0) }
            param = error["param"]?.stringValue
        }
        return (message, type, code, param)
    }
}

/// Passes OpenAI chunks through byte for byte, reading only what metering needs.
struct OpenAIStreamTranslator: StreamTranslator {
    let clientWantsUsage: Bool
    private(set) var usage: TokenUsage?
    private(set) var modelServed: String?
    private var complete = false

    init(clientWantsUsage: Bool) { self.clientWantsUsage = clientWantsUsage }

    mutating func translate(_ event: SSEEvent) throws(GatewayError) -> [StreamOutput] {
        if event.data == "[DONE]" {
            complete = true
            return [.done]
        }
        if complete || event.data.isEmpty { return [] }
        let payload = Array(event.data.utf8)
        let chunk = try ProviderBody.event(payload, provider: .openai)
        if let error = chunk["error"], error != .null {
            let message = error["message"]?.stringValue ?? "stream error"
            // Mid-stream: the client already has a 200, so this becomes the final error event.
            throw SecretRedactor.redact(
                GatewayError(status: 502, type: error["type"]?.stringValue ?? "upstream_error", code: "upstream_error",
                             message: "openai: \(message)", failureClass: .transient),
                secrets: [])
        }
        if modelServed == nil { modelServed = chunk["model"]?.stringValue }
        if let decoded = OpenAIUsage.decode(chunk["usage"]) {
            usage = decoded
            // The usage-only chunk the gateway asked for on the client's behalf.
            if !clientWantsUsage, case .array(let choices)? = chunk["choices"], choices.isEmpty { return [] }
        }
        // Passed through byte for byte, unless the provider spread the event over several
        // `data:` lines: their joining newlines would break the one-line framing clients read.
        if payload.contains(0x0A) || payload.contains(0x0D) { return [.data(JSON.object(chunk).serialized())] }
        return [.data(payload)]
    }

    mutating func finish() throws(GatewayError) -> [StreamOutput] {
        if !complete {
            throw .upstreamError("openai ended the stream before [DONE].")
        }
        return []
    }
}
