import GatewayCore

/// Google Gemini, Generative Language API `v1beta` (docs/providers/google.md): `generateContent`,
/// `streamGenerateContent?alt=sse` (data-only SSE that ends at EOF) and `batchEmbedContents`.
/// The key travels only in the `x-goog-api-key` header, never as `?key=`.
public struct GoogleAdapter: ProviderAdapter {
    public init() {}

    public var provider: Provider { .google }
    public var knownModels: [String] { ["gemini-2.0-flash", "gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"] }

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let model = try Self.modelPath(request.model)
        let body = try GoogleRequestBuilder.body(for: request)
        let method = request.stream ? ":streamGenerateContent?alt=sse" : ":generateContent"
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1beta/models/\(model)\(method)"),
            headers: Self.headers(settings: settings, stream: request.stream),
            body: JSON.object(body).serialized())
    }

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        try GoogleResponseDecoder.decode(body, for: request)
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        GoogleStreamTranslator(request: request)
    }

    public func readError(status: Int, headers: [(name: String, value: String)], body: [UInt8]) -> GatewayError {
        GoogleErrorDecoder.decode(status: status, headers: headers, body: body)
    }

    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let model = try Self.modelPath(request.model)
        let texts = try request.requireTexts(provider: .google)
        let requests: [JSON] = texts.map { text in
            var item = JSONObject([
                ("model", .string("models/\(model)")),
                ("content", ["parts": [["text": .string(text)]]]),
            ])
            if let dimensions = request.dimensions { item["outputDimensionality"] = .int(Int64(dimensions)) }
            return .object(item)
        }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1beta/models/\(model):batchEmbedContents"),
            headers: Self.headers(settings: settings, stream: false),
            body: JSON.object(JSONObject([("requests", .array(requests))])).serialized())
    }

    /// `{"embeddings":[{"values":[…]}, …]}` → OpenAI's list. Gemini reports no token usage: the
    /// client sees zero counts (so SDKs that read `usage` keep working) and metering gets `nil`
    /// (unknown), never an estimate.
    public func decodeEmbeddingsResponse(_ body: [UInt8], for request: EmbeddingsRequest) throws(GatewayError) -> EmbeddingsResult {
        let object = try ProviderBody.object(body, provider: .google)
        guard case .array(let items)? = object["embeddings"] else {
            throw .upstreamError("google returned an embeddings response without 'embeddings'.")
        }
        var vectors: [[Double]] = []
        for item in items {
            guard case .array(let values)? = item["values"] else {
                throw .upstreamError("google returned an embedding without 'values'.")
            }
            vectors.append(try EmbeddingsResult.numbers(values, failure: "google returned an embedding value that is not a number."))
        }
        // (Token-id input never gets here: `requireTexts` refused it.)
        guard vectors.count == request.texts.count else {
            throw .upstreamError("google returned \(vectors.count) embeddings for \(request.texts.count) inputs.")
        }
        var result = EmbeddingsResult.make(model: Self.modelName(request.model), vectors: vectors, promptTokens: 0,
                                           encodingFormat: request.encodingFormat)
        result.usage = nil
        return result
    }

    // MARK: Helpers

    static func headers(settings: ProviderSettings, stream: Bool) -> [(name: String, value: String)] {
        [
            (name: "x-goog-api-key", value: settings.apiKey.value),
            (name: "Content-Type", value: "application/json"),
            (name: "Accept", value: stream ? "text/event-stream" : "application/json"),
        ]
    }

    /// The model id without a leading `models/` (the client may pass the resource name).
    static func modelName(_ model: String) -> String {
        model.hasPrefix("models/") ? String(model.dropFirst("models/".count)) : model
    }

    /// Longest model id accepted; Gemini's ids are a few dozen characters.
    static let maximumModelLength = 128

    /// The model id as the URL path segment after `/v1beta/models/`. Gemini puts the model in the
    /// path, so an id like `gemini-1.5-pro/../../files`, `a?b`, `a#b` or `%2e%2e` could point the
    /// request (which carries the project's key) at another endpoint. Only ids made of
    /// `[A-Za-z0-9][A-Za-z0-9._-]*`, at most `maximumModelLength` long, are sent; anything else is
    /// the caller's 400 naming `model`. Such an id needs no escaping.
    static func modelPath(_ model: String) throws(GatewayError) -> String {
        let name = modelName(model)
        var valid = !name.isEmpty && name.utf8.count <= maximumModelLength
        if valid {
            for (offset, byte) in name.utf8.enumerated() {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    continue
                case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
                    valid = offset > 0
                default:
                    valid = false
                }
                if !valid { break }
            }
        }
        guard valid else {
            throw .invalidRequest(
                "'model' must be a Gemini model id matching [A-Za-z0-9][A-Za-z0-9._-]*, at most \(maximumModelLength) characters (optionally prefixed with 'models/'): it is part of the URL path.",
                param: "model", code: "invalid_value")
        }
        return name
    }
}
