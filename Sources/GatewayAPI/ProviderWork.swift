import GatewayCore
import GatewayProviders

/// What a /v1 request asks a provider to do, parsed from its body: the one thing that differs
/// between the chat and embeddings routes. The pipeline is the same for both.
enum ProviderWork: Sendable {
    case chat(ChatRequest)
    /// Never falls back: another model's vectors live in another space.
    case embeddings(EmbeddingsRequest)

    /// Parses the body of `route` (a 400 in OpenAI's shape when it is not a valid request).
    static func parse(_ route: DataRoute, body: [UInt8], requestID: String) throws(GatewayError) -> ProviderWork {
        switch route {
        case .chatCompletions:
            var chat = try ChatRequest.parse(body)
            chat.responseID = "chatcmpl-" + requestID.dropFirst("req_".count)
            return .chat(chat)
        case .embeddings:
            return .embeddings(try EmbeddingsRequest.parse(body))
        case .models:
            preconditionFailure("GET /v1/models has no body to parse")
        }
    }

    var model: String {
        switch self {
        case .chat(let chat): return chat.model
        case .embeddings(let embeddings): return embeddings.model
        }
    }

    var user: String? {
        switch self {
        case .chat(let chat): return chat.user
        case .embeddings(let embeddings): return embeddings.user
        }
    }

    var stream: Bool {
        if case .chat(let chat) = self { return chat.stream }
        return false
    }

    var allowsFallback: Bool {
        if case .chat = self { return true }
        return false
    }

    /// The canonical request body (the cache key is computed from it).
    var body: JSONObject {
        switch self {
        case .chat(let chat): return chat.body
        case .embeddings(let embeddings): return embeddings.body
        }
    }

    /// Tokens reserved against TPM before the call: 1 per 4 bytes of body, plus max_tokens.
    func estimatedTokens(bodyBytes: Int) -> Int {
        var maxTokens: Int?
        if case .chat(let chat) = self { maxTokens = chat.maxTokens }
        return Saturating.add(bodyBytes / 4, max(0, maxTokens ?? 0))
    }

    /// The same work asked of `target`'s model (a fallback target names its own).
    func retargeted(_ target: ProviderTarget) -> ProviderWork {
        switch self {
        case .chat(let chat): return .chat(chat.retargeted(model: target.model))
        case .embeddings: return self
        }
    }

    /// The provider's HTTP request for this work, in its wire format.
    func upstreamRequest(for target: ProviderTarget) throws(GatewayError) -> UpstreamRequest {
        switch self {
        case .chat(let chat): return try target.adapter.makeChatRequest(chat, settings: target.settings)
        case .embeddings(let embeddings): return try target.adapter.makeEmbeddingsRequest(embeddings, settings: target.settings)
        }
    }

    /// A provider's whole (non-streamed) answer, in OpenAI's format.
    func decodeAnswer(_ body: [UInt8], from target: ProviderTarget) throws(GatewayError) -> DecodedAnswer {
        switch self {
        case .chat(let chat):
            let result = try target.adapter.decodeChatResponse(body, for: chat)
            return DecodedAnswer(body: result.body, usage: result.usage, modelServed: result.modelServed)
        case .embeddings(let embeddings):
            let result = try target.adapter.decodeEmbeddingsResponse(body, for: embeddings)
            return DecodedAnswer(body: result.body, usage: result.usage, modelServed: result.modelServed)
        }
    }
}

/// A provider's answer translated to OpenAI's format, with what it used.
struct DecodedAnswer: Sendable {
    var body: [UInt8]
    var usage: TokenUsage?
    var modelServed: String?
}
