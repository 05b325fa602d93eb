import GatewayCore

/// Google Gemini, Generative Language API `v1beta` (providers.md §4): `generateContent`,
/// `streamGenerateContent?alt=sse` (data-only SSE that ends at EOF) and `batchEmbedContents`.
/// The key travels only in the `x-goog-api-key` header, never as `?key=`.
public struct GoogleAdapter: ProviderAdapter {
    public init() {}

    public var provider: Provider { .google }
    public var knownModels: [String] { ["gemini-2.0-flash", "gemini-1.5-pro", "gemini-1.5-flash", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"] }

    public func makeChatRequest(_ request: ChatRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let body = try GoogleRequestBuilder.body(for: request)
        let method = request.stream ? ":streamGenerateContent?alt=sse" : ":generateContent"
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1beta/models/\(Self.modelPath(request.model))\(method)"),
            headers: Self.headers(settings: settings, stream: request.stream),
            body: JSON.object(body).serialized())
    }

    public func decodeChatResponse(_ body: [UInt8], for request: ChatRequest) throws(GatewayError) -> ChatResult {
        try GoogleResponseDecoder.decode(body, for: request)
    }

    public func makeStreamTranslator(for request: ChatRequest) -> any StreamTranslator {
        GoogleStreamTranslator(request: request)
    }

    public func decodeError(status: Int, headers: [(name: String, value: String)], body: [UInt8], settings: ProviderSettings) -> GatewayError {
        GoogleErrorDecoder.decode(status: status, headers: headers, body: body, secrets: [settings.apiKey.value])
    }

    public func makeEmbeddingsRequest(_ request: EmbeddingsRequest, settings: ProviderSettings) throws(GatewayError) -> UpstreamRequest {
        let texts = try request.requireTexts(provider: .google)
        let model = Self.modelName(request.model)
        guard !model.isEmpty else {
            throw .invalidRequest("'model' must name a Gemini embedding model.", param: "model", code: "invalid_value")
        }
        let requests: [JSON] = texts.map { text in
            var item = JSONObject([
                ("model", .string("models/\(model)")),
                ("content", ["parts": [["text": .string(text)]]]),
            ])
            if let dimensions = request.dimensions { item["outputDimensionality"] = .int(Int64(dimensions)) }
            return .object(item)
        }
        return UpstreamRequest(
            url: UpstreamRequest.join(base: settings.effectiveBaseURL, path: "/v1beta/models/\(Self.modelPath(request.model)):batchEmbedContents"),
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

    /// The model id as one path segment: everything but RFC 3986 unreserved characters escaped.
    static func modelPath(_ model: String) -> String {
        var output = ""
        for byte in modelName(model).utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                output.append(Character(Unicode.Scalar(byte)))
            default:
                let hex = Array("0123456789ABCDEF")
                output += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 0x0f)])"
            }
        }
        return output
    }

    /// Google API keys (`AIza…`) are not key-shaped for `SecretRedactor`; hide them too.
    static func redact(_ text: String, secrets: [String]) -> String {
        let redacted = SecretRedactor.redact(text, secrets: secrets)
        guard redacted.contains("AIza") else { return redacted }
        var words: [Substring] = []
        for word in redacted.split(separator: " ", omittingEmptySubsequences: false) {
            if let range = word.range(of: "AIza"), word[range.lowerBound...].count >= 30 {
                words.append(word[..<range.lowerBound] + "AIza<redacted>")
            } else {
                words.append(word)
            }
        }
        return words.joined(separator: " ")
    }
}
